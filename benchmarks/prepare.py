"""Throughput of `audio-vit prepare` on FSDD (cold cache, then cached) and of the training batch pipeline.

    python benchmarks/prepare.py                       # FSDD beside the checkout, num_proc=1
    python benchmarks/prepare.py --num-proc 2 --batch-size 128
    python benchmarks/prepare.py --skip-prepare --batch 32 --threads 1   # only the collator vs model comparison

Prepare: clips/s = clips written / wall seconds of `audio-vit prepare` (decode FLAC with soundfile, soxr 8k->16k,
batched log-mel, float16 Arrow cache, save_to_disk), first with an empty cache directory, then again with the
same cache (the map is loaded from its fingerprinted cache file; the output folder is still written).

Batch pipeline: seconds per batch of `SpectrogramCollator` (DataLoader-style fetch from the cached dataset,
stack, optional augmentation, normalize) next to one forward+backward of the default AudioViT model, and the
ratio (model step) / (model step + collate): the share of a single-process training step that is model work.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def find_fsdd() -> Path:
    from audio_vit.data.fsdd import locate_fsdd

    return Path(locate_fsdd())


def time_prepare(data_dir: Path, work: Path, num_proc: int, batch_size: int, max_clips: int | None) -> dict:
    from audio_vit.commands import prepare

    argv = ["--data-dir", str(data_dir), "--cache-dir", str(work / "cache"), "--num-proc", str(num_proc),
            "--batch-size", str(batch_size), "--quiet"]
    if max_clips:
        argv += ["--max-clips", str(max_clips)]
    results = {}
    for run in ("cold", "cached"):
        out = work / f"out-{run}"
        start = time.perf_counter()
        code = prepare.main([*argv, "--output-dir", str(out)])
        seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"audio-vit prepare failed with exit code {code}")
        summary = json.loads((out / "summary.json").read_text())
        clips = sum(summary["num_clips"].values())
        results[run] = {"clips": clips, "seconds": round(seconds, 2), "clips_per_s": round(clips / seconds, 1)}
    return results


def time_batches(prepared_dir: Path, batch: int, steps: int) -> dict:
    import torch

    from audio_vit import AudioViTConfig, AudioViTForAudioClassification
    from audio_vit.data.augmentation import AugmentationConfig, SpectrogramAugmenter
    from audio_vit.data import SpectrogramCollator, load_prepared

    torch.manual_seed(0)
    prepared = load_prepared(prepared_dir)
    fe = prepared.feature_extractor
    train = prepared.splits["train"]
    config = AudioViTConfig(num_mel_bins=fe.num_mel_bins, max_length=fe.max_length, id2label=prepared.id2label,
                            label2id=prepared.label2id)
    model = AudioViTForAudioClassification(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    augmenter = SpectrogramAugmenter(
        AugmentationConfig(gain_db=6, time_shift_frames=10, num_freq_masks=2, num_time_masks=2, mixup_alpha=0.3, seed=0),
        num_labels=prepared.num_labels,
    )
    collators = {"collate": SpectrogramCollator(fe), "collate+augment": SpectrogramCollator(fe, augmenter)}
    indices = torch.randperm(len(train)).tolist()

    def fetch(step):
        rows = [indices[(step * batch + i) % len(indices)] for i in range(batch)]
        return train.__getitems__(rows)  # what torch's DataLoader calls for a batch

    results = {}
    for name, collator in collators.items():
        collator(fetch(0))
        start = time.perf_counter()
        for step in range(steps):
            collator(fetch(step))
        results[name] = (time.perf_counter() - start) / steps
    example = collators["collate+augment"](fetch(0))
    for _ in range(2):  # warm-up
        model(**example).loss.backward()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**example).loss.backward()
        optimizer.step()
    results["model_fwd_bwd"] = (time.perf_counter() - start) / steps
    model_step = results["model_fwd_bwd"]
    return {
        "batch": batch,
        "seconds_per_batch": {key: round(value, 5) for key, value in results.items()},
        "step_ratio_vs_bare_model": {
            name: round(model_step / (model_step + results[name]), 3) for name in collators
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="FSDD folder (default: located like the tests do)")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128, help="clips per datasets.map batch")
    parser.add_argument("--max-clips", type=int, default=None, help="per split, for a quick run")
    parser.add_argument("--batch", type=int, default=32, help="training batch size for the collator comparison")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-prepare", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the batch comparison")
    parser.add_argument("--work-dir", default=None, help="kept when given (default: a temporary folder, deleted)")
    args = parser.parse_args()

    data_dir = Path(args.data_dir) if args.data_dir else find_fsdd()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="audio_vit_prepare_bench_"))
    try:
        report = {"data_dir": str(data_dir), "num_proc": args.num_proc, "map_batch_size": args.batch_size}
        if args.skip_prepare:
            from audio_vit.commands import prepare

            prepare.main(["--data-dir", str(data_dir), "--cache-dir", str(work / "cache"), "--quiet",
                          "--output-dir", str(work / "out-cold"), "--overwrite"])
        else:
            report["prepare"] = time_prepare(data_dir, work, args.num_proc, args.batch_size, args.max_clips)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        report["torch_threads"] = __import__("torch").get_num_threads()
        report["training_batches"] = time_batches(work / "out-cold", args.batch, args.steps)
        print(json.dumps(report, indent=2))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
