"""Which tokens a masked-spectrogram-modeling step hides: random patches or time spans, never padding.

A token of the scratch ViT covers a patch of the spectrogram (of the conv stem's map for `stem="conv"`): with the
recipe's conv stem one token is one stem time step (4 frames, every mel bin), so masking tokens masks time. The
masked share is exact per clip: `round(ratio x valid tokens)` of the clip's tokens that see real audio (at least one
and at most all but one when it has two or more), so short clips padded to the window are masked at the same ratio
as long ones and a padding-only patch is never a target.

Patterns:
- `random`: any valid tokens (MAE, AudioMAE's unstructured masking);
- `span`: whole time spans of every frequency row (SSAST's "chunk" masking, along time): the time axis is cut into
  segments of 1 to `2 x span_length - 1` steps (mean `span_length`), segments are masked in a random order, the last
  one partly, until the count is reached.
"""
from __future__ import annotations

import torch

from .arguments import MASK_PATTERNS


def masked_counts(valid: torch.Tensor, ratio: float) -> torch.Tensor:
    """Masked tokens per clip `(B,)` for the valid-token mask `valid` `(B, N)`: `round(ratio x n)` within [1, n - 1]
    (0 for a clip with a single valid token: it keeps its only token visible)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must be in (0, 1)")
    valid_counts = valid.sum(dim=1)
    counts = torch.round(valid_counts.double() * ratio).long()
    return torch.minimum(counts.clamp_min(1), (valid_counts - 1).clamp_min(0))


def sample_token_mask(valid: torch.Tensor, grid: tuple[int, int], ratio: float, pattern: str = "random",
                      span_length: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """A mask `(B, N)` (True = hidden, a reconstruction target) over the tokens of a `grid` = (frequency rows, time
    steps) patch grid, `N = rows x steps` in the model's row-major order.

    Args:
        valid (`torch.BoolTensor` of shape `(B, N)`): tokens that see real audio (`token_validity`); only those are
            masked.
        grid (`tuple[int, int]`): the patch grid (`Gf`, `Gt`).
        ratio (`float`): the share of each clip's valid tokens to mask, in (0, 1).
        pattern (`str`, defaults to `"random"`): `"random"` or `"span"` (see the module docstring).
        span_length (`int`, defaults to 4): mean span length in time steps for `"span"`.
        generator (`torch.Generator`, *optional*): the random source (on the CPU), for reproducible masks.
    """
    if pattern not in MASK_PATTERNS:
        raise ValueError(f"mask pattern {pattern!r} is not supported; use one of {MASK_PATTERNS}")
    if span_length < 1:
        raise ValueError(f"span_length={span_length} must be >= 1")
    rows, steps = grid
    batch, tokens = valid.shape
    if tokens != rows * steps:
        raise ValueError(f"valid has {tokens} tokens per clip but the grid {grid} has {rows * steps}")
    device, valid = valid.device, valid.cpu()
    if pattern == "random":
        order_key = torch.rand(batch, tokens, generator=generator)
    else:
        order_key = _span_order_key(batch, rows, steps, span_length, generator).double()
    order_key = order_key.masked_fill(~valid, float("inf"))  # padding sorts last: never masked
    rank = order_key.argsort(dim=1).argsort(dim=1)  # (B, N): position of each token in the masking order
    counts = masked_counts(valid, ratio)
    return (rank < counts[:, None]).to(device)


def _span_order_key(batch: int, rows: int, steps: int, span_length: int, generator) -> torch.Tensor:
    """Masking order of the `"span"` pattern `(B, rows x steps)`: tokens of a randomly ranked time segment are taken
    together, in time order, every frequency row of a step at once."""
    lengths = torch.randint(1, 2 * span_length, (batch, steps), generator=generator)  # enough segments for any clip
    ends = lengths.cumsum(dim=1)  # (B, S): exclusive end step of each segment
    step = torch.arange(steps).expand(batch, -1).contiguous()
    segment = torch.searchsorted(ends, step, right=True)  # (B, Gt): the segment of each time step
    segment_rank = torch.rand(batch, steps, generator=generator).argsort(dim=1).argsort(dim=1)  # a random order
    key = segment_rank.gather(1, segment) * steps + step  # (B, Gt): segment order first, then time
    return (key[:, None, :] * rows + torch.arange(rows)[None, :, None]).reshape(batch, rows * steps)


__all__ = ["MASK_PATTERNS", "masked_counts", "sample_token_mask"]
