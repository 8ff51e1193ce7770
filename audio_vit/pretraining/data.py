"""What `audio-vit pretrain` learns from: the clips of a source without their labels, the features and encoder
`audio-vit train` would derive for them, and the random windows of a step.

The clips are those of the source's training split (`audio_vit.data.splits.assign_splits` with pretraining's
defaults: nothing held out of a plain folder; the validation and test rows of a split column, `--test-fold` or
`--validation-fold` left out), read with `build_manifest(unlabeled=True)`. The data-derived defaults are
`audio_vit.training.auto_recipe`'s feature and model parts on the profile of those clips, and the epochs come from a
budget of clip-passes as the training recipe's do.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..data import DataArguments, PreparedData, build_datasets, resolve_data_dir
from ..data.profile import DataProfile, profile_manifest
from ..data.sources import build_manifest
from ..data.splits import assign_splits, resolve_strategy
from ..data.feature_recipe import apply_defaults
from ..training.auto_recipe import derive_defaults, training_cost

# Pretraining clip-passes x window frames (the recipe's cost unit, `auto_recipe.training_cost`) of the default
# epochs: about 20 minutes of the recipe's conv-stem ViT at a masking ratio of 0.75 on 2 CPU cores.
PRETRAINING_CLIP_FRAME_BUDGET = 9_000_000
MIN_PRETRAINING_EPOCHS, MAX_PRETRAINING_EPOCHS = 30, 400
PLAIN_PRETRAINING_EPOCHS = 100  # --recipe none
WARMUP_SHARE = 0.05  # of the epochs, at least one


def pretraining_splits(data_args: DataArguments):
    """(manifest, training rows) of the unlabeled source `data_args` names (see the module docstring)."""
    manifest = build_manifest(resolve_data_dir(data_args), unlabeled=True)
    if resolve_strategy(manifest, data_args) == "group" and not data_args.test_fraction:
        raise ValueError(f"--group-column {data_args.group_column!r} only decides which clips --test-fraction holds "
                         "out; pretraining holds none out by default: drop --group-column or set --test-fraction")
    splits, _ = assign_splits(manifest, data_args)
    return manifest, splits["train"]


def pretraining_epochs(profile: DataProfile, max_length: int) -> int:
    """Epochs of `PRETRAINING_CLIP_FRAME_BUDGET` on the profiled clips, within the bounds."""
    epochs = round(PRETRAINING_CLIP_FRAME_BUDGET / training_cost(1, profile.num_clips, max_length))
    return int(min(MAX_PRETRAINING_EPOCHS, max(MIN_PRETRAINING_EPOCHS, epochs)))


def resolve_pretraining_recipe(model_args, data_args, args, explicit: set[str]) -> dict[str, Any] | None:
    """`--recipe auto`: derive the features, the encoder and the epochs from the pretraining clips, for every option
    not in `explicit`, in place. Returns the record to print and save (`recipe.json`), or None for `--recipe none`
    (then only the epochs get their plain default)."""
    if args.recipe == "none":
        if args.num_train_epochs is None:
            args.num_train_epochs = PLAIN_PRETRAINING_EPOCHS
        return None
    arguments = (model_args, data_args, args)
    manifest, rows = pretraining_splits(data_args)
    profile = profile_manifest(manifest, rows)
    fixed = {name: getattr(obj, name) for name in explicit for obj in arguments if hasattr(obj, name)}
    derived = derive_defaults(profile, fixed=fixed, parts=("features", "model"))
    derived["num_train_epochs"] = pretraining_epochs(profile, fixed.get("max_length") or derived["max_length"])
    applied = apply_defaults(arguments, derived, explicit)
    return {"recipe": "auto", "profile": profile.to_dict(), "profile_text": profile.format(), "applied": applied,
            "kept": sorted(name for name in derived if name in explicit)}


def format_pretraining_recipe(record: dict[str, Any]) -> str:
    options = ", ".join(f"{name}={value}" for name, value in record["applied"].items())
    kept = f"\n  kept from the command line / config: {', '.join(record['kept'])}" if record["kept"] else ""
    return (f"data-derived defaults (--recipe auto; --recipe none for the plain defaults):\n"
            f"  data: {record['profile_text']}\n  set: {options}{kept}")


def load_pretraining_data(data_args: DataArguments, feature_extractor, accelerator) -> PreparedData:
    """The cached spectrograms of the pretraining clips (`splits["train"]`) and the feature extractor with their
    mean/std; the main process fills the cache first."""
    with accelerator.main_process_first():
        prepared = build_datasets(resolve_data_dir(data_args), feature_extractor, unlabeled=True)
    if len(prepared.splits["train"]) == 0:
        raise ValueError(f"no pretraining clips: every clip of {prepared.report.source} was left out or unreadable")
    return prepared


def warmup_steps(args, steps_per_epoch: int) -> int:
    """`--warmup-epochs` in optimizer steps; unset: `WARMUP_SHARE` of the run, at least one epoch."""
    epochs = args.warmup_epochs if args.warmup_epochs is not None else max(1.0, WARMUP_SHARE * args.num_train_epochs)
    return round(epochs * steps_per_epoch)


def crop_windows(values: torch.Tensor, num_frames: torch.Tensor, window: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One `window`-frame window of every clip `(B, M, T)`: a random one of a clip longer than it (a new one every
    epoch), the start of a shorter one (padded). Returns the windows `(B, M, window)` and their frame mask
    `(B, window)` (1 = audio). The start positions come from `generator` (CPU), so a step's windows depend only on
    its seed."""
    if values.shape[-1] < window:
        values = torch.nn.functional.pad(values, (0, window - values.shape[-1]))
    slack = (num_frames.cpu() - window).clamp_min(0)
    start = (torch.rand(len(slack), generator=generator) * (slack + 1).float()).long().clamp_max(slack)
    index = (start[:, None] + torch.arange(window)[None, :]).to(values.device)  # (B, window)
    windows = torch.gather(values, 2, index[:, None, :].expand(-1, values.shape[1], -1))
    return windows, (index < num_frames.to(values.device)[:, None]).long()


def count_hours(prepared: PreparedData) -> float:
    """Hours of audio in the pretraining clips (their full durations, before any window is cut)."""
    from ..data import column_values

    return float(sum(column_values(prepared.splits["train"], "duration"))) / 3600.0


def steps_per_epoch(num_batches: int, num_processes: int, accumulation: int) -> int:
    return math.ceil(math.ceil(num_batches / num_processes) / accumulation)


__all__ = ["PRETRAINING_CLIP_FRAME_BUDGET", "count_hours", "crop_windows", "format_pretraining_recipe",
           "load_pretraining_data", "pretraining_epochs", "pretraining_splits", "resolve_pretraining_recipe",
           "warmup_steps"]
