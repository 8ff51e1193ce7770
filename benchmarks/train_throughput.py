"""Training throughput: the full training step vs the bare model step on ready tensors.

Full step = what `audio_vit.training.train` does per batch: DataLoader over the cached FSDD spectrograms (numpy rows
from Arrow) -> SpectrogramCollator (stack, augmentation of the recipe, normalisation) -> forward/backward ->
clipping -> AdamW -> LR schedule -> EMA update.
Bare step = forward/backward -> clipping -> AdamW on one batch already in memory (normalised float32).
Target: full / bare >= 0.9 (the input pipeline costs less than 10% of a step).

Both are measured in wall-clock samples/s and in samples per CPU-second of this process
(`time.process_time`), alternating full and bare runs; the ratios reported are medians of the pairwise
ratios, which stay meaningful on a shared machine where other jobs slow both runs alike.

    python benchmarks/train_throughput.py                       # recipe audio_vit/recipes/fsdd.yaml
    python benchmarks/train_throughput.py --steps 40 --batch-size 64 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "audio_vit" / "recipes" / "fsdd.yaml"))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements; the best of each is kept")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", default=None, help="also write the results as JSON here")
    cli = parser.parse_args()

    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from audio_vit.augmentation import SpectrogramAugmenter
    from audio_vit.data import SpectrogramCollator
    from audio_vit.training import build_model, build_optimizer, parse_training_args
    from audio_vit.training.setup import EpochShuffleSampler, build_feature_extractor, load_data
    from audio_vit.training.optimization import LRSchedule, ModelEMA

    if cli.threads:
        torch.set_num_threads(cli.threads)
    model_args, data_args, aug_config, args = parse_training_args(["--config", cli.config, "--report-to", "none"])
    batch_size = cli.batch_size or args.per_device_train_batch_size
    accelerator = Accelerator(cpu=args.cpu)
    torch.manual_seed(args.seed)
    fe = build_feature_extractor(model_args)
    t0 = time.perf_counter()
    prepared = load_data(data_args, args, fe, accelerator)
    prep_seconds = time.perf_counter() - t0
    fe = prepared.feature_extractor
    train = prepared.splits["train"]
    num_labels = prepared.num_labels

    def fresh_model():
        torch.manual_seed(args.seed)
        model = build_model(model_args, prepared.id2label)
        optimizer = build_optimizer(model, args)
        return accelerator.prepare(model, optimizer)

    def optimizer_step(model, optimizer, inputs, labels):
        loss = model(input_values=inputs, labels=labels).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm or 1e9)
        optimizer.step()
        optimizer.zero_grad()

    def run_full() -> float:
        model, optimizer = fresh_model()
        augmenter = SpectrogramAugmenter(aug_config, num_labels=num_labels) if aug_config.enabled else None
        loader = accelerator.prepare(DataLoader(
            train, batch_size=batch_size, sampler=EpochShuffleSampler(len(train), args.seed),
            collate_fn=SpectrogramCollator(fe, augmenter=augmenter), num_workers=args.dataloader_num_workers,
        ))
        schedule = LRSchedule(optimizer, kind=args.lr_scheduler, total_steps=10_000, warmup_steps=10)
        ema = ModelEMA(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
        model.train()
        seen, start, step = 0, None, 0
        while True:
            for batch in loader:
                if step == cli.warmup:
                    start, cpu_start, seen = time.perf_counter(), time.process_time(), 0
                labels = batch["labels"]
                if args.label_smoothing:
                    from audio_vit.training.trainer import smooth_targets

                    labels = smooth_targets(labels, num_labels, args.label_smoothing)
                optimizer_step(model, optimizer, batch["input_values"], labels)
                schedule.step()
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model))
                seen += batch["input_values"].shape[0]
                step += 1
                if step == cli.warmup + cli.steps:
                    return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu_start)

    def run_bare() -> float:
        model, optimizer = fresh_model()
        inputs = torch.randn(batch_size, fe.num_mel_bins, fe.max_length, device=accelerator.device)
        labels = torch.randint(0, num_labels, (batch_size,), device=accelerator.device)
        model.train()
        for _ in range(cli.warmup):
            optimizer_step(model, optimizer, inputs, labels)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(cli.steps):
            optimizer_step(model, optimizer, inputs, labels)
        seen = batch_size * cli.steps
        return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu_start)

    full, bare = [], []
    for _ in range(cli.repeats):  # alternate, so a busy neighbour slows both alike
        bare.append(run_bare())
        full.append(run_full())
    load = os.getloadavg()
    median = statistics.median
    results = {
        "recipe": Path(cli.config).name,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "augmentation": aug_config.to_dict(),
        "ema_decay": args.ema_decay,
        "full_step_samples_per_s": median(f[0] for f in full),
        "bare_step_samples_per_s": median(b[0] for b in bare),
        "ratio_full_over_bare_wall": median(f[0] / b[0] for f, b in zip(full, bare)),
        "full_step_samples_per_cpu_s": median(f[1] for f in full),
        "bare_step_samples_per_cpu_s": median(b[1] for b in bare),
        "ratio_full_over_bare_cpu": median(f[1] / b[1] for f, b in zip(full, bare)),
        "runs_full_(wall,cpu)": full,
        "runs_bare_(wall,cpu)": bare,
        "data_prep_seconds_(cached_or_not)": prep_seconds,
        "load_average_1_5_15": load,
    }
    print(json.dumps(results, indent=2))
    if cli.output:
        Path(cli.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
