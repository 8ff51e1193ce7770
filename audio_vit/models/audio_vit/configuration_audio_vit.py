"""AudioViT configuration: the model's hyperparameters only (no torch import here)."""
from __future__ import annotations

from transformers import PreTrainedConfig

POOLING_MODES = ("cls", "mean", "mean_max", "cls_distillation")
STEMS = ("patch", "conv")
# Each conv-stem layer halves the frequency axis; the first two also halve time (see `conv_stem_output_size`).
CONV_STEM_TIME_STRIDED_LAYERS = 2
BACKBONES = ("scratch", "timm")


def as_pair(value, name: str) -> list[int]:
    """Accept an int or a (frequency, time) pair and return [frequency, time]."""
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [int(value[0]), int(value[1])]
    raise ValueError(f"{name}={value!r} must be an int or a (frequency, time) pair of ints")


class AudioViTConfig(PreTrainedConfig):
    r"""Configuration of an [`AudioViTModel`] / [`AudioViTForAudioClassification`].

    The model input is a log-mel "image" of shape `(batch, num_mel_bins, max_length)`, as produced by
    [`AudioViTFeatureExtractor`].

    Args:
        num_mel_bins (`int`, defaults to 64): mel bands of the input (its height).
        max_length (`int`, defaults to 128): frames of the input the positional embeddings are laid out for
            (its width). Other lengths work: the embeddings are interpolated along time.
        patch_size (`int` or `(int, int)`, defaults to `(64, 2)`): patch height (mel bins) and width (frames).
            Full-frequency patches (height = `num_mel_bins`) learn fastest on small datasets.
        frequency_stride (`int`, defaults to the patch height): step between patches along frequency;
            smaller than the patch height gives overlapping patches, as in AST.
        time_stride (`int`, defaults to the patch width): step between patches along time.
        hidden_size (`int`, defaults to 128): width of the transformer.
        num_hidden_layers (`int`, defaults to 4): transformer blocks.
        num_attention_heads (`int`, defaults to 4): attention heads; must divide `hidden_size`.
        intermediate_size (`int`, defaults to `4 * hidden_size`): MLP width.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout on embeddings, attention output and MLP.
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention weights.
        drop_path_rate (`float`, defaults to 0.0): stochastic depth, linearly increasing over the blocks.
        classifier_dropout (`float`, defaults to 0.0): dropout before the classification head.
        layer_norm_eps (`float`, defaults to 1e-6): epsilon of the layer norms.
        qkv_bias (`bool`, defaults to `True`): bias in the fused query/key/value projection.
        pooling (`str`, defaults to `"cls"`): `"cls"` (the CLS token), `"mean"` (mean of patch tokens),
            `"mean_max"` (their mean plus their maximum, as PANNs pool over time: a short event in a long window
            is not averaged away) or `"cls_distillation"` (mean of the CLS and distillation tokens, as AST pools;
            needs `distillation_token`).
        distillation_token (`bool`, defaults to `False`): a second learned prefix token after CLS (DeiT / AST), with
            its own position embedding; the scratch ViT only.
        distillation_head (`bool`, defaults to `False`): a second linear head on the distillation token's output
            (DeiT): in training it learns the teacher's predictions (`audio-vit train --teacher`), the class head the
            labels; the logits are the mean of the two heads. Needs `distillation_token`, not with
            `pooling="cls_distillation"` (which already feeds that token to the one head).
        classifier_layernorm (`bool`, defaults to `False`): a LayerNorm before the classification head's linear
            layer (AST's head); the scratch ViT only.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal weight init.
        backbone (`str`, defaults to `"scratch"`): `"scratch"` for the ViT defined here, `"timm"` for a timm model.
        timm_model_name (`str`, *optional*): the timm architecture when `backbone="timm"`, e.g. `"resnet18"`.
        timm_kwargs (`dict`, *optional*): extra keyword arguments for `timm.create_model`.
        num_channels (`int`, defaults to 1): input channels (a mel spectrogram has one).
        stem (`str`, defaults to `"patch"`): how the spectrogram becomes tokens. `"patch"`: one linear projection
            per patch (plain ViT/AST). `"conv"`: "early convolutions" (Xiao et al. 2021): a few 3x3 conv + batch
            norm + GELU layers first (each halves frequency, the first two also halve time), then patches are cut
            from the stem's feature map. The locality bias of the stem lets the ViT learn from hundreds of clips.
        stem_channels (`list[int]`, defaults to `[32, 64, 128]`): channels of the conv-stem layers.
    """

    model_type = "audio_vit"
    # What register_for_auto_class() sets, without importing transformers' Auto modules: save_pretrained then
    # writes `auto_map` and copies this file, so `trust_remote_code=True` loads work without audio_vit.
    _auto_class = "AutoConfig"

    # transformers 5 configs are dataclasses: each hyperparameter is a typed field.
    num_mel_bins: int = 64
    max_length: int = 128
    patch_size: int | list[int] | tuple[int, int] = (64, 2)
    frequency_stride: int | None = None
    time_stride: int | None = None
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    classifier_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    pooling: str = "cls"
    distillation_token: bool = False
    distillation_head: bool = False
    classifier_layernorm: bool = False
    initializer_range: float = 0.02
    backbone: str = "scratch"
    timm_model_name: str | None = None
    timm_kwargs: dict | None = None
    num_channels: int = 1
    stem: str = "patch"
    stem_channels: list[int] | tuple[int, ...] = (32, 64, 128)

    def __post_init__(self, **kwargs):
        self.patch_size = as_pair(self.patch_size, "patch_size")
        if self.frequency_stride is None:
            self.frequency_stride = self.patch_size[0]
        if self.time_stride is None:
            self.time_stride = self.patch_size[1]
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        self.timm_kwargs = dict(self.timm_kwargs or {})
        self.stem_channels = [int(c) for c in self.stem_channels]
        super().__post_init__(**kwargs)
        self.check_geometry()

    @property
    def token_map_size(self) -> tuple[int, int]:
        """(frequency, time) size of the map patches are cut from: the input, or the conv stem's output."""
        if self.stem == "conv":
            return conv_stem_output_size(self.num_mel_bins, self.max_length, len(self.stem_channels))
        return self.num_mel_bins, self.max_length

    @property
    def stem_time_stride(self) -> int:
        """Input frames per step of the token map along time."""
        return 2 ** min(CONV_STEM_TIME_STRIDED_LAYERS, len(self.stem_channels)) if self.stem == "conv" else 1

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: CLS, and the distillation token when configured."""
        return 2 if self.distillation_token else 1

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(frequency, time) patch counts for an input of `num_mel_bins x max_length`."""
        height, width = self.token_map_size
        return (
            (height - self.patch_size[0]) // self.frequency_stride + 1,
            (width - self.patch_size[1]) // self.time_stride + 1,
        )

    def check_geometry(self) -> None:
        """Raise `ValueError` naming the values when the configured model cannot be built."""
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone={self.backbone!r} is not supported; use one of {BACKBONES}")
        if self.backbone == "timm" and not self.timm_model_name:
            raise ValueError("backbone='timm' needs timm_model_name, e.g. timm_model_name='resnet18'")
        if self.stem not in STEMS:
            raise ValueError(f"stem={self.stem!r} is not supported; use one of {STEMS}")
        if self.stem == "conv" and (not self.stem_channels or min(self.stem_channels) <= 0):
            raise ValueError(f"stem_channels={self.stem_channels} must be a non-empty list of positive integers")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r} is not supported; use one of {POOLING_MODES}")
        if self.pooling == "cls_distillation" and not self.distillation_token:
            raise ValueError("pooling='cls_distillation' needs distillation_token=True (it averages CLS and that token)")
        if self.distillation_head and (not self.distillation_token or self.pooling == "cls_distillation"):
            raise ValueError("distillation_head=True needs distillation_token=True and a pooling other than "
                             f"'cls_distillation' (got distillation_token={self.distillation_token}, "
                             f"pooling={self.pooling!r})")
        if self.backbone != "scratch" and (self.distillation_token or self.classifier_layernorm):
            raise ValueError(
                f"distillation_token / classifier_layernorm are options of the scratch ViT, not backbone={self.backbone!r}"
            )
        for name in ("num_mel_bins", "max_length", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "frequency_stride", "time_stride", "num_channels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate", "classifier_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1)")
        if min(self.patch_size) <= 0:
            raise ValueError(f"patch_size={self.patch_size} must be positive")
        # timm CNNs have no patches, and timm ViTs check theirs when built (which timm architecture is a
        # ViT is timm's to say; this file does not import timm).
        if self.backbone == "scratch":
            check_patch_fits(self.patch_size, *self.token_map_size)


def conv_stem_output_size(num_mel_bins: int, frames: int, num_layers: int) -> tuple[int, int]:
    """(frequency, time) size after `num_layers` stride-2 3x3 convs with padding 1 (ceil halving)."""
    for layer in range(num_layers):
        num_mel_bins = (num_mel_bins + 1) // 2
        if layer < CONV_STEM_TIME_STRIDED_LAYERS:
            frames = (frames + 1) // 2
    return num_mel_bins, frames


def check_patch_fits(patch_size, num_mel_bins: int, max_length: int) -> None:
    """Raise `ValueError` when a (frequency, time) patch is larger than the `num_mel_bins x max_length` input."""
    patch_f, patch_t = patch_size
    if patch_f > num_mel_bins:
        raise ValueError(
            f"patch_size={list(patch_size)} is taller than the input: patch height {patch_f} > "
            f"num_mel_bins={num_mel_bins}"
        )
    if patch_t > max_length:
        raise ValueError(
            f"patch_size={list(patch_size)} is wider than the input: patch width {patch_t} > "
            f"max_length={max_length} frames"
        )
