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
(`--force` prepares again; see `audio_vit.data.prepare_fingerprint`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

from ..argparsing import DataclassArgumentParser
from ..data.arguments import DataArguments
from ..data.prepare import PrepareArguments, prepare_dataset, remove_previous_output
from ..data.prepare_fingerprint import compute_fingerprint, is_up_to_date, write_fingerprint
from ..data.report import SUMMARY_NAME


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
    from ..data import DataError  # datasets, torch: only when there is work
    from ..training.auto_recipe import format_recipe

    start = time.perf_counter()
    show_recipe = None if prepare_args.quiet else (lambda recipe: print(format_recipe(recipe)))
    try:
        prepared = prepare_dataset(data_args, prepare_args, parser.explicit_options(argv),
                                   "audio-vit prepare " + " ".join(argv), show_recipe)
    except (DataError, ValueError) as error:
        print(f"audio-vit prepare: error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
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


__all__ = ["build_parser", "main"]

