"""timm backbones behind the AudioViT API, ImageNet-weight adaptation (AST style) and fine-tuning controls.

`AudioViTConfig(backbone="timm", timm_model_name="resnet18")` makes `AudioViTModel` build a
[`TimmBackbone`] here: `timm.create_model(name, pretrained=False, in_chans=1, num_classes=num_labels)`,
once, in `__init__`, with nothing downloaded. Pretrained weights are loaded explicitly afterwards with
[`load_pretrained_backbone`], which adapts them to a 1-channel spectrogram input the way AST does:

* the 3-channel stem is summed (or averaged) to 1 channel;
* ViT/DeiT positional embeddings are resized from the ImageNet patch grid to the (mel x time) grid,
  prefix tokens (CLS, distillation) kept as they are;
* a classifier head whose shape differs (another `num_labels`) is skipped and reported.

This file is copied next to saved checkpoints for `trust_remote_code`, so it imports only third-party
packages and the two audio_vit modules it sits beside (relatively).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_audio_vit import AudioViTConfig, check_patch_fits
from .modeling_audio_vit import as_spectrogram_batch

try:  # timm is only needed for backbone="timm"; the try block also keeps it optional for remote-code loading
    import timm
    from timm.layers import PatchEmbed, resample_abs_pos_embed, resample_patch_embed
    from timm.layers.format import Format, nchw_to
    from timm.models import group_parameters
except ImportError:
    timm = None
    PatchEmbed = nn.Module

# timm modules whose models are (Distilled)VisionTransformer: they get the spectrogram patch embedding below.
VIT_FAMILY_MODULES = ("timm.models.vision_transformer", "timm.models.deit")
# Parameters that are tokens or positions, not weights: no weight decay on them.
NO_WEIGHT_DECAY_NAMES = ("pos_embed", "cls_token", "dist_token", "reg_token", "position_embeddings")
STEM_REDUCTIONS = ("sum", "mean")
POS_EMBED_RESIZES = ("interpolate", "crop")
WEIGHT_FILE_NAMES = ("model.safetensors", "pytorch_model.bin", "model.pth", "pytorch_model.pth")


def _require_timm() -> None:
    if timm is None:
        raise ImportError("backbone='timm' needs the timm package: pip install timm")


def _as_pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name}={value!r} must be an int or a (frequency, time) pair of ints")


# ----------------------------------------------------------------------------------------------
# Building the network
# ----------------------------------------------------------------------------------------------


class SpectrogramPatchEmbed(PatchEmbed):
    """timm's `PatchEmbed` with a stride (overlapping patches, as in AST) and no divisibility checks.

    The patch grid is `(H - patch) // stride + 1` along each axis, like a plain convolution, so any clip
    with at least one patch width of frames works; timm's ViT then resizes its positional embeddings from
    `grid_size` to the grid of each input (`dynamic_img_size=True`). State-dict keys are timm's own.
    """

    def __init__(self, *args, stride=None, **kwargs):
        self._stride = None if stride is None else _as_pair(stride, "patch_stride")
        super().__init__(*args, **kwargs)
        stride = self._stride or self.patch_size
        self.proj.stride = stride  # the conv was built with stride=patch_size; only the step changes
        self.img_size, self.grid_size, self.num_patches = self._init_img_size(self.img_size)

    @property
    def stride(self) -> tuple[int, int]:
        return tuple(self._stride or self.patch_size)

    def _init_img_size(self, img_size):
        if img_size is None:
            return None, None, None
        img_size = tuple(_as_pair(img_size, "img_size"))
        grid_size = self.dynamic_feat_size(img_size)
        return img_size, grid_size, grid_size[0] * grid_size[1]

    def dynamic_feat_size(self, img_size) -> tuple[int, int]:
        stride = self.stride
        return (
            (img_size[0] - self.patch_size[0]) // stride[0] + 1,
            (img_size[1] - self.patch_size[1]) // stride[1] + 1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < self.patch_size[0] or x.shape[-1] < self.patch_size[1]:
            raise ValueError(
                f"input of {x.shape[-2]} mel bins x {x.shape[-1]} frames is smaller than one patch {self.patch_size}"
            )
        x = self.proj(x)  # (B, D, Gf, Gt)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)  # (B, Gf*Gt, D)
        elif self.output_fmt != Format.NCHW:
            x = nchw_to(x, self.output_fmt)  # NHWC (B, Gf, Gt, D) is what timm's dynamic-size ViT expects
        return self.norm(x)


def is_vit_family(model_name: str) -> bool:
    """Whether `timm.create_model(model_name)` builds a timm (Distilled)VisionTransformer."""
    _require_timm()
    architecture = model_name.split(".", 1)[0]
    if not timm.models.is_model(architecture):
        return False
    return timm.models.model_entrypoint(architecture).__module__ in VIT_FAMILY_MODULES


def timm_create_kwargs(config: AudioViTConfig) -> dict:
    """The keyword arguments `TimmBackbone` passes to `timm.create_model` (besides `pretrained=False`).

    ViT/DeiT get the spectrogram geometry: `img_size=(num_mel_bins, max_length)`, `patch_size` and patch
    stride from the config (`timm_kwargs["patch_stride"]` overrides the stride, `timm_kwargs["patch_size"]`
    the patch) and `dynamic_img_size=True` so other clip lengths work. `config.timm_kwargs` wins over
    everything except `in_chans` and `num_classes`.
    """
    user_kwargs = dict(config.timm_kwargs)
    kwargs: dict = {}
    if config.classifier_dropout:
        kwargs["drop_rate"] = config.classifier_dropout
    if config.drop_path_rate:
        kwargs["drop_path_rate"] = config.drop_path_rate
    if is_vit_family(config.timm_model_name):
        if "patch_size" in user_kwargs:
            patch_size = _as_pair(user_kwargs["patch_size"], "timm_kwargs['patch_size']")
            default_stride = patch_size
        else:
            patch_size = tuple(config.patch_size)
            default_stride = (config.frequency_stride, config.time_stride)
        stride = _as_pair(user_kwargs.pop("patch_stride", default_stride), "timm_kwargs['patch_stride']")
        check_patch_fits(patch_size, config.num_mel_bins, config.max_length)
        kwargs.update(
            img_size=(config.num_mel_bins, config.max_length),
            patch_size=patch_size,
            dynamic_img_size=True,
            embed_layer=partial(SpectrogramPatchEmbed, stride=stride),
        )
        if config.hidden_dropout_prob:
            kwargs["proj_drop_rate"] = config.hidden_dropout_prob
        if config.attention_probs_dropout_prob:
            kwargs["attn_drop_rate"] = config.attention_probs_dropout_prob
    elif "patch_stride" in user_kwargs:
        raise ValueError(
            f"timm_kwargs['patch_stride'] is only understood for ViT/DeiT models, not {config.timm_model_name!r}"
        )
    for reserved in ("in_chans", "num_classes", "pretrained"):
        if reserved in user_kwargs:
            raise ValueError(
                f"timm_kwargs[{reserved!r}]={user_kwargs[reserved]!r} is set by AudioViT "
                "(in_chans=1, num_classes=config.num_labels, pretrained=False); remove it"
            )
    kwargs.update(user_kwargs)
    return kwargs


class TimmBackbone(nn.Module):
    """A timm network reading `(batch, num_mel_bins, frames)` log-mel spectrograms.

    `forward(input_values)` returns `(features, pooled)`: timm's `forward_features` output (ViT: tokens
    `(B, prefix + N, D)`; CNN: feature map `(B, C, h, w)`) and the pre-logits embedding `(B, D)`.
    `forward_head(features)` returns the logits `(B, num_labels)` from timm's own head.
    """

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        _require_timm()
        self.num_mel_bins = config.num_mel_bins
        self.model = timm.create_model(
            config.timm_model_name,
            pretrained=False,  # weights come from the checkpoint or from load_pretrained_backbone, never here
            in_chans=1,
            num_classes=config.num_labels,
            **timm_create_kwargs(config),
        )
        if any(p.device.type != "meta" for p in self.model.parameters()):
            # timm initialised its own network (kaiming for CNNs, etc.): keep that instead of letting
            # PreTrainedModel.post_init re-initialise it. Under from_pretrained the network is built on
            # the meta device and left unmarked, so transformers still initialises any key that is missing.
            for module in self.model.modules():
                module._is_hf_initialized = True

    @property
    def is_vit(self) -> bool:
        return isinstance(getattr(self.model, "patch_embed", None), SpectrogramPatchEmbed)

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spectrogram = as_spectrogram_batch(input_values, self.num_mel_bins)  # (B, 1, M, T)
        dtype = next(self.model.parameters()).dtype
        features = self.model.forward_features(spectrogram.to(dtype))
        pooled = self.model.forward_head(features, pre_logits=True)  # (B, D)
        return features, pooled

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.model.forward_head(features)
        if isinstance(logits, (tuple, list)):
            # DeiT with distilled training returns (class head, distillation head); without a teacher the
            # two heads are trained on the same labels, so use their average, as timm does at inference.
            logits = torch.stack(list(logits)).mean(0)
        return logits  # (B, num_labels)


def timm_network(model: nn.Module) -> nn.Module:
    """The timm network inside an AudioViT model / `AudioViTModel` / `TimmBackbone` (or a bare timm model)."""
    model = _unwrap(model)
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


# ----------------------------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------------------------


@dataclass
class PretrainedLoadReport:
    """What `load_pretrained_backbone` did. Keys are the timm network's state-dict keys."""

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)  # key -> how it was changed (and loaded)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why it was not loaded
    missing: list[str] = field(default_factory=list)  # model keys the source does not have
    unexpected: list[str] = field(default_factory=list)  # source keys the model does not have

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "loaded": list(self.loaded),
            "adapted": dict(self.adapted),
            "skipped": dict(self.skipped),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
        }

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        lines += [f"  adapted {key}: {how}" for key, how in self.adapted.items()]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped.items()]
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
    for name in ("model.safetensors", "pytorch_model.bin"):
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
    _require_timm()
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
    prefix, grid_tokens = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    grid = grid_tokens.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2).float()  # (1, D, Go_f, Go_t)
    for axis, (old, new) in enumerate(zip(old_grid, new_grid)):
        if new < old:
            start = old // 2 - new // 2
            grid = grid.narrow(2 + axis, start, new)
        elif new > old:
            size = list(grid.shape[2:])
            size[axis] = new
            grid = F.interpolate(grid, size=tuple(size), mode="bilinear", align_corners=False)
    grid = grid.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim)
    return torch.cat([prefix, grid], dim=1)


def _stem_key(network: nn.Module) -> str | None:
    first_conv = getattr(network, "pretrained_cfg", {}).get("first_conv")
    if isinstance(first_conv, (list, tuple)):
        first_conv = first_conv[0] if first_conv else None
    return f"{first_conv}.weight" if first_conv else None


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
) -> PretrainedLoadReport:
    """Load ImageNet (or other 3-channel) timm weights into an AudioViT timm backbone, adapting them.

    Args:
        model (`nn.Module`): an `AudioViTForAudioClassification` / `AudioViTModel` with `backbone="timm"`,
            a `TimmBackbone`, or a bare timm network.
        source (`str`, `Path` or `dict`): a local `.safetensors` / `.pth` / `.bin` file or a directory
            holding one; `"hf-hub:org/name"` or `"org/name"` (hub repo through the HF cache; honours
            `HF_HUB_OFFLINE`); a timm pretrained tag such as `"vit_tiny_patch16_224.augreg_in21k"`
            (timm downloads it); or a state dict.
        stem_reduction (`str`, defaults to `"sum"`): how the 3-channel first conv becomes 1-channel,
            `"sum"` (keeps the response to a grey image, like timm's `adapt_input_conv`) or `"mean"`.
        pos_embed_resize (`str`, defaults to `"interpolate"`): `"interpolate"` (bicubic) or `"crop"` (AST).
        source_grid (`(int, int)`, *optional*): the source's patch grid when it is not square.
        revision, cache_dir: passed to `huggingface_hub.hf_hub_download` for hub sources.

    Returns:
        [`PretrainedLoadReport`]: loaded / adapted / skipped (with reasons) / missing / unexpected keys.
    """
    if stem_reduction not in STEM_REDUCTIONS:
        raise ValueError(f"stem_reduction={stem_reduction!r} is not supported; use one of {STEM_REDUCTIONS}")
    if pos_embed_resize not in POS_EMBED_RESIZES:
        raise ValueError(f"pos_embed_resize={pos_embed_resize!r} is not supported; use one of {POS_EMBED_RESIZES}")
    network = timm_network(model)
    source_state = read_pretrained_state_dict(source, revision=revision, cache_dir=cache_dir)
    target_state = network.state_dict()
    report = PretrainedLoadReport(source="a state dict" if isinstance(source, dict) else str(source))
    stem_key = _stem_key(network)
    patch_embed = getattr(network, "patch_embed", None)
    num_prefix = 0 if getattr(network, "no_embed_class", False) else getattr(network, "num_prefix_tokens", 0)

    to_load = {}
    for key, value in source_state.items():
        if key not in target_state:
            report.unexpected.append(key)
            continue
        target = target_state[key]
        changes = []
        is_stem = key == stem_key or (
            value.dim() == 4 and target.dim() == 4 and value.shape[1] == 3 and target.shape[1] == 1
        )
        if is_stem and value.dim() == 4 and value.shape[1] != target.shape[1]:
            if target.shape[1] != 1:
                report.skipped[key] = f"stem has {value.shape[1]} input channels, the model {target.shape[1]}"
                continue
            value = reduce_stem(value, stem_reduction)
            changes.append(f"{stem_reduction} of {source_state[key].shape[1]} input channels")
        if key == "patch_embed.proj.weight" and value.shape[-2:] != target.shape[-2:] and value.dim() == 4:
            value = resample_patch_embed(value, list(target.shape[-2:]))
            changes.append(f"patch kernel resampled {tuple(source_state[key].shape[-2:])} -> {tuple(target.shape[-2:])}")
        if key == "pos_embed" and patch_embed is not None and value.dim() == 3:
            # Resize whenever the grids differ, also when the token counts happen to match (14x14 = 4x49).
            source_patches = value.shape[1] - num_prefix
            side = int(round(max(source_patches, 0) ** 0.5))
            old_grid = tuple(source_grid) if source_grid else ((side, side) if side * side == source_patches else None)
            new_grid = tuple(patch_embed.grid_size)
            if old_grid != new_grid and not (old_grid is None and value.shape == target.shape):
                if target.shape[1] - num_prefix != patch_embed.num_patches or source_patches <= 0:
                    report.skipped[key] = f"prefix tokens differ: source {tuple(value.shape)}, model {tuple(target.shape)}"
                    continue
                if old_grid is None:
                    report.skipped[key] = f"{source_patches} source positions are not a square grid; pass source_grid"
                    continue
                value = resize_patch_position_embeddings(value, new_grid, num_prefix, old_grid=old_grid, mode=pos_embed_resize)
                changes.append(f"{pos_embed_resize} {old_grid} -> {new_grid} patch grid, {num_prefix} prefix tokens kept")
        if value.shape != target.shape:
            report.skipped[key] = f"shape {tuple(value.shape)} in the source, {tuple(target.shape)} in the model"
            continue
        to_load[key] = value.to(target.dtype)
        report.loaded.append(key)
        if changes:
            report.adapted[key] = "; ".join(changes)
    report.missing = [key for key in target_state if key not in to_load and key not in report.skipped]
    network.load_state_dict(to_load, strict=False)
    return report


# ----------------------------------------------------------------------------------------------
# Fine-tuning controls
# ----------------------------------------------------------------------------------------------


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / accelerate wrapper."""
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return model


def classifier_parameter_names(model: nn.Module) -> list[str]:
    """Names (as in `model.named_parameters()`) of the classification head's parameters."""
    model = _unwrap(model)
    heads: list[nn.Module] = []
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Module):
        heads.append(classifier)
    else:
        try:
            network = timm_network(model)
        except ValueError:
            network = None
        if network is not None:
            head = network.get_classifier()
            heads.extend(head if isinstance(head, (tuple, list)) else [head])
    head_ids = {id(p) for head in heads for p in head.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in head_ids]


def freeze_backbone(model: nn.Module, freeze: bool = True) -> list[str]:
    """Set `requires_grad=not freeze` on every parameter but the classification head's; return the trainable names.

    Only gradients stop: BatchNorm running statistics still update in `model.train()` mode. Build the
    optimizer over all parameters; AdamW skips parameters whose `.grad` is None, so unfreezing later
    needs no new optimizer.
    """
    model = _unwrap(model)
    head = set(classifier_parameter_names(model))
    for name, param in model.named_parameters():
        param.requires_grad_(True if name in head else not freeze)
    return [name for name, p in model.named_parameters() if p.requires_grad]


class HeadOnlyThenUnfreeze:
    """Train only the classification head for `head_only_epochs` epochs, then the whole model.

    Call `on_epoch_start(epoch)` (0-based) at the start of every epoch; it returns whether the backbone is
    frozen in that epoch. `head_only_epochs=0` never freezes. With several processes (DDP), parameters
    that get no gradient in the head-only epochs need `DistributedDataParallelKwargs(find_unused_parameters=True)`.
    """

    def __init__(self, model: nn.Module, head_only_epochs: int):
        if head_only_epochs < 0:
            raise ValueError(f"head_only_epochs={head_only_epochs} must be >= 0")
        self.model = model
        self.head_only_epochs = int(head_only_epochs)
        self.frozen: bool | None = None

    def on_epoch_start(self, epoch: int) -> bool:
        frozen = epoch < self.head_only_epochs
        if frozen != self.frozen:
            freeze_backbone(self.model, freeze=frozen)
            self.frozen = frozen
        return frozen


def _scratch_layer_id(name: str, num_layers: int) -> int:
    name = name.removeprefix("audio_vit.")
    if name.startswith("embeddings."):
        return 0
    match = re.match(r"layers\.(\d+)\.", name)
    return int(match.group(1)) + 1 if match else num_layers + 1


def _layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """Parameter name -> layer id (0 = embeddings, top = final norm/head) and the number of ids."""
    names = [name for name, _ in model.named_parameters()]
    try:
        network = timm_network(model)
    except ValueError:
        network = None
    if network is None:
        layers = getattr(getattr(model, "audio_vit", model), "layers", None)
        if layers is None:
            raise ValueError(f"layer-wise learning rates need a scratch AudioViT or a timm backbone, got {type(model).__name__}")
        return {name: _scratch_layer_id(name, len(layers)) for name in names}, len(layers) + 2
    if not hasattr(network, "group_matcher"):
        raise ValueError(f"timm model {type(network).__name__} has no group_matcher, so no layer-wise learning rates")
    # timm's own grouping (stem, blocks/stages, head), as its param_groups_layer_decay uses
    # (parameters no pattern matches, i.e. the head, already get the top id)
    network_ids = group_parameters(network, network.group_matcher(coarse=False), reverse=True)
    top = max(network_ids.values())
    prefix = next(f"{path}." if path else "" for path, module in model.named_modules() if module is network)
    ids = {}
    for name in names:
        inner = name[len(prefix):] if name.startswith(prefix) else name
        ids[name] = network_ids.get(inner, top)
    return ids, top + 1


def layerwise_lr_param_groups(
    model: nn.Module, base_lr: float, decay: float = 0.75, weight_decay: float = 0.05
) -> list[dict]:
    """AdamW parameter groups with layer-wise learning-rate decay (BEiT / MAE fine-tuning recipe).

    The head and final norm get `base_lr`, each block below `decay` times the one above, the patch
    embedding and tokens `base_lr * decay ** (num_blocks + 1)`. Biases, norms, positional embeddings and
    CLS/distillation tokens get no weight decay. Works for the scratch ViT (`audio_vit.layers.N`) and for
    timm backbones (timm's `group_matcher`: ViT blocks, ResNet/EfficientNet stages). Frozen parameters are
    included so that unfreezing later needs no new optimizer.

    Returns a list of dicts with `params`, `lr`, `weight_decay` and `layer_id`, for `torch.optim.AdamW`.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay={decay} must be in (0, 1]")
    model = _unwrap(model)
    layer_ids, num_ids = _layer_ids(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        layer_id = layer_ids[name]
        no_decay = param.ndim <= 1 or name.rsplit(".", 1)[-1] in NO_WEIGHT_DECAY_NAMES
        group = groups.setdefault(
            (layer_id, no_decay),
            {
                "params": [],
                "lr": base_lr * decay ** (num_ids - 1 - layer_id),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "layer_id": layer_id,
            },
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


__all__ = [
    "TimmBackbone",
    "SpectrogramPatchEmbed",
    "PretrainedLoadReport",
    "load_pretrained_backbone",
    "read_pretrained_state_dict",
    "reduce_stem",
    "resize_patch_position_embeddings",
    "freeze_backbone",
    "HeadOnlyThenUnfreeze",
    "classifier_parameter_names",
    "layerwise_lr_param_groups",
    "timm_network",
    "timm_create_kwargs",
    "is_vit_family",
]
