"""Catching non-finite training steps where they happen, instead of letting NaN weights "finish" a run.

A step whose loss or gradient norm is not finite is skipped (no optimizer step, gradients dropped, the running
statistics of batch norm put back as they were before its forward passes) and counted, the way AMP's
`GradScaler.step` skips overflowing steps. All processes of a distributed run take the same decision, so their
weights never diverge. Many skipped steps in a row, weights or running statistics that are no longer finite, or a
run in which no validation epoch was finite, stop the run with `NonFiniteTrainingError`, which names the epoch, the
step and the clips of the offending batch (or the epochs).

The checks run on the device: the loss of every (micro-)batch, the step's gradient norm and the weights after the
previous step are flags that the host reads once per optimizer step (one all-reduce, one read), instead of a read
per micro-batch and per check. A GPU then waits for the host only where the step's decision needs it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# Clip names shown in the error message (a batch holds dozens).
NAMED_CLIPS = 8


class NonFiniteTrainingError(RuntimeError):
    """Training cannot go on: losses or gradients stayed non-finite, the weights became non-finite, or no
    validation epoch was finite."""


def gradient_norm(parameters: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """The total L2 norm of the gradients (0 when no parameter has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


def model_state_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The parameters and the floating-point buffers (batch norm's running mean and variance) of `model`."""
    return [p.detach() for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]


def nonfinite_flag(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A 0-dim bool tensor on the tensors' device: True when any value is not finite (one fused norm, no host read)."""
    if not tensors:
        return torch.zeros((), dtype=torch.bool)
    return ~torch.isfinite(torch.nn.utils.get_total_norm([t.float() for t in tensors]))


def weights_are_finite(model_or_parameters) -> bool:
    """Whether every weight (and, for a module, every floating-point buffer) is finite; reads the host once."""
    tensors = (model_state_tensors(model_or_parameters) if isinstance(model_or_parameters, nn.Module)
               else [p.detach() for p in model_or_parameters])
    return not bool(nonfinite_flag(tensors))


class RunningStatistics:
    """The buffers a training forward pass updates (batch norm's running mean, variance and count), saved before an
    optimizer step's forward passes and put back when the step is skipped.

    A forward pass that produces NaN or inf updates the running statistics before its loss says it was bad; the
    training loss stays finite afterwards (train mode normalises with the batch's own statistics) while evaluation,
    which reads the running ones, gives NaN for good. One in-place copy of the buffers per optimizer step.
    """

    def __init__(self, model: nn.Module):
        self.buffers = [b for b in model.buffers()]
        self.saved = [b.detach().clone() for b in self.buffers]

    def save(self) -> None:
        with torch.no_grad():
            for saved, buffer in zip(self.saved, self.buffers):
                saved.copy_(buffer)

    def restore(self) -> None:
        with torch.no_grad():
            for saved, buffer in zip(self.saved, self.buffers):
                buffer.copy_(saved)


class NonFiniteGuard:
    """Decides, once per optimizer step, whether the step may be taken; counts and reports the skipped ones.

    Usage in the loop: `observe_loss(loss)` for every (micro-)batch, then at the optimizer step
    `take_step(accelerator, grad_norm)` -> bool, then `check(epoch, step, clips, model)` after it. Before
    validating, `settle()`; `end_epoch()` returns the epoch's skipped count. Only `take_step` (once per step) and
    `settle` (once per epoch) read values from the device.

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
        self._bad_loss: torch.Tensor | None = None  # device flag: a non-finite (micro-)batch loss in this step
        self._step_loss: torch.Tensor | None = None  # the step's first non-finite loss, else its latest loss
        self._taken = False
        self._bad_weights: torch.Tensor | None = None  # device flag: the weights after the last step taken
        self._weights_where = ""  # that step and its batch, for the message
        self._last_loss: float | None = None  # the last skipped step's loss and gradient norm, for the message
        self._last_grad_norm: float | None = None

    def observe_loss(self, loss: torch.Tensor) -> None:
        """Note a (micro-)batch loss; a non-finite one spoils the optimizer step it belongs to. No host read."""
        loss = loss.detach().float()
        bad = ~torch.isfinite(loss)
        self._bad_loss = bad if self._bad_loss is None else self._bad_loss | bad
        self._step_loss = loss if self._step_loss is None else torch.where(torch.isfinite(self._step_loss), loss,
                                                                           self._step_loss)

    def take_step(self, accelerator, grad_norm: torch.Tensor | None) -> bool:
        """True when the loss(es) and the gradient norm of this step are finite on every process.

        Raises `NonFiniteTrainingError` when the weights after the previous step were not finite (checked on the
        device then, read here with this step's flags).
        """
        device = accelerator.device
        no = torch.zeros((), dtype=torch.bool, device=device)
        grad_bad = no if grad_norm is None else ~torch.isfinite(grad_norm.detach().to(device))
        flags = torch.stack([f.to(device).float() for f in (
            no if self._bad_loss is None else self._bad_loss, grad_bad,
            no if self._bad_weights is None else self._bad_weights)])
        # every process skips together, or none does; the step's one host read
        bad_loss, bad_grad, bad_weights = accelerator.reduce(flags, "sum").tolist()
        if bad_weights:
            self._raise_weights()
        step_loss, self._bad_loss, self._step_loss, self._bad_weights = self._step_loss, None, None, None
        self._taken = not (bad_loss or bad_grad)
        if self._taken:
            self.consecutive = 0
            return True
        self.skipped_this_epoch += 1
        self.consecutive += 1
        self._last_loss = None if step_loss is None else float(step_loss)  # a step being skipped: read for the message
        self._last_grad_norm = None if grad_norm is None else float(grad_norm.detach())
        return False

    def check(self, epoch: int, step: int, clips: Sequence[str] | None, model: nn.Module) -> None:
        """After an optimizer step: raise `NonFiniteTrainingError` when too many steps in a row were skipped; queue
        the check of the weights (and running statistics) the step left, read with the next step or `settle()`."""
        where = f"epoch {epoch}, step {step}"
        batch = _describe_clips(clips)
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteTrainingError(
                f"training stopped at {where}: {self.consecutive} optimizer steps in a row had a non-finite loss or "
                f"gradient (last loss {self._last_loss}, gradient norm {self._last_grad_norm}) and "
                f"were skipped; last batch: {batch}. Check these clips (`audio-vit prepare` reports unreadable ones), "
                "lower --learning-rate, or raise --max-consecutive-nonfinite-steps"
            )
        if self._taken:
            self._bad_weights = nonfinite_flag(model_state_tensors(model))
            self._weights_where = f"{where}; last batch: {batch}"

    def settle(self) -> None:
        """Read the queued weight check now (before validation); raise `NonFiniteTrainingError` if it failed."""
        bad, self._bad_weights = self._bad_weights, None
        if bad is not None and bool(bad):
            self._raise_weights()

    def _raise_weights(self) -> None:
        raise NonFiniteTrainingError(
            f"training stopped: the model's weights (or batch norm statistics) are no longer finite after the "
            f"optimizer step at {self._weights_where}. Lower --learning-rate or keep --max-grad-norm on"
        )

    def end_epoch(self) -> int:
        """The epoch's skipped count (then reset for the next epoch; the in-a-row count carries over)."""
        skipped, self.skipped_this_epoch = self.skipped_this_epoch, 0
        return skipped


def no_finite_validation_error(log_history: Sequence[dict], metric: str) -> NonFiniteTrainingError:
    """The error of a run that ended without one finite validation epoch (so without a best model to save)."""
    epochs = ", ".join(f"{e['epoch']} (loss {e.get('eval_loss')}, {metric} {e.get(f'eval_{metric}')})"
                       for e in log_history)
    return NonFiniteTrainingError(
        f"training ended without a finite validation epoch: every epoch's validation loss or {metric} was not "
        f"finite (epochs {epochs or 'none'}), so no model was saved. The weights were finite after every step taken: "
        "look for clips that give NaN features (`audio-vit prepare` reports unreadable ones) or lower --learning-rate"
    )


def _describe_clips(clips: Sequence[str] | None) -> str:
    if not clips:
        return "(clip names unknown)"
    names = ", ".join(str(clip) for clip in list(clips)[:NAMED_CLIPS])
    more = len(clips) - NAMED_CLIPS
    return f"{len(clips)} clips: {names}" + (f" and {more} more" if more > 0 else "")


__all__ = ["NonFiniteGuard", "NonFiniteTrainingError", "RunningStatistics", "gradient_norm", "model_state_tensors",
           "no_finite_validation_error", "nonfinite_flag", "weights_are_finite"]
