"""Pretrained (e.g. ImageNet) weights for timm backbones: read, adapt to 1-channel spectrograms, load.

[`load_pretrained_backbone`] adapts 3-channel weights the way AST does:

* the 3-channel stem is summed (or averaged) to 1 channel;
* ViT/DeiT positional embeddings are resized from the ImageNet patch grid to the (mel x time) grid
  (timm's bicubic `resample_abs_pos_embed`, or AST's crop), prefix tokens (CLS, distillation) kept as they are;
* a classifier head whose shape differs (another `num_labels`) is skipped and reported, and starts at zero: a
  randomly initialised head on large pretrained features gives large random logits (timm's EfficientNet head
  init: cross-entropy ~5 on 10 classes) that fine-tuning first has to unlearn (MAE / BEiT start theirs near zero).

Tensors are matched by key name; a state dict saved under another library's names (EfficientNet-PyTorch's
`_conv_stem.weight`, `_bn0.*`, ... for timm's `conv_stem.weight`, `bn1.*`, ...) is matched by order instead when
its tensors correspond one to one, in order and shape, to the timm network's (the stem's input channels and the
head's classes may differ) and in role (a BatchNorm's weight, bias, running mean and variance share a shape: the key's
last word must agree); the report says which (`matched_by`) and lists the renames. A source of which under half of
the network's weights (floating-point values, not tensors) would load is an error naming what did not match, never a
silent random start.

Training code (`--pretrained-backbone`) calls it after building the model; it is not copied beside checkpoints
(a trained checkpoint holds the whole network, so `from_pretrained` never needs these weights again).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from timm.layers import resample_abs_pos_embed, resample_patch_embed
from torch import nn

from ..model_folder import PICKLE_WEIGHTS_NAME, SAFE_WEIGHTS_NAME
from ..models.audio_vit.modeling_timm_encoder import TimmBackbone
from ..models.audio_vit.modeling_layers import resize_pos_embed
from .key_matching import (PretrainedMismatchError, check_enough_loaded, head_prefixes, match_by_order, stem_key,
                                      weight_count)

STEM_REDUCTIONS = ("sum", "mean")
# A start that would load fewer than this share of the network's tensors is refused (see `PretrainedMismatchError`).
MIN_LOADED_FRACTION = 0.5
POS_EMBED_RESIZES = ("interpolate", "crop")
WEIGHT_FILE_NAMES = (SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME, "model.pth", "pytorch_model.pth")


def timm_network(model: nn.Module) -> nn.Module:
    """The timm network inside an AudioViT model / `AudioViTModel` / `TimmBackbone` (or a bare timm model)."""
    if isinstance(model, TimmBackbone):
        return model.model
    audio_vit = getattr(model, "audio_vit", model)
    backbone = getattr(audio_vit, "timm_backbone", None)
    if isinstance(backbone, TimmBackbone):
        return backbone.model
    if hasattr(model, "pretrained_cfg") and hasattr(model, "forward_features"):
        return model
    raise ValueError(
        f"{type(model).__name__} has no timm backbone; build it with AudioViTConfig(backbone='timm', timm_model_name=...)"
    )


@dataclass
class PretrainedLoadReport:
    """What `load_pretrained_backbone` did. Keys are the timm network's state-dict keys.

    `matched_by` is `"name"` (the source uses timm's key names) or `"order and shape"` (another library's names,
    tensors in the network's order and shapes); `renamed` maps each source key to the model key it loaded into.
    """

    source: str
    matched_by: str = "name"
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> model key (order-and-shape matching)
    total: int = 0  # tensors in the model's state dict
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)  # key -> how it was changed (and loaded)
    initialised: dict[str, str] = field(default_factory=dict)  # key -> how a new (head) tensor was initialised
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why it was not loaded
    missing: list[str] = field(default_factory=list)  # model keys the source does not have
    unexpected: list[str] = field(default_factory=list)  # source keys the model does not have

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "matched_by": self.matched_by,
            "loaded_count": len(self.loaded),
            "model_tensors": self.total,
            "renamed": dict(self.renamed),
            "loaded": list(self.loaded),
            "adapted": dict(self.adapted),
            "initialised": dict(self.initialised),
            "skipped": dict(self.skipped),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
        }

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} of {self.total} tensors from {self.source} (matched by {self.matched_by})"]
        lines += [f"  adapted {key}: {how}" for key, how in self.adapted.items()]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped.items()]
        lines += [f"  initialised {key}: {how}" for key, how in self.initialised.items()]
        if self.missing:
            lines.append(f"  missing (kept as initialised): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected (ignored): {', '.join(self.unexpected)}")
        return "\n".join(lines)


def _unwrap_state_dict(checkpoint, source: str) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the usual training-checkpoint wrappers; drop wrapper prefixes."""
    if isinstance(checkpoint, dict):
        for wrapper in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if isinstance(checkpoint.get(wrapper), dict):
                checkpoint = checkpoint[wrapper]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{source} does not hold a state dict of tensors")
    state_dict = {}
    for key, value in checkpoint.items():
        # DDP's "module.", and an audio_vit checkpoint's own prefix, so a trained AudioViT can seed another
        key = re.sub(r"^(module\.)?((audio_vit\.)?timm_backbone\.model\.)?", "", key)
        state_dict[key] = value
    return state_dict


def _load_weight_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return _unwrap_state_dict(load_file(str(path), device="cpu"), str(path))
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        # weights_only: never unpickle arbitrary objects from a file we did not write
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        return _unwrap_state_dict(checkpoint, str(path))
    raise ValueError(f"{path} is not a weight file: expected .safetensors, .pth, .pt, .bin or .ckpt")


def _load_from_directory(path: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILE_NAMES:
        if (path / name).is_file():
            return _load_weight_file(path / name)
    raise FileNotFoundError(f"{path} holds none of the weight files {WEIGHT_FILE_NAMES}")


def _load_from_hub(repo_id: str, revision: str | None, cache_dir) -> dict[str, torch.Tensor]:
    """Download (or find in the HF cache, which is all HF_HUB_OFFLINE=1 allows) a hub repo's weights."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    errors = []
    for name in (SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME):
        try:
            return _load_weight_file(Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir)))
        except (EntryNotFoundError, LocalEntryNotFoundError, OSError) as error:
            errors.append(f"{name}: {type(error).__name__}: {error}")
    raise OSError(
        f"could not get weights of hub repo {repo_id!r} (offline={os.environ.get('HF_HUB_OFFLINE', '0')}); "
        + " | ".join(errors)
    )


def _load_from_timm_tag(name: str) -> dict[str, torch.Tensor]:
    """timm's own pretrained weights: a 3-channel ImageNet model, downloaded (or cached) by timm."""
    if not timm.models.is_model(name.split(".", 1)[0]):
        raise ValueError(
            f"source={name!r} is neither a file, a directory, a hub repo ('org/name' or 'hf-hub:org/name') "
            "nor a timm model name such as 'vit_tiny_patch16_224.augreg_in21k'"
        )
    try:
        network = timm.create_model(name, pretrained=True)
    except Exception as error:  # network, offline mode, missing tag: say what was asked for
        raise OSError(f"timm could not provide pretrained weights for {name!r}: {error}") from error
    return network.state_dict()


def read_pretrained_state_dict(source, *, revision: str | None = None, cache_dir=None) -> dict[str, torch.Tensor]:
    """Read the (ImageNet-shaped) state dict named by `source`: a local file or directory, a hub repo, or a timm tag."""
    if isinstance(source, dict):
        return _unwrap_state_dict(source, "the given state dict")
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        return _load_weight_file(path)
    if path.is_dir():
        return _load_from_directory(path)
    if text.startswith("hf-hub:"):
        return _load_from_hub(text[len("hf-hub:"):], revision, cache_dir)
    if path.suffix in (".safetensors", ".pth", ".pt", ".bin", ".ckpt") or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"weight file {text} does not exist")
    if "/" in text:
        return _load_from_hub(text, revision, cache_dir)
    return _load_from_timm_tag(text)


def reduce_stem(weight: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """3-channel (RGB) conv weight `(O, 3, kh, kw)` -> 1-channel `(O, 1, kh, kw)`, by channel sum or mean."""
    if reduction not in STEM_REDUCTIONS:
        raise ValueError(f"stem_reduction={reduction!r} is not supported; use one of {STEM_REDUCTIONS}")
    reduced = weight.float().sum(dim=1, keepdim=True) if reduction == "sum" else weight.float().mean(dim=1, keepdim=True)
    return reduced.to(weight.dtype)


def resize_patch_position_embeddings(
    pos_embed: torch.Tensor, new_grid, num_prefix_tokens: int, old_grid=None, mode: str = "interpolate"
) -> torch.Tensor:
    """`(1, prefix + Go_f*Go_t, D)` -> `(1, prefix + Gn_f*Gn_t, D)`; the prefix tokens are kept as they are.

    `mode="interpolate"`: bicubic resize of the whole grid (timm's `resample_abs_pos_embed`).
    `mode="crop"`: AST's recipe: along an axis where the new grid is smaller, keep the centre rows/columns;
    where it is larger, interpolate (bilinear) along that axis only.
    `old_grid` defaults to a square grid.
    """
    if mode not in POS_EMBED_RESIZES:
        raise ValueError(f"pos_embed_resize={mode!r} is not supported; use one of {POS_EMBED_RESIZES}")
    patches = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = int(round(patches**0.5))
        if side * side != patches:
            raise ValueError(f"{patches} position embeddings are not a square grid; pass old_grid=(rows, cols)")
        old_grid = (side, side)
    new_grid = tuple(int(g) for g in new_grid)
    if mode == "interpolate":
        return resample_abs_pos_embed(pos_embed, new_size=new_grid, old_size=tuple(old_grid), num_prefix_tokens=num_prefix_tokens)
    # Centre crop along the axes that shrink, then the one bilinear resize along those that grow.
    prefix, grid_tokens = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    grid = grid_tokens.reshape(1, old_grid[0], old_grid[1], dim)  # (1, Go_f, Go_t, D)
    for axis, (old, new) in enumerate(zip(old_grid, new_grid)):
        if new < old:
            grid = grid.narrow(1 + axis, old // 2 - new // 2, new)
    cropped = tuple(grid.shape[1:3])
    grid = resize_pos_embed(grid.reshape(1, cropped[0] * cropped[1], dim), cropped, new_grid)
    return torch.cat([prefix, grid], dim=1)


class _Skip(Exception):
    """A source tensor that cannot be loaded; the message is the reason recorded in the report."""


def _adapt_tensor(key: str, value: torch.Tensor, target: torch.Tensor, network: nn.Module, *, stem_reduction: str,
                  pos_embed_resize: str, source_grid) -> tuple[torch.Tensor, list[str]]:
    """`value` made to fit `target` (stem channels, patch kernel, position grid) and the changes made, or `_Skip`."""
    source_shape, changes = tuple(value.shape), []
    is_stem = key == stem_key(network) or (
        value.dim() == 4 and target.dim() == 4 and value.shape[1] == 3 and target.shape[1] == 1
    )
    if is_stem and value.dim() == 4 and value.shape[1] != target.shape[1]:
        if target.shape[1] != 1:
            raise _Skip(f"stem has {value.shape[1]} input channels, the model {target.shape[1]}")
        value = reduce_stem(value, stem_reduction)
        changes.append(f"{stem_reduction} of {source_shape[1]} input channels")
    if key == "patch_embed.proj.weight" and value.shape[-2:] != target.shape[-2:] and value.dim() == 4:
        value = resample_patch_embed(value, list(target.shape[-2:]))
        changes.append(f"patch kernel resampled {source_shape[-2:]} -> {tuple(target.shape[-2:])}")
    patch_embed = getattr(network, "patch_embed", None)
    if key == "pos_embed" and patch_embed is not None and value.dim() == 3:
        num_prefix = 0 if getattr(network, "no_embed_class", False) else getattr(network, "num_prefix_tokens", 0)
        # Resize whenever the grids differ, also when the token counts happen to match (14x14 = 4x49).
        source_patches = value.shape[1] - num_prefix
        side = int(round(max(source_patches, 0) ** 0.5))
        old_grid = tuple(source_grid) if source_grid else ((side, side) if side * side == source_patches else None)
        new_grid = tuple(patch_embed.grid_size)
        if old_grid != new_grid and not (old_grid is None and value.shape == target.shape):
            if target.shape[1] - num_prefix != patch_embed.num_patches or source_patches <= 0:
                raise _Skip(f"prefix tokens differ: source {source_shape}, model {tuple(target.shape)}")
            if old_grid is None:
                raise _Skip(f"{source_patches} source positions are not a square grid; pass source_grid")
            value = resize_patch_position_embeddings(value, new_grid, num_prefix, old_grid=old_grid, mode=pos_embed_resize)
            changes.append(f"{pos_embed_resize} {old_grid} -> {new_grid} patch grid, {num_prefix} prefix tokens kept")
    if value.shape != target.shape:
        raise _Skip(f"shape {tuple(value.shape)} in the source, {tuple(target.shape)} in the model")
    return value.to(target.dtype), changes


@torch.no_grad()
def load_pretrained_backbone(
    model: nn.Module,
    source,
    *,
    stem_reduction: str = "sum",
    pos_embed_resize: str = "interpolate",
    source_grid=None,
    revision: str | None = None,
    cache_dir=None,
    min_loaded_fraction: float = MIN_LOADED_FRACTION,
) -> PretrainedLoadReport:
    """Load ImageNet (or other 3-channel) timm weights into an AudioViT timm backbone, adapting them.

    Args:
        model (`nn.Module`): an `AudioViTForAudioClassification` / `AudioViTModel` with `backbone="timm"`,
            a `TimmBackbone`, or a bare timm network.
        source (`str`, `Path` or `dict`): a local `.safetensors` / `.pth` / `.bin` file or a directory
            holding one; `"hf-hub:org/name"` or `"org/name"` (hub repo through the HF cache; honours
            `HF_HUB_OFFLINE`); a timm pretrained tag such as `"vit_tiny_patch16_224.augreg_in21k"`
            (timm downloads it); or a state dict. Keys are timm's, or another library's when the tensors
            match the network's one to one in order and shape (`match_by_order`).
        stem_reduction (`str`, defaults to `"sum"`): how the 3-channel first conv becomes 1-channel,
            `"sum"` (keeps the response to a grey image, like timm's `adapt_input_conv`) or `"mean"`.
        pos_embed_resize (`str`, defaults to `"interpolate"`): `"interpolate"` (bicubic) or `"crop"` (AST).
        source_grid (`(int, int)`, *optional*): the source's patch grid when it is not square.
        revision, cache_dir: passed to `huggingface_hub.hf_hub_download` for hub sources.
        min_loaded_fraction (`float`, defaults to 0.5): raise `PretrainedMismatchError` (naming what did not match)
            when fewer than this share of the network's weights (floating-point elements) would load.

    Returns:
        [`PretrainedLoadReport`]: how keys were matched, loaded / adapted / skipped (with reasons) / missing /
        unexpected keys.
    """
    if stem_reduction not in STEM_REDUCTIONS:
        raise ValueError(f"stem_reduction={stem_reduction!r} is not supported; use one of {STEM_REDUCTIONS}")
    if pos_embed_resize not in POS_EMBED_RESIZES:
        raise ValueError(f"pos_embed_resize={pos_embed_resize!r} is not supported; use one of {POS_EMBED_RESIZES}")
    network = timm_network(model)
    source_state = read_pretrained_state_dict(source, revision=revision, cache_dir=cache_dir)
    target_state = network.state_dict()
    report = PretrainedLoadReport(source="a state dict" if isinstance(source, dict) else str(source),
                                  total=len(target_state))
    order_problem = "not needed (keys matched by name)"
    if weight_count(target_state, [key for key in source_state if key in target_state]) < (
            min_loaded_fraction * weight_count(target_state)):
        renamed, order_problem = match_by_order(source_state, network)
        if renamed:
            source_state = {renamed[key]: value for key, value in source_state.items()}
            report.matched_by, report.renamed = "order and shape", renamed
            order_problem = "matched"

    to_load = {}
    for key, value in source_state.items():
        if key not in target_state:
            report.unexpected.append(key)
            continue
        try:
            value, changes = _adapt_tensor(key, value, target_state[key], network, stem_reduction=stem_reduction,
                                           pos_embed_resize=pos_embed_resize, source_grid=source_grid)
        except _Skip as skip:
            report.skipped[key] = str(skip)
            continue
        to_load[key] = value
        report.loaded.append(key)
        if changes:
            report.adapted[key] = "; ".join(changes)
    report.missing = [key for key in target_state if key not in to_load and key not in report.skipped]
    check_enough_loaded(report, network, min_loaded_fraction, order_problem)
    network.load_state_dict(to_load, strict=False)
    _zero_new_head(network, report)
    return report


def _zero_new_head(network: nn.Module, report: PretrainedLoadReport) -> None:
    """Zero the classification head's tensors the source had in another shape (a new head for other labels)."""
    state = network.state_dict(keep_vars=True)
    for key in report.skipped:
        if key.startswith(head_prefixes(network)) and state[key].is_floating_point():
            state[key].data.zero_()
            report.initialised[key] = "zeros (a new head for these labels)"


__all__ = [
    "MIN_LOADED_FRACTION",
    "PretrainedLoadReport",
    "PretrainedMismatchError",
    "match_by_order",
    "load_pretrained_backbone",
    "read_pretrained_state_dict",
    "reduce_stem",
    "resize_patch_position_embeddings",
    "timm_network",
]
