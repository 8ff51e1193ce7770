r"""`audio-vit prepare`: decode, split and cache a dataset as log-mel spectrograms, then save it.

    audio-vit prepare --data-dir ../shared/data/fsdd --output-dir outputs/fsdd-prepared
    audio-vit prepare --data-dir UrbanSound8K --metadata-file metadata/UrbanSound8K.csv \
        --audio-column slice_file_name --label-column class --fold-column fold --test-fold 10 \
        --audio-subdir-template "audio/fold{fold}" --output-dir outputs/us8k-fold10
    audio-vit prepare --dataset path/to/save_to_disk_folder --output-dir outputs/prepared

Writes to OUTPUT_DIR: the splits (`datasets.save_to_disk`, sharded Arrow; `datasets.load_from_disk(OUTPUT_DIR)` or
`audio_vit.data.load_prepared(OUTPUT_DIR)` read them), `preprocessor_config.json` (the feature extractor with the
training split's mean/std) and `summary.json` (counts per class and split, durations, sample rates, skipped files
with reasons), and prints the summary table.

A re-run with the same sources, options and audio_vit code finds OUTPUT_DIR up to date from
`prepare_fingerprint.json` before importing torch, transformers or datasets, and returns at once
(`--force` prepares again; see `audio_vit.prepare_fingerprint`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..argparsing import DataclassArgumentParser
from ..data.arguments import DataArguments
from ..data.report import SUMMARY_NAME
from ..model_folder import PREPROCESSOR_NAME, RECIPE_NAME
from ..prepare_fingerprint import FINGERPRINT_NAME, compute_fingerprint, is_up_to_date, write_fingerprint
from ..training.arguments import RECIPE_NAMES


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


FEATURE_OPTIONS = ("sampling_rate", "num_mel_bins", "max_length", "n_fft", "win_length", "hop_length", "f_min",
                   "f_max", "top_db")


def make_feature_extractor(args: PrepareArguments):
    from ..feature_extraction_audio_vit import AudioViTFeatureExtractor

    overrides = {name: getattr(args, name) for name in FEATURE_OPTIONS if getattr(args, name) is not None}
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


def build_parser() -> DataclassArgumentParser:
    parser = DataclassArgumentParser((DataArguments, PrepareArguments))
    parser.prog = "audio-vit prepare"
    parser.description = (
        "Decode audio (WAV/FLAC/OGG/MP3 via soundfile, others via PyAV), resample, split into train/validation/test "
        "and store log-mel spectrograms (float16, raw dB) with a reusable datasets cache."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        data_args, prepare_args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:
        print(f"audio-vit prepare: error: {error}", file=sys.stderr)
        return 2
    if not prepare_args.output_dir:
        parser.error("--output_dir/--output-dir is required")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    output_dir = Path(prepare_args.output_dir)
    fingerprint = compute_fingerprint({**dataclasses.asdict(data_args), **dataclasses.asdict(prepare_args)})
    if not prepare_args.force and is_up_to_date(output_dir, fingerprint):
        if not prepare_args.quiet:
            print(up_to_date_message(output_dir))
        return 0
    if (output_dir / "dataset_dict.json").exists() and not prepare_args.overwrite:
        print(f"audio-vit prepare: {output_dir} already holds a prepared dataset (from other sources, options or "
              "code); pass --overwrite to replace it",
              file=sys.stderr)
        return 1
    if (output_dir / "dataset_dict.json").exists():
        remove_previous_output(output_dir)
    from ..data import DataError, build_datasets, save_prepared  # datasets, torch: only when there is work
    from ..training.auto_recipe import format_recipe, resolve_prepare_recipe

    start = time.perf_counter()
    try:
        recipe = resolve_prepare_recipe(data_args, prepare_args, parser.explicit_options(argv))
        if recipe is not None and not prepare_args.quiet:
            print(format_recipe(recipe))
        feature_extractor = make_feature_extractor(prepare_args)
        prepared = build_datasets(data_args, feature_extractor)
        prepared.report.notes.append("prepared with: audio-vit prepare " + " ".join(argv))
        save_prepared(prepared, output_dir, max_shard_size=prepare_args.max_shard_size)
    except (DataError, ValueError) as error:
        print(f"audio-vit prepare: error: {error}", file=sys.stderr)
        return 2
    if recipe is not None:  # what `train --prepared-data-dir` derives the model and training options from
        recipe["train_fraction"] = len(prepared.splits["train"]) / max(1, recipe["profile"]["num_clips"])
        (output_dir / RECIPE_NAME).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
    elapsed = time.perf_counter() - start
    summary = json.loads((output_dir / SUMMARY_NAME).read_text(encoding="utf-8"))
    summary["seconds"] = round(elapsed, 2)
    (output_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_fingerprint(output_dir, fingerprint)  # last: an interrupted run leaves no up-to-date claim
    if not prepare_args.quiet:
        print(prepared.report.format_table())
        print(f"\nwrote {output_dir} ({', '.join(f'{k}: {len(v)}' for k, v in prepared.splits.items())}) "
              f"in {elapsed:.1f} s")
    return 0


def up_to_date_message(output_dir: Path) -> str:
    """One line for a re-run that has nothing to do, with the clip counts of the existing summary.json."""
    try:
        counts = json.loads((output_dir / SUMMARY_NAME).read_text(encoding="utf-8")).get("num_clips", {})
    except (OSError, ValueError):
        counts = {}
    splits = ", ".join(f"{name}: {count}" for name, count in counts.items())
    return (f"{output_dir} is up to date ({splits or 'see summary.json'}): same sources, options and code as when it "
            "was written; nothing to do (--force prepares again)")


__all__ = ["PrepareArguments", "build_parser", "main", "make_feature_extractor"]

