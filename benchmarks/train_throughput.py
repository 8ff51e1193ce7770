"""Training throughput: the trainer's own step vs the bare model step on ready tensors.

Full step = `audio_vit.training.trainer.train_epoch` itself, over a run built as `train` builds it: DataLoader over
the cached FSDD spectrograms (numpy rows from Arrow) -> SpectrogramCollator (stack, augmentation of the recipe,
normalisation) -> forward/backward -> the non-finite guard (loss, gradient norm and weight checks) -> clipping ->
AdamW -> LR schedule -> EMA update -> loss bookkeeping. It runs over the first warm-up + timed batches of the
training split: one `train_epoch` for the warm-up, one timed.
Bare step = forward/backward -> clipping -> AdamW on one batch already in memory (normalised float32).
Target: full / bare >= 0.9 (the input pipeline and the trainer's book-keeping cost less than 10% of a step).

Both are measured in wall-clock samples/s and in samples per CPU-second of this process
(`time.process_time`), alternating full and bare runs; the ratios reported are medians of the pairwise
ratios, which stay meaningful on a shared machine where other jobs slow both runs alike.

    python benchmarks/train_throughput.py                       # recipe audio_vit/recipes/fsdd.yaml
    python benchmarks/train_throughput.py --steps 40 --batch-size 64 --threads 2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class FirstBatches:
    """The first `count` batches of a prepared loader, as `train_epoch` iterates it (`set_epoch` passed on);
    appends each batch's size to `sizes`."""

    def __init__(self, loader, count: int, sizes: list):
        self.loader, self.count, self.sizes = loader, count, sizes

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index == self.count:
                return
            self.sizes.append(batch["input_values"].shape[0])
            yield batch


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

    from audio_vit.training import build_model, build_optimizer, parse_training_args
    from audio_vit.training import trainer
    from audio_vit.training.checkpointing import TrainerState
    from audio_vit.training.task_metrics import EvaluationTask
    from audio_vit.training.nonfinite import NonFiniteGuard
    from audio_vit.training.optimization import LRSchedule, ModelEMA
    from audio_vit.training.param_groups import HeadOnlyThenUnfreeze
    from audio_vit.training.components import build_feature_extractor, build_loaders, load_data
    from audio_vit.training.trainer import Run

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
        """The trainer's `train_epoch` over `warmup` batches (untimed), then over `steps` batches (timed)."""
        model, optimizer = fresh_model()
        run_args = dataclasses.replace(args, per_device_train_batch_size=batch_size, disable_tqdm=True)
        train_loader, _, augmenter = build_loaders(prepared, aug_config, run_args)
        train_loader = accelerator.prepare(train_loader)
        schedule = LRSchedule(optimizer, kind=args.lr_scheduler, total_steps=10_000, warmup_steps=10)
        ema = ModelEMA(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
        task = EvaluationTask(prepared.multi_label, [prepared.id2label[i] for i in sorted(prepared.id2label)])
        run = Run(run_args, accelerator, prepared, Path("unused"), model, optimizer, schedule, train_loader, None,
                  augmenter, ema, HeadOnlyThenUnfreeze(accelerator.unwrap_model(model), 0), TrainerState(),
                  cli.steps, task, NonFiniteGuard(args.max_consecutive_nonfinite_steps))
        seen = []
        for batches in (cli.warmup, cli.steps):
            run.train_loader = FirstBatches(train_loader, batches, seen)
            start, cpu_start = time.perf_counter(), time.process_time()
            trainer.train_epoch(run)
        samples = sum(seen[cli.warmup:])
        return samples / (time.perf_counter() - start), samples / (time.process_time() - cpu_start)

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
