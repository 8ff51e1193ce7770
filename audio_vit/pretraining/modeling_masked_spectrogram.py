"""Masked spectrogram modeling around the scratch `AudioViTModel`: what `audio-vit pretrain` trains (training only).

MAE-style (MAE-AST, AudioMAE): the encoder sees only the visible tokens (at a masking ratio of 0.75 a quarter of
them, so its transformer costs a quarter); a light transformer decoder puts a learned mask token at every hidden
position and reconstructs each hidden patch of the normalised spectrogram, normalised per patch (MAE's
`norm_pix_loss`). The loss is the mean squared error over hidden patches, over their frames that hold audio, never
over a padding-only patch (`masking.sample_token_mask` never hides one). An optional SSAST-style contrastive term
(InfoNCE) asks a second head to pick each hidden patch among all hidden patches of its clip.

The conv stem convolves across patch borders, so a visible token's receptive field would see hidden audio. As in
SparK (Tian et al. 2023), the stem runs sparsely: hidden regions are zeroed in the input and after every
convolution, and batch norm takes its statistics over visible positions only, so nothing of a hidden patch reaches
the encoder and the statistics fine-tuning starts from are those of real spectrograms. A patch stem with
non-overlapping patches needs none of this: hidden tokens are simply dropped.

Only `encoder` (an `AudioViTModel`) is saved for fine-tuning; the decoder and heads stay here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ..models.audio_vit.configuration_audio_vit import CONV_STEM_TIME_STRIDED_LAYERS, AudioViTConfig, conv_stem_output_size
from ..models.audio_vit.modeling_audio_vit import AudioViTModel
from ..models.audio_vit.modeling_spectrogram_embeddings import stem_frame_mask
from ..models.audio_vit.modeling_layers import AudioViTBlock, as_spectrogram_batch, patch_padding_mask, resize_pos_embed


# ----------------------------------------------------------------------------------------------
# Token geometry: which input region each token covers
# ----------------------------------------------------------------------------------------------


def check_pretrainable(config: AudioViTConfig) -> None:
    """Raise `ValueError` naming the values when masked spectrogram modeling cannot run on `config`'s encoder."""
    if config.backbone != "scratch":
        raise ValueError(f"masked spectrogram modeling needs the scratch ViT, not backbone={config.backbone!r}")
    if tuple(config.patch_size) != (config.frequency_stride, config.time_stride):
        raise ValueError(
            f"masked spectrogram modeling needs non-overlapping patches (a hidden patch must not be seen through a "
            f"visible one): patch_size={list(config.patch_size)} with frequency_stride={config.frequency_stride}, "
            f"time_stride={config.time_stride}; leave the strides at the patch size"
        )


def stem_scale(config: AudioViTConfig) -> tuple[int, int]:
    """Input (mel bins, frames) per step of the map patches are cut from: (1, 1) for the patch stem."""
    if config.stem != "conv":
        return 1, 1
    return 2 ** len(config.stem_channels), config.stem_time_stride


def token_grid(config: AudioViTConfig, frames: int) -> tuple[int, int]:
    """(frequency rows, time steps) of the token grid for an input of `num_mel_bins x frames`."""
    height, width = config.num_mel_bins, frames
    if config.stem == "conv":
        height, width = conv_stem_output_size(height, width, len(config.stem_channels))
    patch_f, patch_t = config.patch_size
    return (height - patch_f) // config.frequency_stride + 1, (width - patch_t) // config.time_stride + 1


def token_validity(config: AudioViTConfig, attention_mask: torch.Tensor | None, grid: tuple[int, int],
                   batch: int, device=None) -> torch.Tensor:
    """Tokens that see real audio `(B, N)` (bool), from the frame mask `(B, frames)` (None: every token)."""
    if attention_mask is None:
        return torch.ones(batch, grid[0] * grid[1], dtype=torch.bool, device=device)
    return patch_padding_mask(stem_frame_mask(attention_mask, config.stem_time_stride), config.patch_size[1],
                              config.time_stride, grid, num_prefix_tokens=0)


def patchify(values: torch.Tensor, config: AudioViTConfig, grid: tuple[int, int]) -> torch.Tensor:
    """`(B, M, T)` input (or a `(B, 1, T)` frame mask broadcast over mel bins) -> the input region of every token
    `(B, N, patch_height x patch_width)`, zero-padded where the grid reaches past the input."""
    scale_f, scale_t = stem_scale(config)
    height, width = config.patch_size[0] * scale_f, config.patch_size[1] * scale_t  # one token's input region
    rows, steps = grid
    batch = values.shape[0]
    values = values.expand(-1, config.num_mel_bins, -1)[:, : rows * height, : steps * width]
    values = F.pad(values, (0, steps * width - values.shape[2], 0, rows * height - values.shape[1]))
    patches = values.reshape(batch, rows, height, steps, width).permute(0, 1, 3, 2, 4)  # (B, Gf, Gt, h, w)
    return patches.reshape(batch, rows * steps, height * width)


def _upsample(grid_map: torch.Tensor, factors: tuple[int, int], size: tuple[int, int], fill: float) -> torch.Tensor:
    """`(B, 1, h, w)` map -> `(B, 1, *size)`: each cell repeated `factors` times, cropped, or padded with `fill`."""
    out = grid_map.repeat_interleave(factors[0], dim=2).repeat_interleave(factors[1], dim=3)[..., : size[0], : size[1]]
    return F.pad(out, (0, size[1] - out.shape[3], 0, size[0] - out.shape[2]), value=fill)


# ----------------------------------------------------------------------------------------------
# The sparse conv stem (SparK): convolutions and batch norm over the visible regions only
# ----------------------------------------------------------------------------------------------


def masked_batch_norm(x: torch.Tensor, keep: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    """`norm` applied with statistics over the positions where `keep` `(B, 1, H, W)` is 1 (training: the batch's,
    which also update the running statistics; evaluation: the running ones)."""
    if not norm.training:
        return norm(x)
    x = x.float()  # statistics in float32, also under bf16 / fp16 autocast
    count = (keep.sum() * 1.0).clamp_min(2.0)
    mean = (x * keep).sum(dim=(0, 2, 3)) / count  # (C,)
    var = ((x - mean[None, :, None, None]).square() * keep).sum(dim=(0, 2, 3)) / count
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
        norm.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        norm.running_var.mul_(1 - momentum).add_(var.detach() * count / (count - 1), alpha=momentum)
    x = (x - mean[None, :, None, None]) * torch.rsqrt(var + norm.eps)[None, :, None, None]
    return x * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]


def sparse_conv_stem(stem: nn.Module, spectrogram: torch.Tensor, visible_map: torch.Tensor,
                     config: AudioViTConfig) -> torch.Tensor:
    """The conv stem's `(B, C, H, W)` map of `spectrogram` `(B, 1, M, T)` seen through `visible_map` `(B, 1, H, W)`
    (1 = visible at the stem's output resolution): hidden regions are zero in the input and after every layer."""
    layers = list(stem.layers)
    num_layers = len(layers) // 3
    time_strides = [2 if index < CONV_STEM_TIME_STRIDED_LAYERS else 1 for index in range(num_layers)]
    scale_f, scale_t = stem_scale(config)
    x = spectrogram * _upsample(visible_map, (scale_f, scale_t), spectrogram.shape[-2:], fill=1.0)
    for index in range(num_layers):
        conv, norm, act = layers[3 * index: 3 * index + 3]
        x = conv(x)
        # this layer's output -> the stem's output: halved in frequency by each later layer, in time by the strided ones
        factors = (2 ** (num_layers - 1 - index), int(torch.tensor(time_strides[index + 1:] or [1]).prod()))
        keep = _upsample(visible_map, factors, x.shape[-2:], fill=1.0)
        x = act(masked_batch_norm(x, keep, norm)) * keep
    return x


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


@dataclass
class MaskedSpectrogramOutput(ModelOutput):
    """Output of [`MaskedSpectrogramModel`].

    Args:
        loss (`torch.FloatTensor`): `reconstruction_loss + contrastive_weight x contrastive_loss`.
        reconstruction_loss (`torch.FloatTensor`): mean squared error of the hidden patches (normalised targets).
        contrastive_loss (`torch.FloatTensor`, *optional*): InfoNCE over the hidden patches of each clip.
        contrastive_accuracy (`torch.FloatTensor`, *optional*): share of hidden patches the contrastive head picks.
        logits (`torch.FloatTensor` of shape `(B, N, patch_pixels)`): reconstructed patches of every token.
        mask (`torch.BoolTensor` of shape `(B, N)`): the hidden tokens (the targets).
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    contrastive_accuracy: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None


class MaskedSpectrogramModel(nn.Module):
    """An `AudioViTModel` encoder + a light transformer decoder that reconstructs hidden patches.

    Args:
        encoder (`AudioViTModel`): the scratch ViT to pretrain (`check_pretrainable`); saved alone afterwards.
        decoder_hidden_size (`int`, defaults to 128): the decoder's width.
        decoder_layers (`int`, defaults to 2): the decoder's transformer blocks.
        decoder_heads (`int`, defaults to 4): its attention heads (must divide `decoder_hidden_size`).
        contrastive_weight (`float`, defaults to 0.0): weight of the InfoNCE term (0: no contrastive head).
        normalize_targets (`bool`, defaults to `True`): reconstruct each patch normalised to zero mean and unit
            variance over its frames of audio (MAE's `norm_pix_loss`) instead of the spectrogram values.
    """

    def __init__(self, encoder: AudioViTModel, *, decoder_hidden_size: int = 128, decoder_layers: int = 2,
                 decoder_heads: int = 4, contrastive_weight: float = 0.0, normalize_targets: bool = True):
        super().__init__()
        config = encoder.config
        check_pretrainable(config)
        if contrastive_weight < 0:
            raise ValueError(f"contrastive_weight={contrastive_weight} must be >= 0")
        self.encoder = encoder
        self.config = config
        self.contrastive_weight = contrastive_weight
        self.normalize_targets = normalize_targets
        scale_f, scale_t = stem_scale(config)
        self.patch_pixels = config.patch_size[0] * scale_f * config.patch_size[1] * scale_t
        # The decoder's blocks are the encoder's block at the decoder's width (a config used for nothing else).
        self.decoder_config = AudioViTConfig(hidden_size=decoder_hidden_size, num_hidden_layers=decoder_layers,
                                             num_attention_heads=decoder_heads, layer_norm_eps=config.layer_norm_eps,
                                             hidden_act=config.hidden_act)
        positions = config.num_prefix_tokens + config.patch_grid[0] * config.patch_grid[1]
        self.decoder_embed = nn.Linear(config.hidden_size, decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
        self.decoder_position_embeddings = nn.Parameter(torch.zeros(1, positions, decoder_hidden_size))
        self.decoder_layers = nn.ModuleList(AudioViTBlock(self.decoder_config) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(decoder_hidden_size, eps=config.layer_norm_eps)
        self.reconstruction_head = nn.Linear(decoder_hidden_size, self.patch_pixels)
        self.contrastive_head = nn.Linear(decoder_hidden_size, self.patch_pixels) if contrastive_weight > 0 else None
        self._init_decoder()

    def _init_decoder(self) -> None:
        std = self.config.initializer_range
        for module in [self.decoder_embed, self.decoder_layers, self.decoder_norm, self.reconstruction_head,
                       self.contrastive_head]:
            if module is not None:
                module.apply(self.encoder._init_weights)  # the encoder's init: truncated normal, unit norms
        nn.init.trunc_normal_(self.mask_token, std=std)
        nn.init.trunc_normal_(self.decoder_position_embeddings, std=std)

    def no_weight_decay(self) -> set[str]:
        """The encoder's (positions, CLS token) and the decoder's positions and mask token (timm's convention)."""
        return ({f"encoder.{name}" for name in self.encoder.no_weight_decay()}
                | {"mask_token", "decoder_position_embeddings"})

    def forward(self, input_values: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor | None = None):
        r"""
        input_values (`torch.FloatTensor` of shape `(batch, num_mel_bins, frames)`): normalised log-mel spectrograms.
        mask (`torch.BoolTensor` of shape `(batch, tokens)`): the tokens to hide (`masking.sample_token_mask`).
        attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*): 1 for real frames, 0 for padding.
        """
        config = self.config
        spectrogram = as_spectrogram_batch(input_values, config.num_mel_bins).to(self.mask_token.dtype)
        batch, frames = spectrogram.shape[0], spectrogram.shape[-1]
        grid = token_grid(config, frames)
        valid = token_validity(config, attention_mask, grid, batch, spectrogram.device)  # (B, N)
        mask = mask.to(device=spectrogram.device, dtype=torch.bool)
        if mask.shape != valid.shape:
            raise ValueError(f"mask has shape {tuple(mask.shape)}; the {frames}-frame input has {tuple(valid.shape)} "
                             f"tokens (a {grid[0]} x {grid[1]} grid)")
        if bool((mask & ~valid).any()):
            raise ValueError("mask hides a padding-only token: only tokens that see audio can be reconstructed")

        tokens, prefix_tokens = self._embed(spectrogram, mask, grid)  # (B, N, D), (1, prefix, D)
        # Token order: visible first, then hidden, then padding-only, each in place order.
        order = torch.argsort(torch.where(mask, 1, torch.where(valid, 0, 2)).to(torch.int8), dim=1, stable=True)
        visible_counts = (valid & ~mask).sum(dim=1)  # (B,)
        encoded = self._encode(tokens, prefix_tokens, order, visible_counts)
        predictions, contrastive = self._decode(encoded, order, visible_counts, valid, mask, grid)

        targets, target_weights = self._targets(spectrogram, attention_mask, grid)  # (B, N, P) x 2
        reconstruction = self._reconstruction_loss(predictions, targets, target_weights, mask)
        output = MaskedSpectrogramOutput(loss=reconstruction, reconstruction_loss=reconstruction,
                                         logits=predictions, mask=mask)
        if contrastive is not None:
            loss, accuracy = self._contrastive_loss(contrastive, targets, order, visible_counts, mask)
            output.loss = reconstruction + self.contrastive_weight * loss
            output.contrastive_loss, output.contrastive_accuracy = loss, accuracy
        return output

    def _embed(self, spectrogram: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int]):
        """Patch tokens with positions `(B, N, D)` (hidden ones computed from zeros) and the prefix tokens."""
        embeddings = self.encoder.embeddings
        patch_embeddings = embeddings.patch_embeddings
        if patch_embeddings.stem is not None:
            stem_map = conv_stem_output_size(self.config.num_mel_bins, spectrogram.shape[-1],
                                             len(self.config.stem_channels))
            visible = (~mask).to(spectrogram.dtype).reshape(-1, 1, *grid)
            visible_map = _upsample(visible, tuple(self.config.patch_size), stem_map, fill=1.0)
            spectrogram = sparse_conv_stem(patch_embeddings.stem, spectrogram, visible_map, self.config)
        patches = patch_embeddings.projection(spectrogram).flatten(2).transpose(1, 2)  # (B, N, D)
        prefix = embeddings.num_prefix_tokens
        patches = patches + resize_pos_embed(embeddings.position_embeddings[:, prefix:], embeddings.grid, grid)
        prefix_tokens = (embeddings.cls_token if prefix == 1
                         else torch.cat([embeddings.cls_token, embeddings.dist_token], dim=1))
        return patches, prefix_tokens + embeddings.position_embeddings[:, :prefix]

    def _encode(self, tokens: torch.Tensor, prefix_tokens: torch.Tensor, order: torch.Tensor,
                visible_counts: torch.Tensor) -> torch.Tensor:
        """The encoder over the prefix and the visible tokens only: `(B, prefix + K, D)`, K the most visible tokens
        of a clip in the batch (a clip with fewer has its extra slots ignored as attention keys)."""
        batch = tokens.shape[0]
        kept = int(visible_counts.max())
        index = order[:, :kept]
        tokens = tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[-1]))  # (B, K, D)
        tokens = torch.cat([prefix_tokens.expand(batch, -1, -1), tokens], dim=1)
        tokens = self.encoder.embeddings.dropout(tokens)
        prefix = prefix_tokens.shape[1]
        keys = torch.arange(prefix + kept, device=tokens.device)[None, :] < (prefix + visible_counts[:, None])
        for layer in self.encoder.layers:
            tokens = layer(tokens, keys[:, None, None, :])
        return self.encoder.layernorm(tokens)

    def _decode(self, encoded: torch.Tensor, order: torch.Tensor, visible_counts: torch.Tensor, valid: torch.Tensor,
                mask: torch.Tensor, grid: tuple[int, int]):
        """Reconstructed patches `(B, N, P)` and the contrastive head's vectors (or None) at every position."""
        prefix = self.config.num_prefix_tokens
        batch, tokens = valid.shape
        encoded = self.decoder_embed(encoded)  # (B, prefix + K, Dd)
        kept = encoded.shape[1] - prefix
        width = encoded.shape[-1]
        # Put the encoded tokens back in place; every position not visible gets the mask token.
        placed = encoded.new_zeros(batch, tokens, width).scatter(
            1, order[:, :kept, None].expand(-1, -1, width), encoded[:, prefix:])
        visible = (valid & ~mask)[..., None]
        sequence = torch.where(visible, placed, self.mask_token.to(placed.dtype).expand(batch, tokens, -1))
        positions = self.decoder_position_embeddings
        sequence = sequence + resize_pos_embed(positions[:, prefix:], tuple(self.config.patch_grid), grid)
        sequence = torch.cat([encoded[:, :prefix] + positions[:, :prefix], sequence], dim=1)
        keys = torch.cat([valid.new_ones(batch, prefix), valid], dim=1)[:, None, None, :]  # padding ignored
        for layer in self.decoder_layers:
            sequence = layer(sequence, keys)
        sequence = self.decoder_norm(sequence)[:, prefix:]  # (B, N, Dd)
        contrastive = self.contrastive_head(sequence) if self.contrastive_head is not None else None
        return self.reconstruction_head(sequence), contrastive

    def _targets(self, spectrogram: torch.Tensor, attention_mask: torch.Tensor | None, grid: tuple[int, int]):
        """The input patch of every token `(B, N, P)` (normalised per patch over its audio frames when
        `normalize_targets`) and 1 where a pixel holds audio, 0 on padding."""
        patches = patchify(spectrogram[:, 0].float(), self.config, grid)
        frames = (attention_mask if attention_mask is not None
                  else torch.ones(spectrogram.shape[0], spectrogram.shape[-1], device=spectrogram.device))
        weights = patchify(frames[:, None, :].float(), self.config, grid)  # (B, N, P): 1 on audio
        if self.normalize_targets:
            count = weights.sum(dim=-1, keepdim=True).clamp_min(1.0)
            mean = (patches * weights).sum(dim=-1, keepdim=True) / count
            var = ((patches - mean).square() * weights).sum(dim=-1, keepdim=True) / count
            patches = (patches - mean) * torch.rsqrt(var + 1e-6)
        return patches * weights, weights

    @staticmethod
    def _reconstruction_loss(predictions, targets, weights, mask) -> torch.Tensor:
        """Mean over hidden patches of each patch's mean squared error over its audio pixels."""
        errors = ((predictions.float() - targets).square() * weights).sum(dim=-1) / weights.sum(dim=-1).clamp_min(1.0)
        hidden = mask.float()
        return (errors * hidden).sum() / hidden.sum().clamp_min(1.0)

    @staticmethod
    def _contrastive_loss(vectors, targets, order, visible_counts, mask):
        """InfoNCE (SSAST): each hidden patch's vector scored against every hidden patch of its clip, the right one
        to win; returns (loss, accuracy) averaged over hidden patches."""
        batch, tokens = mask.shape
        counts = mask.sum(dim=1)  # (B,)
        most = max(1, int(counts.max()))
        # in `order` the hidden tokens follow the visible ones
        slots = torch.arange(most, device=mask.device)[None, :]
        present = slots < counts[:, None]  # (B, M)
        index = order.gather(1, (visible_counts[:, None] + slots).clamp_max(tokens - 1))  # (B, M)
        chosen = vectors.float().gather(1, index[..., None].expand(-1, -1, vectors.shape[-1]))
        truth = targets.gather(1, index[..., None].expand(-1, -1, targets.shape[-1]))
        scores = chosen @ truth.transpose(1, 2)  # (B, M, M)
        scores = scores.masked_fill(~present[:, None, :], float("-inf"))
        labels = slots.expand(batch, -1)
        rows = present.reshape(-1)
        flat_scores = scores.reshape(batch * most, most)[rows]
        loss = F.cross_entropy(flat_scores, labels.reshape(-1)[rows]) if rows.any() else scores.new_zeros(())
        accuracy = ((flat_scores.argmax(dim=1) == labels.reshape(-1)[rows]).float().mean() if rows.any()
                    else scores.new_zeros(()))
        return loss, accuracy


__all__ = ["MaskedSpectrogramModel", "MaskedSpectrogramOutput", "check_pretrainable", "masked_batch_norm",
           "patchify", "sparse_conv_stem", "token_grid", "token_validity"]
