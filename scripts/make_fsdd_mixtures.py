#!/usr/bin/env python
"""Build the FSDD two-digit multi-label dataset (see `audio_vit.data.fsdd_mix`).

    python scripts/make_fsdd_mixtures.py --output-dir data/fsdd_mix            # 2000 train + 400 test mixtures
    python scripts/make_fsdd_mixtures.py --output-dir data/fsdd_mix --train 300 --test 100 --seed 1
    audio-vit train --config audio_vit/recipes/fsdd.yaml --data-dir data/fsdd_mix --output-dir outputs/fsdd_mix
"""
import argparse
import sys

from audio_vit.data.fsdd_mix import DEFAULT_CLIPS_PER_SPLIT, build_fsdd_mixtures
from audio_vit.data.fsdd import ensure_fsdd


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Mix two FSDD digits per clip (labels: both digits, e.g. '3,7'), "
                                     "keeping FSDD's official train/test split.")
    parser.add_argument("--output-dir", required=True, help="folder for metadata.csv and clips/")
    parser.add_argument("--fsdd-dir", default=None, help="FSDD folder (default: found or downloaded like `--data-dir fsdd`)")
    parser.add_argument("--train", type=int, default=DEFAULT_CLIPS_PER_SPLIT["train"], help="training mixtures (default 2000)")
    parser.add_argument("--test", type=int, default=DEFAULT_CLIPS_PER_SPLIT["test"], help="test mixtures (default 400)")
    parser.add_argument("--max-offset-s", type=float, default=0.25, help="the second digit starts up to this late (default 0.25)")
    parser.add_argument("--seed", type=int, default=0, help="picks the pairs and offsets (default 0)")
    args = parser.parse_args(argv)
    fsdd_dir = args.fsdd_dir or ensure_fsdd()
    path = build_fsdd_mixtures(fsdd_dir, args.output_dir, {"train": args.train, "test": args.test},
                               max_offset_s=args.max_offset_s, seed=args.seed)
    print(f"wrote {args.train + args.test} mixtures and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
