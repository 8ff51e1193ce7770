"""Which tensor of a pretrained state dict goes where in a timm network, and the error when too few fit.

Key names first (timm's own, or an audio_vit checkpoint's); for a state dict saved under another library's names
(EfficientNet-PyTorch's `_conv_stem.weight`, `_bn0.*`, ... for timm's `conv_stem.weight`, `bn1.*`, ...) the
position instead, when the two state dicts have the same number of tensors and each fits the one at its position:
the same shape and the same role (`match_by_order`; a BatchNorm's weight, bias, running mean and variance share a
shape, so the key's last word must agree too). `audio_vit.pretrained.weights.load_pretrained_backbone` uses both and reports which.
"""
from __future__ import annotations

import torch
from torch import nn


class PretrainedMismatchError(ValueError):
    """The pretrained weights do not fit the network: too few of its weights would load (message: what differed)."""


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


# What a tensor is to its layer, from the last part of its key; synonyms of other libraries map to timm's word.
# BatchNorm's weight, bias, running mean and running variance all have shape (C,): shape alone cannot tell them apart.
TENSOR_ROLES = {
    "weight": "weight", "gamma": "weight", "scale": "weight", "kernel": "weight",
    "bias": "bias", "beta": "bias", "offset": "bias",
    "running_mean": "running_mean", "moving_mean": "running_mean",
    "running_var": "running_var", "moving_var": "running_var", "moving_variance": "running_var",
    "num_batches_tracked": "num_batches_tracked",
}


def tensor_role(key: str) -> str | None:
    """`"weight"`, `"bias"`, `"running_mean"`, `"running_var"` or `"num_batches_tracked"` for a key ending in one of
    them (or a synonym such as `gamma` / `moving_mean`); None for other tensors (position embeddings, tokens)."""
    return TENSOR_ROLES.get(key.rsplit(".", 1)[-1])


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
        roles = tensor_role(source_key), tensor_role(target_key)
        if None not in roles and roles[0] != roles[1]:
            return {}, (f"tensor {position} has the same shape but another role: source {source_key!r} is a "
                        f"{roles[0]}, model {target_key!r} a {roles[1]}")
        mapping[source_key] = target_key
    return mapping, ""


def weight_count(state: dict[str, torch.Tensor], keys=None) -> int:
    """Learned and statistical values in `state` (of `keys`, default all): floating-point elements, so BatchNorm's
    0-dim step counter (`num_batches_tracked`) or any other integer buffer counts for nothing."""
    keys = state.keys() if keys is None else keys
    return sum(state[key].numel() for key in keys if key in state and state[key].is_floating_point())


def check_enough_loaded(report, network: nn.Module, min_loaded_fraction: float, order_problem: str) -> None:
    """Raise `PretrainedMismatchError`, naming what did not match, when `report` loaded too few of the network's
    values (floating-point elements, not tensors: a head of a million weights outweighs a hundred step counters)."""
    target_state = network.state_dict()
    loaded, total = weight_count(target_state, report.loaded), weight_count(target_state)
    if loaded >= min_loaded_fraction * total:
        return
    name = getattr(network, "pretrained_cfg", {}).get("architecture") or type(network).__name__

    def some(keys) -> str:
        keys = list(keys)
        return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "") if keys else "none"

    raise PretrainedMismatchError(
        f"{report.source} fits {name} badly: only {loaded:,} of its {total:,} weights would load "
        f"({len(report.loaded)} of {report.total} tensors; at least {min_loaded_fraction:.0%} of the weights needed). By name: model keys without a source tensor: "
        f"{some(report.missing)}; source keys the model lacks: {some(report.unexpected)}; shape differences: "
        f"{some(f'{k} ({why})' for k, why in report.skipped.items())}. By order and shape: {order_problem}. Pass "
        f"weights of this architecture (timm key names, or another library's names with the same tensors in the "
        f"same order), or check --timm-model-name"
    )


__all__ = ["PretrainedMismatchError", "check_enough_loaded", "head_prefixes", "match_by_order", "stem_key",
           "tensor_role", "weight_count"]
