"""Catching non-finite training steps where they happen, instead of letting NaN weights "finish" a run.

A step whose loss or gradient norm is not finite is skipped (no optimizer step, gradients dropped) and counted, the
way AMP's `GradScaler.step` skips overflowing steps. All processes of a distributed run take the same decision
(one all-reduce of a flag per optimizer step), so their weights never diverge. Many skipped steps in a row, or
weights that are no longer finite, stop the run with `NonFiniteTrainingError`, which names the epoch, the step and
the clips of the offending batch.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

# Clip names shown in the error message (a batch holds dozens).
NAMED_CLIPS = 8


class NonFiniteTrainingError(RuntimeError):
    """Training cannot go on: losses or gradients stayed non-finite, or the weights became non-finite."""


def gradient_norm(parameters: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """The total L2 norm of the gradients (0 when no parameter has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


def weights_are_finite(parameters: Sequence[torch.nn.Parameter]) -> bool:
    """Whether every weight is finite (one fused norm, then one check)."""
    return bool(torch.isfinite(torch.nn.utils.get_total_norm([p.detach() for p in parameters])))


class NonFiniteGuard:
    """Decides, once per optimizer step, whether the step may be taken; counts and reports the skipped ones.

    Usage in the loop: `observe_loss(loss)` for every (micro-)batch, then at the optimizer step
    `take_step(accelerator, grad_norm)` -> bool. `end_epoch()` returns the epoch's skipped count.

    Args:
        max_consecutive (`int`): skipped steps in a row that stop the run (`--max-consecutive-nonfinite-steps`): a
            blow-up that persists (poisoned data, a learning rate far too high) is an error, not a result.
    """

    def __init__(self, max_consecutive: int):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive={max_consecutive} must be >= 1")
        self.max_consecutive = max_consecutive
        self.skipped_this_epoch = 0
        self.consecutive = 0
        self._bad_loss = False
        self._last_loss: float | None = None  # the last non-finite loss and gradient norm, for the error message
        self._last_grad_norm: float | None = None

    def observe_loss(self, loss: torch.Tensor) -> None:
        """Note a (micro-)batch loss; a non-finite one spoils the optimizer step it belongs to."""
        value = float(loss.detach())
        if not math.isfinite(value):
            self._bad_loss = True
            self._last_loss = value

    def take_step(self, accelerator, grad_norm: torch.Tensor | None) -> bool:
        """True when the loss(es) and the gradient norm of this step are finite on every process."""
        bad = self._bad_loss or (grad_norm is not None and not bool(torch.isfinite(grad_norm.detach())))
        flag = torch.tensor(1.0 if bad else 0.0, device=accelerator.device)
        bad = bool(accelerator.reduce(flag, "sum") > 0)  # every process skips together, or none does
        self._bad_loss = False
        if not bad:
            self.consecutive = 0
            return True
        self.skipped_this_epoch += 1
        self.consecutive += 1
        self._last_grad_norm = None if grad_norm is None else float(grad_norm.detach())
        return False

    def check(self, epoch: int, step: int, clips: Sequence[str] | None, model_parameters) -> None:
        """Raise `NonFiniteTrainingError` when too many steps in a row were skipped or the weights are not finite."""
        where = f"epoch {epoch}, step {step}"
        batch = _describe_clips(clips)
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteTrainingError(
                f"training stopped at {where}: {self.consecutive} optimizer steps in a row had a non-finite loss or "
                f"gradient (last loss {self._last_loss}, gradient norm {self._last_grad_norm}) and "
                f"were skipped; last batch: {batch}. Check these clips (`audio-vit prepare` reports unreadable ones), "
                "lower --learning-rate, or raise --max-consecutive-nonfinite-steps"
            )
        if not weights_are_finite(model_parameters):
            raise NonFiniteTrainingError(
                f"training stopped at {where}: the model's weights are no longer finite after an optimizer step; "
                f"last batch: {batch}. Lower --learning-rate or keep --max-grad-norm on"
            )

    def end_epoch(self) -> int:
        """The epoch's skipped count (then reset for the next epoch; the in-a-row count carries over)."""
        skipped, self.skipped_this_epoch = self.skipped_this_epoch, 0
        return skipped


def _describe_clips(clips: Sequence[str] | None) -> str:
    if not clips:
        return "(clip names unknown)"
    names = ", ".join(str(clip) for clip in list(clips)[:NAMED_CLIPS])
    more = len(clips) - NAMED_CLIPS
    return f"{len(clips)} clips: {names}" + (f" and {more} more" if more > 0 else "")


__all__ = ["NonFiniteGuard", "NonFiniteTrainingError", "gradient_norm", "weights_are_finite"]
