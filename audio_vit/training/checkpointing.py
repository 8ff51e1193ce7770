"""Epoch checkpoints (atomic, newest K kept), the trainer state that travels with them, and the best model's folder."""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE_NAME = "trainer_state.json"
# `train` checkpoints at epoch ends (`epoch_N`), `audio-vit pretrain` also within epochs (`step_N`, N optimizer steps).
_CHECKPOINT_DIR = re.compile(r"^(?:epoch|step)_(\d+)$")


@dataclass
class TrainerState:
    """Progress of a run: what `trainer_state.json` holds, in the output folder and in every checkpoint."""

    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps completed
    best_metric: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    metric_for_best_model: str = "accuracy"
    label_names: list[str] = field(default_factory=list)
    log_history: list[dict] = field(default_factory=list)  # one entry per epoch
    step_log: list[dict] = field(default_factory=list)  # training loss / LR every `logging_steps` steps
    stopped_early: bool = False
    skipped_nonfinite_steps: int = 0  # optimizer steps skipped because their loss or gradients were not finite

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "TrainerState":
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))


def write_json_atomic(path: str | Path, payload) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """`output_dir/checkpoints/epoch_N` (or `step_N`) folders, oldest first (temporary folders are ignored)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(resume_from_checkpoint: str, output_dir: str | Path) -> Path:
    """`'latest'` -> the newest checkpoint in `output_dir`; otherwise the given folder, checked."""
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"--resume-from-checkpoint latest: no checkpoints under {Path(output_dir) / CHECKPOINTS_DIR}"
            )
        return checkpoints[-1]
    path = Path(resume_from_checkpoint)
    if not (path / TRAINER_STATE_NAME).is_file():
        raise FileNotFoundError(
            f"--resume-from-checkpoint {str(path)!r} is not a checkpoint folder (no {TRAINER_STATE_NAME}); "
            f"pass 'latest' or one of {[str(p) for p in list_checkpoints(output_dir)] or 'output_dir/checkpoints/epoch_N'}"
        )
    return path


def save_checkpoint(accelerator, output_dir: str | Path, state: TrainerState, save_total_limit: int,
                    name: str | None = None) -> Path:
    """`accelerator.save_state` + trainer state into `checkpoints/epoch_N` (or `checkpoints/NAME`, `step_N` for a
    checkpoint within an epoch), atomically; keep the newest K.

    Everything is written into `checkpoints/.tmp-NAME` and renamed when complete, so an interrupted
    save never leaves a half-written `epoch_N` that `latest` would pick up. `state` is any dataclass with `epoch`
    and `save(path)` (`TrainerState`, pretraining's `PretrainingState`).
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
    name = name or f"epoch_{state.epoch}"
    final = root / name
    tmp = root / f".tmp-{name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.save(tmp / TRAINER_STATE_NAME)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(output_dir)[:-save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def save_model(accelerator, model, feature_extractor, output_dir: Path, staging_name: str = ".tmp_best_model") -> None:
    """The loadable model folder: weights + config (with id2label) + feature extractor (with mean/std).

    Written into a temporary folder (`staging_name`) first and moved in file by file (`os.replace`), so a crash while
    saving never leaves a half-written `model.safetensors` in place of the previous best model. Only the main process
    touches the folder: every process holds the same weights, and another process's `save_pretrained` would create and
    list the staging folder while the main process empties and removes it.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        staging = output_dir / staging_name
        shutil.rmtree(staging, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(str(staging), save_function=accelerator.save)
        feature_extractor.save_pretrained(str(staging))
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
        staging.rmdir()
    accelerator.wait_for_everyone()
