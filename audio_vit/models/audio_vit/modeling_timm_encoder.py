"""timm networks as AudioViT encoders: `AudioViTConfig(backbone="timm", timm_model_name="resnet18")`.

[`TimmBackbone`] builds `timm.create_model(name, pretrained=False, in_chans=1, num_classes=num_labels)` once, in
`__init__`, with nothing downloaded; ViT/DeiT get a strided spectrogram patch embedding. Network code only:
pretrained (e.g. ImageNet) weights are read and adapted by `audio_vit.pretrained.weights`, training controls
live in `audio_vit.training.param_groups`.

This file is copied next to saved checkpoints for `trust_remote_code`, so it imports only third-party
packages and the audio_vit modules it sits beside (relatively).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_audio_vit import AudioViTConfig, as_pair, check_patch_fits
from .modeling_layers import as_spectrogram_batch, patch_padding_mask

try:  # timm is only needed for backbone="timm"; the try block also keeps it optional for remote-code loading
    import timm
    from timm.layers import PatchEmbed
    from timm.layers.format import Format, nchw_to
    from timm.models import group_parameters
except ImportError:
    timm = None
    PatchEmbed = nn.Module

# timm modules whose models are (Distilled)VisionTransformer: they get the spectrogram patch embedding below.
VIT_FAMILY_MODULES = ("timm.models.vision_transformer", "timm.models.deit")


def require_timm() -> None:
    if timm is None:
        raise ImportError("backbone='timm' needs the timm package: pip install timm")


class SpectrogramPatchEmbed(PatchEmbed):
    """timm's `PatchEmbed` with a stride (overlapping patches, as in AST) and no divisibility checks.

    The patch grid is `(H - patch) // stride + 1` along each axis, like a plain convolution, so any clip
    with at least one patch width of frames works; timm's ViT then resizes its positional embeddings from
    `grid_size` to the grid of each input (`dynamic_img_size=True`). State-dict keys are timm's own.
    """

    def __init__(self, *args, stride=None, **kwargs):
        self._stride = None if stride is None else tuple(as_pair(stride, "patch_stride"))
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
        img_size = tuple(as_pair(img_size, "img_size"))
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
    require_timm()
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
            patch_size = tuple(as_pair(user_kwargs["patch_size"], "timm_kwargs['patch_size']"))
            default_stride = patch_size
        else:
            patch_size = tuple(config.patch_size)
            default_stride = (config.frequency_stride, config.time_stride)
        stride = tuple(as_pair(user_kwargs.pop("patch_stride", default_stride), "timm_kwargs['patch_stride']"))
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

    `forward(input_values, attention_mask=None)` returns `(features, pooled)`: timm's `forward_features`
    output (ViT: tokens `(B, prefix + N, D)`; CNN: feature map `(B, C, h, w)`) and the pre-logits embedding
    `(B, D)`. `forward_head(features)` returns the logits `(B, num_labels)` from timm's own head.

    With an `attention_mask` (1 = real frame), a ViT's attention ignores padded patches; for average-pooled
    networks (CNNs, `global_pool="avg"` ViTs) the padded time positions of the features are zeroed and the
    rest rescaled, so timm's average pooling is the mean over real audio.
    """

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        require_timm()
        self.num_mel_bins = config.num_mel_bins
        self.model = timm.create_model(
            config.timm_model_name,
            pretrained=False,  # weights come from the checkpoint or from audio_vit.pretrained.weights, never here
            in_chans=1,
            num_classes=config.num_labels,
            **timm_create_kwargs(config),
        )
        if not self.is_vit:
            # Convolutions run 2-4x faster on a CPU (and use tensor cores on a GPU) with the channels-last layout.
            self.model.to(memory_format=torch.channels_last)
        if any(p.device.type != "meta" for p in self.model.parameters()):
            # timm initialised its own network (kaiming for CNNs, etc.): keep that instead of letting
            # PreTrainedModel.post_init re-initialise it. Under from_pretrained the network is built on
            # the meta device and left unmarked, so transformers still initialises any key that is missing.
            for module in self.model.modules():
                module._is_hf_initialized = True

    @property
    def is_vit(self) -> bool:
        return isinstance(getattr(self.model, "patch_embed", None), SpectrogramPatchEmbed)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None):
        features = self.forward_features(input_values, attention_mask)
        return features, self.model.forward_head(features, pre_logits=True)  # (B, D)

    def forward_features(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None):
        spectrogram = as_spectrogram_batch(input_values, self.num_mel_bins)  # (B, 1, M, T)
        spectrogram = spectrogram.to(next(self.model.parameters()).dtype)
        if not self.is_vit:
            spectrogram = spectrogram.contiguous(memory_format=torch.channels_last)
        if attention_mask is None:
            return self.model.forward_features(spectrogram)
        if self.is_vit:
            return self._masked_vit_features(spectrogram, attention_mask)
        return self._masked_cnn_features(spectrogram, attention_mask)

    def _pool_type(self) -> str:
        pool = getattr(self.model, "global_pool", None)
        return pool if isinstance(pool, str) else getattr(pool, "pool_type", repr(pool))

    def _masked_vit_features(self, spectrogram: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pool, prefix = self._pool_type(), self.model.num_prefix_tokens
        if pool not in ("token", "avg"):
            raise ValueError(f"attention_mask is supported for timm ViTs with global_pool 'token' or 'avg', not {pool!r}")
        embed = self.model.patch_embed
        grid = embed.dynamic_feat_size(spectrogram.shape[-2:])
        token_mask = patch_padding_mask(attention_mask, embed.patch_size[1], embed.stride[1], grid, prefix)
        tokens = self.model.forward_features(spectrogram, attn_mask=token_mask[:, None, None, :])  # (B, prefix + N, D)
        if pool == "token":
            return tokens
        return torch.cat([tokens[:, :prefix], _rescale_valid(tokens[:, prefix:], token_mask[:, prefix:, None])], dim=1)

    def _masked_cnn_features(self, spectrogram: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self._pool_type() != "avg":
            raise ValueError(f"attention_mask needs an average-pooled timm network; {type(self.model).__name__} pools "
                             f"with {self._pool_type()!r}")
        features = self.model.forward_features(spectrogram)  # (B, C, h, w)
        # A feature column covers about frames / w input frames; it is real audio if any of them is (the real frames
        # need not start the window: a time shift moves them). An all-padding example counts as all real.
        frames = attention_mask[:, None, :].to(features.dtype)  # (B, 1, T)
        column_mask = F.adaptive_max_pool1d(frames, features.shape[-1])[:, 0] > 0  # (B, w)
        column_mask = column_mask | ~column_mask.any(dim=1, keepdim=True)
        return _rescale_valid(features, column_mask[:, None, None, :].expand(-1, 1, features.shape[2], -1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.model.forward_head(features)
        if isinstance(logits, (tuple, list)):
            # DeiT with distilled training returns (class head, distillation head); without a teacher the
            # two heads are trained on the same labels, so use their average, as timm does at inference.
            logits = torch.stack(list(logits)).mean(0)
        return logits  # (B, num_labels)

    def no_weight_decay(self) -> set[str]:
        """timm's declaration (positions, class/distillation tokens), with this module's prefix."""
        names = self.model.no_weight_decay() if hasattr(self.model, "no_weight_decay") else set()
        return {f"model.{name}" for name in names}

    def layer_ids(self) -> dict[str, int]:
        """Parameter name (with this module's prefix) -> depth id from timm's `group_matcher` (stem 0 ... head)."""
        if not hasattr(self.model, "group_matcher"):
            raise ValueError(f"timm model {type(self.model).__name__} has no group_matcher, so no layer-wise learning rates")
        # timm's own grouping (stem, blocks/stages, head), as its param_groups_layer_decay uses
        # (parameters no pattern matches, i.e. the head, already get the top id)
        ids = group_parameters(self.model, self.model.group_matcher(coarse=False), reverse=True)
        return {f"model.{name}": layer for name, layer in ids.items()}

    def get_classifier(self) -> list[nn.Module]:
        """timm's classification head module(s) (DeiT: class and distillation heads)."""
        head = self.model.get_classifier()
        return list(head) if isinstance(head, (tuple, list)) else [head]


def _rescale_valid(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero the invalid entries and scale the valid ones by total / valid count, so that a plain mean over the
    token / spatial axes equals the mean over the valid entries only. `valid` broadcasts against `values`."""
    valid = valid.to(values.dtype)
    dims = tuple(range(1, valid.dim()))
    total = torch.tensor(float(valid[0].numel()), dtype=values.dtype, device=values.device)
    scale = total / valid.sum(dim=dims, keepdim=True).clamp_min(1.0)
    return values * valid * scale


__all__ = ["SpectrogramPatchEmbed", "TimmBackbone", "is_vit_family", "require_timm", "timm_create_kwargs"]
