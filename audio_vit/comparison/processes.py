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


def num_processes() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def wait_for_everyone() -> None:
    """A barrier while the process group exists; a no-op once it is closed (`training.end_distributed`, at the end
    of a command)."""
    import torch.distributed as dist

    if num_processes() > 1 and not (dist.is_available() and dist.is_initialized()):
        return
    process_state().wait_for_everyone()
