#!/usr/bin/env python
"""Train an AudioViT classifier; runs under `accelerate launch` for several processes/GPUs.

    accelerate launch scripts/train.py --config audio_vit/recipes/fsdd.yaml --output-dir outputs/fsdd
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --config RECIPE --output-dir OUT
    python scripts/train.py --help

Options are the same as `audio-vit train` (ModelArguments, DataArguments, AugmentationConfig,
TrainingArguments; `--config FILE` plus command-line overrides).
"""
import sys

from audio_vit.commands.train import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
