"""Which process writes: under `accelerate launch` every process runs the whole evaluation, the main one writes
the files, and the others wait for it before reading them."""
from __future__ import annotations


def process_state():
    """accelerate's process state, set up as the package's training sets it up (several processes without CUDA
    need accelerate's CPU/gloo backend, which it only selects when told `cpu=True`)."""
    import os

    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)


def is_main_process() -> bool:
    return process_state().is_main_process


def wait_for_everyone() -> None:
    process_state().wait_for_everyone()
