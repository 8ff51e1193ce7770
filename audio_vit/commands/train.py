"""`audio-vit train`: train a classifier in one process (for several: `accelerate launch scripts/train.py`).

    audio-vit train --config audio_vit/recipes/fsdd.yaml --output-dir outputs/fsdd
    audio-vit train --data-dir DIR --output-dir OUT --num-train-epochs 20 --report-to none
    audio-vit train --config recipe.yaml --output-dir OUT --resume-from-checkpoint latest
    audio-vit train --data-dir DIR --output-dir OUT --seeds 0 1 2      # mean ± std over three seeds

Every option you leave out is derived from the data (--recipe auto, printed at the start and saved as
OUTPUT_DIR/recipe.json); --recipe none keeps the plain defaults.
"""
from __future__ import annotations

import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from ..training import explicit_option_names, parse_training_args  # the options only: --help loads no torch

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        model_args, data_args, aug_config, training_args = parse_training_args(argv)
    except (ValueError, FileNotFoundError) as err:  # bad config file / option values
        print(f"audio-vit train: error: {err}", file=sys.stderr)
        return 2
    from ..training import end_distributed, format_summary, train_seeds, train_with_route

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "evaluate", "httpx", "urllib3", "matplotlib", "accelerate.checkpointing",
                  "accelerate.accelerator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    explicit = explicit_option_names(argv)
    try:
        if training_args.seeds:
            summary = train_seeds(model_args, data_args, aug_config, training_args, training_args.seeds, explicit)
            print(format_summary(summary))
            return 0
        results = train_with_route(model_args, data_args, aug_config, training_args, explicit=explicit)
        print(json.dumps(results, indent=2))
        return 0
    finally:
        end_distributed()  # every training of the launch is done (scripts/train.py calls this function directly)
