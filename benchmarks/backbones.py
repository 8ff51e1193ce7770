"""Backbone benchmark: size and CPU inference speed of each backbone, and FSDD accuracy trained from scratch.

    python benchmarks/backbones.py inference [--batch-size 16] [--seconds 5] [--threads 2] [--repeats 5]
    python benchmarks/backbones.py train [--epochs 30] [--backbones scratch resnet18 mobilenetv2_100]

`inference`: every backbone (the scratch ViT's default config and five timm models) is built for the
default feature extractor's input (16 kHz, 64 mels, hop 160: 5 s -> 501 frames), with 10 labels, and
timed on random log-mels of one batch under `torch.inference_mode()`: median of `--repeats` timed runs
after two warm-up runs. ViT/DeiT use 16x16 patches (non-overlapping, 4 x 31 tokens + prefix).

`train`: runs `audio-vit train --config audio_vit/recipes/fsdd.yaml` once per backbone (same data,
features, augmentation, schedule and epochs; only the network differs) and reports the test accuracy
of the best-validation model from each run's `test_results.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMM_BACKBONES = (
    "resnet18",
    "mobilenetv2_100",
    "efficientnet_b0",
    "vit_tiny_patch16_224",
    "deit_tiny_distilled_patch16_224",
)
VIT_PATCH = 16


def build_model(name: str, num_mel_bins: int, frames: int, num_labels: int):
    from audio_vit import AudioViTConfig, AudioViTForAudioClassification

    if name == "scratch":
        config = AudioViTConfig(num_mel_bins=num_mel_bins, max_length=frames, num_labels=num_labels)
    else:
        vit = name.startswith(("vit_", "deit_"))
        config = AudioViTConfig(
            num_mel_bins=num_mel_bins,
            max_length=frames,
            num_labels=num_labels,
            backbone="timm",
            timm_model_name=name,
            patch_size=VIT_PATCH if vit else (num_mel_bins, 2),  # CNNs ignore the patch settings
        )
    return AudioViTForAudioClassification(config).eval()


def run_inference(args) -> list[dict]:
    import numpy as np
    import torch

    from audio_vit import AudioViTFeatureExtractor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    extractor = AudioViTFeatureExtractor()  # defaults: 16 kHz, n_fft 400, hop 160, 64 mels
    waveforms = [
        np.random.default_rng(i).standard_normal(int(args.seconds * extractor.sampling_rate)).astype("float32") * 0.1
        for i in range(args.batch_size)
    ]
    inputs = extractor(
        waveforms, sampling_rate=extractor.sampling_rate, return_tensors="pt", padding="longest", truncation=False
    )["input_values"]  # (B, 64, frames)
    _, mels, frames = inputs.shape
    print(
        f"input {tuple(inputs.shape)} ({args.seconds:g} s at {extractor.sampling_rate} Hz, hop {extractor.hop_length}); "
        f"batch {args.batch_size}; torch threads {torch.get_num_threads()}; load average {os.getloadavg()}",
        flush=True,
    )
    rows = []
    for name in ("scratch",) + TIMM_BACKBONES:
        if args.backbones and name not in args.backbones:
            continue
        model = build_model(name, mels, frames, num_labels=10)
        params = sum(p.numel() for p in model.parameters())
        with torch.inference_mode():
            for _ in range(2):
                model(inputs)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                model(inputs)
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        row = {
            "backbone": name,
            "params_m": round(params / 1e6, 2),
            "batch_s_median": round(median, 4),
            "batch_s_min": round(min(times), 4),
            "clips_per_s": round(args.batch_size / median, 1),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| backbone | params (M) | clips/s (median) | batch time median / min (s) | 1-min load avg after |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['backbone']} | {row['params_m']} | {row['clips_per_s']} | "
            f"{row['batch_s_median']} / {row['batch_s_min']} | {row['load_average_1m']} |"
        )
    return rows


def run_training(args) -> list[dict]:
    rows = []
    for name in args.backbones or ("scratch", "resnet18", "mobilenetv2_100"):
        output_dir = Path(args.output_root) / name
        command = [
            sys.executable, "-m", "audio_vit.cli", "train",
            "--config", str(REPO_ROOT / "audio_vit" / "recipes" / "fsdd.yaml"),
            "--output-dir", str(output_dir), "--overwrite-output-dir",
            "--num-train-epochs", str(args.epochs), "--report-to", "none", "--disable-tqdm",
            "--log-examples", "0",
        ]
        if name != "scratch":
            command += ["--backbone", "timm", "--timm-model-name", name]
        command += args.extra
        print("$", " ".join(command), flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"training {name} failed with exit code {result.returncode}")
        test = json.loads((output_dir / "test_results.json").read_text())
        everything = json.loads((output_dir / "all_results.json").read_text())
        row = {
            "backbone": name,
            "test_accuracy": round(test["accuracy"], 4),
            "test_f1": round(test["f1"], 4),
            "test_clips": test["num_samples"],
            "best_epoch": test["best_epoch"],
            "epochs": everything.get("epoch"),
            "wall_min": round(wall / 60, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| backbone | test accuracy | test macro F1 | best epoch / epochs run | wall time (min) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['backbone']} | {row['test_accuracy']:.4f} | {row['test_f1']:.4f} | "
            f"{row['best_epoch']} / {row['epochs']} | {row['wall_min']} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    inference = sub.add_parser("inference", help="parameters and CPU inference clips/s per backbone")
    inference.add_argument("--batch-size", type=int, default=16)
    inference.add_argument("--seconds", type=float, default=5.0, help="clip length fed to the feature extractor")
    inference.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    inference.add_argument("--repeats", type=int, default=5, help="timed batches per backbone (median reported)")
    inference.add_argument("--backbones", nargs="*", default=None, help="subset: scratch and/or timm names")
    train = sub.add_parser("train", help="train on FSDD from scratch with audio-vit train, report test accuracy")
    train.add_argument("--epochs", type=int, default=30, help="epochs for every backbone (the recipe's is 30)")
    train.add_argument("--backbones", nargs="*", default=None, help="default: scratch resnet18 mobilenetv2_100")
    train.add_argument("--output-root", default="/tmp/audio_vit_backbones", help="one training folder per backbone")
    train.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `audio-vit train` options")
    args = parser.parse_args(argv)
    print(f"{platform.platform()}, python {platform.python_version()}, {os.cpu_count()} CPUs", flush=True)
    if args.mode == "inference":
        run_inference(args)
    else:
        args.extra = [a for a in args.extra if a != "--"]
        run_training(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
