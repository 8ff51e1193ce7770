"""`audio-vit train --seeds 0 1 2`: the same run under several seeds, reported as mean ± std.

One run is one draw: the same recipe moves by a point or two between seeds (and between machines). Each seed
trains into `OUTPUT_DIR/seed-N` with its own initialisation, shuffling, augmentation and dropout; the data
split stays the one of `--seed`'s data options, so every run is tested on the same clips. The summary goes to
`OUTPUT_DIR/seeds_results.json` and `seeds_results.md`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np

SUMMARY_NAME = "seeds_results"
REPORTED_METRICS = ("test_accuracy", "test_f1", "test_loss", "train_runtime_this_run", "best_epoch")


def mean_std(values) -> dict:
    """{"mean", "std", "min", "max", "n"}; std is the sample standard deviation (ddof=1; 0 for one value)."""
    from ..classification_report import mean_std as fold_mean_std  # the one mean ± std rule (folds and seeds alike)

    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_std needs at least one value")
    return {**fold_mean_std(array), "min": float(array.min()), "max": float(array.max()), "n": int(array.size)}


def summarize_seeds(runs: dict[int, dict]) -> dict:
    """Per-seed results -> {"seeds", "runs", metric: mean_std} for the metrics every run reported."""
    summary = {"seeds": sorted(runs), "runs": {str(seed): runs[seed] for seed in sorted(runs)}}
    for name in REPORTED_METRICS:
        values = [result[name] for result in runs.values() if isinstance(result.get(name), (int, float))]
        if len(values) == len(runs):
            summary[name] = mean_std(values)
    return summary


def format_summary(summary: dict) -> str:
    """A markdown table: one row per seed, then mean ± std."""
    lines = ["| seed | test accuracy | test macro-F1 | best epoch | seconds |", "| --- | --- | --- | --- | --- |"]
    for seed in summary["seeds"]:
        run = summary["runs"][str(seed)]
        lines.append(f"| {seed} | {100 * run.get('test_accuracy', float('nan')):.2f}% | "
                     f"{run.get('test_f1', float('nan')):.4f} | {run.get('best_epoch', '')} | "
                     f"{run.get('train_runtime_this_run', float('nan')):.0f} |")
    if "test_accuracy" in summary:
        acc, f1 = summary["test_accuracy"], summary.get("test_f1", {"mean": float("nan"), "std": float("nan")})
        lines.append(f"| mean ± std | {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}% | "
                     f"{f1['mean']:.4f} ± {f1['std']:.4f} | | |")
    return "\n".join(lines)


def train_seeds(model_args, data_args, aug_config, args, seeds: list[int], explicit: set[str] | None = None) -> dict:
    """Train once per seed (into `args.output_dir/seed-N`) and write the mean ± std summary; returns it."""
    from .route_selection import train_with_route

    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds} repeats a seed")
    base = Path(args.output_dir)
    runs = {}
    for seed in seeds:
        run_args = dataclasses.replace(copy.deepcopy(args), seed=seed, output_dir=str(base / f"seed-{seed}"))
        run_aug = dataclasses.replace(copy.deepcopy(aug_config), seed=seed)
        runs[seed] = train_with_route(copy.deepcopy(model_args), copy.deepcopy(data_args), run_aug, run_args,
                                      explicit=explicit)
    summary = summarize_seeds(runs)
    base.mkdir(parents=True, exist_ok=True)
    (base / f"{SUMMARY_NAME}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (base / f"{SUMMARY_NAME}.md").write_text(format_summary(summary) + "\n")
    return summary


__all__ = ["train_seeds", "summarize_seeds", "mean_std", "format_summary"]
