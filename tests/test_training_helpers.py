"""Helpers for tests/test_training*.py (no tests here): a tiny synthetic tone dataset and tiny training options."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLING_RATE = 8000
TONES = {"low": 300.0, "mid": 900.0, "high": 2000.0}


def make_tone_dataset(root: Path, counts=None, labels=TONES, seed: int = 0, duration: float = 0.4) -> Path:
    """Write a metadata.csv dataset of noisy tones, one frequency per class; easy to learn in a few epochs.

    `counts` maps split -> clips per class (default train 8, validation 4, test 4).
    """
    counts = counts or {"train": 8, "validation": 4, "test": 4}
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(duration * SAMPLING_RATE)) / SAMPLING_RATE
    for split, per_class in counts.items():
        for label, freq in labels.items():
            for i in range(per_class):
                f = freq * rng.uniform(0.9, 1.1)
                wave = 0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) + 0.05 * rng.standard_normal(t.size)
                onset = rng.integers(0, t.size // 4)
                wave[:onset] *= 0.01
                name = f"audio/{split}_{label}_{i}.wav"
                sf.write(root / name, wave.astype(np.float32), SAMPLING_RATE)
                rows.append((name, label, split))
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "label", "split"])
        writer.writerows(rows)
    return root


def tiny_train_argv(data_dir: Path, output_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    """Options of a tiny, fast run on `make_tone_dataset` data, with the plain defaults (`--recipe none`):
    these tests check the training machinery; tests/test_auto_recipe.py checks the data-derived defaults."""
    return [
        "--recipe", "none",
        "--data-dir", str(data_dir),
        "--cache-dir", str(cache_dir),
        "--output-dir", str(output_dir),
        "--sampling-rate", "8000", "--n-fft", "256", "--hop-length", "128", "--num-mel-bins", "16",
        "--max-length", "24", "--patch-size", "16", "2",
        "--hidden-size", "32", "--num-hidden-layers", "2", "--num-attention-heads", "2", "--intermediate-size", "64",
        "--per-device-train-batch-size", "8", "--per-device-eval-batch-size", "8",
        "--learning-rate", "0.003", "--warmup-epochs", "1",
        "--report-to", "none", "--disable-tqdm", "--log-examples", "0",
        *extra,
    ]


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
