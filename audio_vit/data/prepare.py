"""What `audio-vit prepare` writes: its options, the feature extractor they describe, and the prepared folder
(the splits as `datasets.save_to_disk`, `preprocessor_config.json` with the training split's mean/std,
`summary.json`, and with `--recipe auto` the `recipe.json` that `train --prepared-data-dir` derives the rest from).

The command (`audio_vit.commands.prepare`) parses, skips an up-to-date folder (`prepare_fingerprint`, which hashes
this code) and prints; everything that decides the folder's contents is here or below.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..model_folder import PREPROCESSOR_NAME, RECIPE_NAME
from .arguments import RECIPE_NAMES
from .prepare_fingerprint import FINGERPRINT_NAME
from .report import SUMMARY_NAME


@dataclass
class PrepareArguments:
    """Output and spectrogram options of `audio-vit prepare`."""

    output_dir: str = field(default=None, metadata={"help": "Folder to write the prepared dataset to (required)."})
    feature_extractor: Optional[str] = field(
        default=None,
        metadata={"help": "Start from this feature extractor (a folder with preprocessor_config.json, e.g. a model "
                  "folder); the options below override its values."},
    )
    sampling_rate: Optional[int] = field(default=None, metadata={"help": "Target sample rate (default 16000)."})
    num_mel_bins: Optional[int] = field(default=None, metadata={"help": "Mel bins (default 64)."})
    max_length: Optional[int] = field(default=None, metadata={"help": "Frames per clip; longer clips are cut (default 128)."})
    n_fft: Optional[int] = field(default=None, metadata={"help": "FFT size in samples (default 400)."})
    win_length: Optional[int] = field(default=None, metadata={"help": "STFT window in samples (default n_fft)."})
    hop_length: Optional[int] = field(default=None, metadata={"help": "Hop in samples (default 160)."})
    f_min: Optional[float] = field(default=None, metadata={"help": "Lowest mel frequency in Hz (default 0)."})
    f_max: Optional[float] = field(default=None, metadata={"help": "Highest mel frequency in Hz (default sampling_rate/2)."})
    top_db: Optional[float] = field(default=None, metadata={"help": "Clip below each clip's max minus top_db dB (default 80)."})
    max_shard_size: str = field(default="200MB", metadata={"help": "Largest Arrow shard written by save_to_disk."})
    overwrite: bool = field(default=False, metadata={"help": "Write into an OUTPUT_DIR that already holds a dataset."})
    force: bool = field(
        default=False,
        metadata={"help": "Prepare again even when OUTPUT_DIR is up to date (same sources, options and code)."},
    )
    quiet: bool = field(default=False, metadata={"help": "Do not print the summary table."})
    recipe: str = field(
        default="auto",
        metadata={"help": "auto: every feature option you do not set (sampling rate, STFT, window, cached clip windows) "
                  "and the validation fold are derived from the data as `audio-vit train` derives them, printed and "
                  "saved as recipe.json (train --prepared-data-dir derives the rest from it). none: the plain "
                  "defaults in parentheses above."},
    )

    def __post_init__(self):
        if self.recipe not in RECIPE_NAMES:
            raise ValueError(f"recipe={self.recipe!r} is not supported; use one of {RECIPE_NAMES}")


# The extractor settings `prepare` takes as options (the rest come from --feature-extractor or the defaults).
EXTRACTOR_OPTIONS = ("sampling_rate", "num_mel_bins", "max_length", "n_fft", "win_length", "hop_length", "f_min",
                     "f_max", "top_db")


def make_feature_extractor(args: PrepareArguments):
    from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

    overrides = {name: getattr(args, name) for name in EXTRACTOR_OPTIONS if getattr(args, name) is not None}
    if args.feature_extractor:
        return AudioViTFeatureExtractor.from_pretrained(args.feature_extractor, **overrides)
    return AudioViTFeatureExtractor(**overrides)


def remove_previous_output(output_dir: Path) -> None:
    """Delete what an earlier `prepare` wrote there (its split folders and files), so no stale shard survives."""
    splits = json.loads((output_dir / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    for split in splits:
        if (output_dir / split).is_dir():
            shutil.rmtree(output_dir / split)
    for name in ("dataset_dict.json", SUMMARY_NAME, PREPROCESSOR_NAME, FINGERPRINT_NAME, RECIPE_NAME):
        (output_dir / name).unlink(missing_ok=True)


def prepare_dataset(data_args, prepare_args: PrepareArguments, explicit: set[str], command_line: str,
                    show_recipe: Optional[Callable[[dict], None]] = None):
    """Decode, split and cache the source of `data_args` and save it to `prepare_args.output_dir`; returns the
    `PreparedData`. `show_recipe` gets the data-derived recipe (with `--recipe auto`) before the spectrograms are
    computed."""
    from . import build_datasets, save_prepared
    from .feature_recipe import resolve_prepare_recipe

    start = time.perf_counter()
    output_dir = Path(prepare_args.output_dir)
    recipe = resolve_prepare_recipe(data_args, prepare_args, explicit)
    if recipe is not None and show_recipe is not None:
        show_recipe(recipe)
    prepared = build_datasets(data_args, make_feature_extractor(prepare_args))
    prepared.report.notes.append("prepared with: " + command_line)
    save_prepared(prepared, output_dir, max_shard_size=prepare_args.max_shard_size)
    if recipe is not None:  # what `train --prepared-data-dir` derives the model and training options from
        recipe["train_fraction"] = len(prepared.splits["train"]) / max(1, recipe["profile"]["num_clips"])
        (output_dir / RECIPE_NAME).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
    summary = json.loads((output_dir / SUMMARY_NAME).read_text(encoding="utf-8"))
    summary["seconds"] = round(time.perf_counter() - start, 2)
    (output_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return prepared


__all__ = ["EXTRACTOR_OPTIONS", "PrepareArguments", "make_feature_extractor", "prepare_dataset", "remove_previous_output"]
