"""AudioViT: a Vision Transformer over log-mel spectrograms, or a timm network behind the same API.

Input layout everywhere: `input_values` of shape `(batch, num_mel_bins, frames)` (an optional channel
axis of size 1 is accepted), as produced by `AudioViTFeatureExtractor`.

The models are here; the transformer blocks are in `modeling_layers.py`, and turning the spectrogram into tokens
(conv stem, patches, CLS / distillation tokens, positions) in `modeling_spectrogram_embeddings.py`, both shipped
with checkpoints too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration_audio_vit import AudioViTConfig
from .modeling_layers import AudioViTBlock, patch_padding_mask
from .modeling_spectrogram_embeddings import AudioViTEmbeddings, stem_frame_mask


# ----------------------------------------------------------------------------------------------
# Pretrained-model classes
# ----------------------------------------------------------------------------------------------


class AudioViTPreTrainedModel(PreTrainedModel):
    config_class = AudioViTConfig
    base_model_prefix = "audio_vit"
    main_input_name = "input_values"
    _supports_sdpa = True
    _no_split_modules = ["AudioViTBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, AudioViTEmbeddings):
            nn.init.trunc_normal_(module.cls_token, std=std)
            if hasattr(module, "dist_token"):
                nn.init.trunc_normal_(module.dist_token, std=std)
            nn.init.trunc_normal_(module.position_embeddings, std=std)


class AudioViTModel(AudioViTPreTrainedModel):
    """The bare encoder: returns token states (`last_hidden_state`) and a pooled embedding (`pooler_output`).

    A config with `backbone="timm"` builds an [`AudioViTTimmModel`] instead (a subclass with the same
    outputs and declarations), so `AudioViTModel(config)` / `from_pretrained` serve both encoders.
    """

    # timm declares the weight-decay exceptions and the depth of each parameter the same way (timm/optim).
    _NO_WEIGHT_DECAY = ("embeddings.cls_token", "embeddings.position_embeddings")
    # Optional "audio_vit." prefix: the same matcher serves AudioViTForAudioClassification's parameter names.
    _GROUP_MATCHER = {"stem": r"^(?:audio_vit\.)?embeddings", "blocks": r"^(?:audio_vit\.)?layers\.(\d+)"}
    has_own_head = False  # the classification model adds a linear head on `pooler_output`

    def __new__(cls, config: AudioViTConfig | None = None, *args, **kwargs):
        if cls is AudioViTModel and getattr(config, "backbone", None) == "timm":
            cls = AudioViTTimmModel
        return super().__new__(cls)

    _auto_class = "AutoModel"  # as register_for_auto_class() sets it (see AudioViTConfig)

    def __init__(self, config: AudioViTConfig):
        super().__init__(config)
        config.check_geometry()
        self.embeddings = AudioViTEmbeddings(config)
        # Stochastic depth grows linearly with depth (plain Python: the model may be built on the meta device).
        layers = config.num_hidden_layers
        drop_rates = [config.drop_path_rate * i / max(1, layers - 1) for i in range(layers)]
        self.layers = nn.ModuleList(AudioViTBlock(config, rate) for rate in drop_rates)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def forward_features(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """`last_hidden_state`: final-norm token states `(B, 1 + N, D)` (CLS first) for the scratch ViT."""
        return self(input_values, attention_mask=attention_mask, return_dict=True).last_hidden_state

    def no_weight_decay(self) -> set[str]:
        """Names of the non-1-D parameters that get no weight decay (timm's convention)."""
        names = set(self._NO_WEIGHT_DECAY)
        if self.config.distillation_token:
            names.add("embeddings.dist_token")
        return names

    def group_matcher(self, coarse: bool = False):
        """Depth of each parameter for layer-wise LR decay: embeddings 0, block N N+1, the rest (final norm, head) top."""
        return dict(self._GROUP_MATCHER)

    def get_classifier(self) -> list[nn.Module]:
        return []  # the bare encoder has no head

    def feature_encoder_parameter_names(self) -> set[str]:
        """Names of the feature encoder's parameters: the stem of `group_matcher()` (depth 0), i.e. all of
        `embeddings` (the conv stem or the patch projection, the CLS / distillation tokens and the positions)."""
        stem = re.compile(self._GROUP_MATCHER["stem"])
        return {name for name, _ in self.named_parameters() if stem.match(name)}

    def _encode(self, input_values, attention_mask=None, output_hidden_states=False):
        tokens, grid = self.embeddings(input_values)
        token_mask = None
        if attention_mask is not None:
            token_mask = patch_padding_mask(stem_frame_mask(attention_mask, self.config.stem_time_stride),
                                            self.config.patch_size[1], self.config.time_stride, grid,
                                            num_prefix_tokens=self.config.num_prefix_tokens)
        attn_mask = token_mask[:, None, None, :] if token_mask is not None else None  # (B, 1, 1, N) broadcast
        hidden_states = (tokens,) if output_hidden_states else None
        for layer in self.layers:
            tokens = layer(tokens, attn_mask)
            if output_hidden_states:
                hidden_states += (tokens,)
        return self.layernorm(tokens), hidden_states, token_mask

    def pool(self, tokens: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, prefix + N, D)` -> `(B, D)`: the CLS token, the mean of CLS and distillation tokens (AST), the
        mean of the (valid) patch tokens, or that mean plus their maximum (`mean_max`)."""
        if self.config.pooling == "cls":
            return tokens[:, 0]
        if self.config.pooling == "cls_distillation":
            return (tokens[:, 0] + tokens[:, 1]) / 2
        prefix = self.config.num_prefix_tokens
        patches = tokens[:, prefix:]  # (B, N, D)
        if token_mask is None:
            pooled = patches.mean(dim=1)
            return pooled + patches.amax(dim=1) if self.config.pooling == "mean_max" else pooled
        valid = token_mask[:, prefix:, None]  # (B, N, 1)
        weights = valid.to(patches.dtype)
        pooled = (patches * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        if self.config.pooling == "mean_max":
            # PANNs-style: the max lets a short event in a long, mostly background window carry the clip.
            # A row without any valid token (patch_padding_mask never makes one) takes 0, not the dtype's minimum.
            valid = valid.bool()
            maximum = patches.masked_fill(~valid, torch.finfo(patches.dtype).min).amax(dim=1)
            pooled = pooled + torch.where(valid.any(dim=1), maximum, torch.zeros_like(maximum))
        return pooled

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch, num_mel_bins, frames)`): normalized log-mel spectrograms.
        attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*): 1 for real frames, 0 for padding;
            padded patches are then ignored by attention and mean pooling.
        """
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        last_hidden_state, hidden_states, token_mask = self._encode(input_values, attention_mask, output_hidden_states)
        return _encoder_output(last_hidden_state, self.pool(last_hidden_state, token_mask), hidden_states, return_dict)


class AudioViTTimmModel(AudioViTModel):
    """[`AudioViTModel`] whose encoder is a timm network (`modeling_timm_encoder.TimmBackbone`).

    `last_hidden_state` is timm's `forward_features` output (ViT: tokens `(B, prefix + N, D)`; CNN: a feature
    map `(B, C, h, w)`, as in transformers' `TimmWrapperModel`), `pooler_output` timm's pre-logits `(B, D)`.
    `attention_mask` is honoured as `TimmBackbone` describes. The network carries its own classification head.
    """

    has_own_head = True

    def __init__(self, config: AudioViTConfig):
        AudioViTPreTrainedModel.__init__(self, config)
        config.check_geometry()
        from .modeling_timm_encoder import TimmBackbone  # timm is only needed for timm backbones

        self.timm_backbone = TimmBackbone(config)
        self.post_init()

    def no_weight_decay(self) -> set[str]:
        return {f"timm_backbone.{name}" for name in self.timm_backbone.no_weight_decay()}

    def group_matcher(self, coarse: bool = False):
        """timm's grouping of its network (stem, blocks/stages, head); parameters outside it get the top id."""
        ids = self.timm_backbone.layer_ids()
        top = max(ids.values())
        return lambda name: (ids.get(name.split("timm_backbone.", 1)[-1], top),)

    def get_classifier(self) -> list[nn.Module]:
        return self.timm_backbone.get_classifier()

    def feature_encoder_parameter_names(self) -> set[str]:
        """Names of the parameters timm's `group_matcher()` puts in the stem (depth 0): ViT / DeiT their patch
        embedding, class (and distillation) token and positions; ResNet `conv1` / `bn1`; EfficientNet `conv_stem` / `bn1`."""
        return {f"timm_backbone.{name}" for name, depth in self.timm_backbone.layer_ids().items() if depth == 0}

    def forward_head(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """Logits `(B, num_labels)` from timm's own head."""
        return self.timm_backbone.forward_head(last_hidden_state)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None, **kwargs):
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features, pooled = self.timm_backbone(input_values, attention_mask)
        return _encoder_output(features, pooled, None, return_dict)


@dataclass
class AudioViTClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` of a model with a distillation head (`config.distillation_head`): `logits` is the
    mean of `class_logits` (head on the pooled tokens) and `distillation_logits` (head on the distillation token),
    as DeiT predicts; distillation training reads the two apart."""

    class_logits: torch.FloatTensor | None = None
    distillation_logits: torch.FloatTensor | None = None


def _encoder_output(last_hidden_state, pooled, hidden_states, return_dict: bool):
    if not return_dict:
        return tuple(v for v in (last_hidden_state, pooled, hidden_states) if v is not None)
    return BaseModelOutputWithPooling(last_hidden_state=last_hidden_state, pooler_output=pooled, hidden_states=hidden_states)


class AudioViTForAudioClassification(AudioViTPreTrainedModel):
    """AudioViT with a linear classification head on the pooled embedding (timm networks: their own head)."""

    _auto_class = "AutoModelForAudioClassification"  # as register_for_auto_class() sets it
    # The Trainer passes `num_items_in_batch` (its count of label entries in the accumulated batch, over all
    # processes) and then neither divides the loss by the accumulation steps nor averages it over processes:
    # `compute_loss` normalises by that count instead.
    accepts_loss_kwargs = True
    _frozen_batch_norms: tuple[nn.Module, ...] = ()  # set by freeze_feature_encoder

    def __init__(self, config: AudioViTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.audio_vit = AudioViTModel(config)
        self.classifier = None
        if not self.audio_vit.has_own_head:
            head = [nn.Dropout(config.classifier_dropout), nn.Linear(config.hidden_size, config.num_labels)]
            if config.classifier_layernorm:  # AST's head: LayerNorm + Linear (then classifier.0 is the norm)
                head.insert(0, nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps))
            self.classifier = nn.Sequential(*head)
        self.distillation_classifier = None
        if config.distillation_head:  # DeiT: a head on the distillation token, for the teacher's targets
            self.distillation_classifier = nn.Sequential(nn.Dropout(config.classifier_dropout),
                                                         nn.Linear(config.hidden_size, config.num_labels))
        self.post_init()

    def freeze_feature_encoder(self) -> None:
        """Stop training the feature encoder, the part that turns the spectrogram into tokens or early features, as
        transformers' audio models (wav2vec2, ...) do for their waveform encoder and the official audio-classification
        example does by default (`--freeze_feature_encoder True`).

        Frozen: the stem `group_matcher()` declares (`feature_encoder_parameter_names()`). For the scratch ViT with the
        patch stem that is the patch projection; with the conv stem (`stem="conv"`) also the stem's convolutions and
        batch norms; in both the CLS (and distillation) token and the positions. For a timm backbone it is timm's stem
        group (ViT: patch embedding, class token, positions; ResNet: `conv1` / `bn1`; EfficientNet: `conv_stem` /
        `bn1`). The blocks and the head stay trainable.

        The frozen parameters get `requires_grad=False`, hence no gradient; the Trainer's optimizer leaves them out (no
        update and no weight decay), and AdamW skips a parameter whose `.grad` is None. The batch norms among them stay
        in eval mode, also after `model.train()`, so their running statistics, and the features, do not change.
        """
        names = {f"audio_vit.{name}" for name in self.audio_vit.feature_encoder_parameter_names()}
        for name, param in self.named_parameters():
            if name in names:
                param.requires_grad_(False)
        self._frozen_batch_norms = tuple(
            module for name, module in self.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and f"{name}.weight" in names
        )
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen_batch_norms:  # as long as they stay frozen (see `freeze_feature_encoder`)
            if not any(param.requires_grad for param in module.parameters()):
                module.eval()
        return self

    def no_weight_decay(self) -> set[str]:
        return {f"audio_vit.{name}" for name in self.audio_vit.no_weight_decay()}

    def group_matcher(self, coarse: bool = False):
        return self.audio_vit.group_matcher(coarse)

    def get_classifier(self) -> list[nn.Module]:
        """The classification head module(s), what stays trainable when the backbone is frozen."""
        if self.classifier is None:
            return self.audio_vit.get_classifier()
        return [self.classifier] + ([self.distillation_classifier] if self.distillation_classifier is not None else [])

    def forward_features(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embeddings `(B, D)`, the input of the classification head."""
        return self.audio_vit(input_values, attention_mask=attention_mask).pooler_output

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        labels (`torch.Tensor`, *optional*): class ids `(batch,)` for single-label classification, soft targets
            `(batch, num_labels)` (e.g. from mixup), multi-hot floats `(batch, num_labels)` when
            `config.problem_type == "multi_label_classification"`, or values for regression (`num_labels == 1`).
        num_items_in_batch (`int` or `torch.Tensor`, *optional*): what the Hugging Face Trainer passes with
            gradient accumulation or several processes: the label entries of the whole accumulated batch. The loss
            is then this batch's summed loss over that count (see `compute_loss`); unset, the mean over the batch.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.audio_vit(
            input_values, attention_mask=attention_mask, output_hidden_states=output_hidden_states, return_dict=True
        )
        if self.classifier is None:
            logits = self.audio_vit.forward_head(outputs.last_hidden_state)
        else:
            logits = self.classifier(outputs.pooler_output)
        class_logits = distillation_logits = None
        if self.distillation_classifier is not None:
            class_logits, distillation_logits = logits, self.distillation_classifier(outputs.last_hidden_state[:, 1])
            logits = (class_logits + distillation_logits) / 2
        loss = None
        if labels is not None:  # the count only when given: a compute_loss(logits, labels) override keeps working
            loss = self.compute_loss(logits, labels, *(() if num_items_in_batch is None else (num_items_in_batch,)))
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states is not None else ())
            return ((loss,) + output) if loss is not None else output
        if class_logits is not None:
            return AudioViTClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                            class_logits=class_logits, distillation_logits=distillation_logits)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor,
                     num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
        """The loss of `logits` against `labels` (see `forward`): the mean over the batch, or, given the Trainer's
        `num_items_in_batch` (its count of label entries, `labels.ne(-100).sum()` over the accumulated batches),
        the sum over this batch divided by that count, so that accumulated and distributed batches average exactly.
        A soft-target row holds `num_labels` entries of that count but is one example."""
        labels = labels.to(logits.device)
        reduction = "mean" if num_items_in_batch is None else "sum"
        problem_type = self.config.problem_type
        if problem_type is None:
            # Float (B, num_labels) targets are soft labels (mixup), not multi-label: that must be asked for.
            problem_type = "regression" if self.num_labels == 1 else "single_label_classification"
        examples_per_item = 1
        if problem_type == "regression":
            loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1), reduction=reduction)
        elif problem_type == "multi_label_classification":
            if labels.shape != logits.shape:
                raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
            loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction=reduction)
        elif labels.is_floating_point():
            if labels.shape != logits.shape:
                raise ValueError(f"soft targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
            loss = F.cross_entropy(logits.float(), labels.float(), reduction=reduction)
            examples_per_item = 1 / self.num_labels
        else:
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_labels):
                raise ValueError(
                    f"labels must be class ids in [0, {self.num_labels - 1}]; got min {int(labels.min())}, "
                    f"max {int(labels.max())}"
                )
            loss = F.cross_entropy(logits.float(), labels.view(-1), reduction=reduction)
        if num_items_in_batch is None:
            return loss
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        return loss / (num_items_in_batch * examples_per_item)


__all__ = ["AudioViTClassifierOutput", "AudioViTPreTrainedModel", "AudioViTModel", "AudioViTTimmModel", "AudioViTForAudioClassification"]
