"""Which tensor of a pretrained state dict goes where in a timm network, and the error when too few fit.

Key names first (timm's own, or an audio_vit checkpoint's); for a state dict saved under another library's names
(EfficientNet-PyTorch's `_conv_stem.weight`, `_bn0.*`, ... for timm's `conv_stem.weight`, `bn1.*`, ...) the
position instead, when the two state dicts have the same number of tensors and each fits the one at its position
(`match_by_order`). `audio_vit.pretrained_weights.load_pretrained_backbone` uses both and reports which.
"""
from __future__ import annotations

import torch
from torch import nn


class PretrainedMismatchError(ValueError):
    """The pretrained weights do not fit the network: too few of its tensors would load (message: what differed)."""


def stem_key(network: nn.Module) -> str | None:
    """State-dict key of the first convolution (timm's `pretrained_cfg["first_conv"]`)."""
    first_conv = getattr(network, "pretrained_cfg", {}).get("first_conv")
    if isinstance(first_conv, (list, tuple)):
        first_conv = first_conv[0] if first_conv else None
    return f"{first_conv}.weight" if first_conv else None


def head_prefixes(network: nn.Module) -> tuple[str, ...]:
    """State-dict key prefixes of the classification head(s) (timm's `pretrained_cfg["classifier"]`)."""
    heads = getattr(network, "pretrained_cfg", {}).get("classifier") or ()
    return tuple(f"{head}." for head in ((heads,) if isinstance(heads, str) else heads))


def _fits_by_order(source: torch.Tensor, target: torch.Tensor, is_stem: bool, is_head: bool) -> bool:
    """Whether `source` can be the tensor at `target`'s position: same shape, or a stem with other input channels,
    or a head with another number of classes."""
    if source.shape == target.shape:
        return True
    if source.dim() != target.dim():
        return False
    if is_stem and source.dim() == 4:
        return source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:]
    return is_head and source.shape[1:] == target.shape[1:]


def match_by_order(source_state: dict[str, torch.Tensor], network: nn.Module) -> tuple[dict[str, str], str]:
    """Map another library's key names onto the timm network's by position: `({source key: model key}, "")` when
    the two state dicts have as many tensors and each source tensor fits the model tensor at its position (same
    shape; the stem may have other input channels, the head other classes), else `({}, why not)`."""
    target_state = network.state_dict()
    if len(source_state) != len(target_state):
        return {}, f"the source has {len(source_state)} tensors, the model {len(target_state)}"
    stem, heads = stem_key(network), head_prefixes(network)
    mapping = {}
    for position, ((source_key, value), (target_key, target)) in enumerate(zip(source_state.items(), target_state.items())):
        if not _fits_by_order(value, target, target_key == stem, target_key.startswith(heads)):
            return {}, (f"tensor {position} differs: source {source_key!r} {tuple(value.shape)}, model {target_key!r} "
                        f"{tuple(target.shape)}")
        mapping[source_key] = target_key
    return mapping, ""


def check_enough_loaded(report, network: nn.Module, min_loaded_fraction: float, order_problem: str) -> None:
    """Raise `PretrainedMismatchError`, naming what did not match, when `report` loaded too few of the network's tensors."""
    if len(report.loaded) >= min_loaded_fraction * report.total:
        return
    name = getattr(network, "pretrained_cfg", {}).get("architecture") or type(network).__name__

    def some(keys) -> str:
        keys = list(keys)
        return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "") if keys else "none"

    raise PretrainedMismatchError(
        f"{report.source} fits {name} badly: only {len(report.loaded)} of its {report.total} tensors would load "
        f"(at least {min_loaded_fraction:.0%} needed). By name: model keys without a source tensor: "
        f"{some(report.missing)}; source keys the model lacks: {some(report.unexpected)}; shape differences: "
        f"{some(f'{k} ({why})' for k, why in report.skipped.items())}. By order and shape: {order_problem}. Pass "
        f"weights of this architecture (timm key names, or another library's names with the same tensors in the "
        f"same order), or check --timm-model-name"
    )


__all__ = ["PretrainedMismatchError", "check_enough_loaded", "head_prefixes", "match_by_order", "stem_key"]
