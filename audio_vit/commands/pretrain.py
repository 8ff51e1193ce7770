"""`audio-vit pretrain`: pretrain the ViT on unlabeled audio (masked spectrogram modeling) into an encoder folder.

    audio-vit pretrain --data-dir FOLDER --output-dir outputs/pretrained          # any folder of audio, at any depth
    audio-vit pretrain --data-dir DIR --metadata-file clips.csv --output-dir OUT  # a CSV; labels are not read
    audio-vit pretrain --data-dir FOLDER --output-dir OUT --max-minutes 30        # stop (and save) after 30 minutes
    audio-vit pretrain --data-dir FOLDER --output-dir OUT --resume-from-checkpoint latest
    audio-vit train --model-name-or-path outputs/pretrained --data-dir LABELLED --output-dir outputs/finetuned

Features, window and encoder are derived from the clips as `audio-vit train` derives them (--recipe auto, printed and
saved as OUTPUT_DIR/recipe.json). For several processes: `accelerate launch scripts/pretrain.py ...`.
"""
from __future__ import annotations

import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from ..pretraining.arguments import parse_pretraining_args  # the options only: --help loads no torch

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        model_args, data_args, args, explicit = parse_pretraining_args(argv)
    except (ValueError, FileNotFoundError) as err:  # bad config file / option values
        print(f"audio-vit pretrain: error: {err}", file=sys.stderr)
        return 2
    from ..pretraining import pretrain
    from ..training import end_distributed

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "httpx", "urllib3", "accelerate.checkpointing", "accelerate.accelerator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        results = pretrain(model_args, data_args, args, explicit)
        print(json.dumps(results, indent=2))
        return 0
    finally:
        end_distributed()
