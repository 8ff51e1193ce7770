#!/usr/bin/env python
"""Pretrain the AudioViT encoder on unlabeled audio; runs under `accelerate launch` for several processes/GPUs.

    accelerate launch scripts/pretrain.py --data-dir FOLDER --output-dir outputs/pretrained
    accelerate launch --multi_gpu --num_processes 2 scripts/pretrain.py --data-dir FOLDER --output-dir OUT
    python scripts/pretrain.py --help

Options are the same as `audio-vit pretrain`.
"""
import sys

from audio_vit.commands.pretrain import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
