"""`audio-vit train`: train a classifier in one process (for several: `accelerate launch scripts/train.py`).

    audio-vit train --config audio_vit/recipes/fsdd.yaml --output-dir outputs/fsdd
    audio-vit train --data-dir DIR --output-dir OUT --num-train-epochs 20 --report-to none
    audio-vit train --config recipe.yaml --output-dir OUT --resume-from-checkpoint latest
"""
from __future__ import annotations

import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from ..training import parse_training_args, train

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        model_args, data_args, aug_config, training_args = parse_training_args(argv)
    except (ValueError, FileNotFoundError) as err:  # bad config file / option values
        print(f"audio-vit train: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "evaluate", "httpx", "urllib3", "matplotlib", "accelerate.checkpointing",
                  "accelerate.accelerator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results = train(model_args, data_args, aug_config, training_args)
    print(json.dumps(results, indent=2))
    return 0
