"""How a spectrogram becomes AudioViT's input tokens: the optional convolutional stem, the patch projection,
and the prefix (CLS / distillation) tokens with learned positions.

A checkpoint ships this file beside `modeling_audio_vit.py` (transformers copies a model file's relative
imports), so like that file it imports only third-party packages and the other shipped files.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_audio_vit import CONV_STEM_TIME_STRIDED_LAYERS, AudioViTConfig
from .modeling_layers import as_spectrogram_batch, resize_pos_embed


class ConvStem(nn.Module):
    """Early convolutions (Xiao et al. 2021): 3x3 conv + batch norm + GELU layers before the patch projection.

    Each layer halves frequency; the first two also halve time, so a 64 x T spectrogram becomes a
    (64 / 2**L) x (T / 4) map of `stem_channels[-1]` features. The convolutions give the tokens the locality
    bias a CNN has, which a plain patch projection lacks on datasets of a few hundred clips.
    """

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        layers, in_channels = [], config.num_channels
        for index, out_channels in enumerate(config.stem_channels):
            stride = (2, 2) if index < CONV_STEM_TIME_STRIDED_LAYERS else (2, 1)
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.GELU(),
            ]
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.layers(spectrogram)  # (B, C, F / 2**L, T / 4)


class PatchEmbedding(nn.Module):
    """Cuts the spectrogram (or the conv stem's map) into (possibly overlapping) patches projected to `hidden_size`."""

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        self.stem = ConvStem(config) if config.stem == "conv" else None
        self.projection = nn.Conv2d(
            config.stem_channels[-1] if config.stem == "conv" else config.num_channels,
            config.hidden_size,
            kernel_size=tuple(config.patch_size),
            stride=(config.frequency_stride, config.time_stride),
        )

    def forward(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if self.stem is not None:
            spectrogram = self.stem(spectrogram)
        patches = self.projection(spectrogram)  # (B, D, Gf, Gt)
        grid = (patches.shape[2], patches.shape[3])
        return patches.flatten(2).transpose(1, 2), grid  # (B, Gf*Gt, D)


class AudioViTEmbeddings(nn.Module):
    """Patch embedding + CLS (and distillation) token + learned positions, resized along time for other clip lengths."""

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = PatchEmbedding(config)
        self.grid = tuple(config.patch_grid)
        self.num_prefix_tokens = config.num_prefix_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        if config.distillation_token:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        positions = self.num_prefix_tokens + self.grid[0] * self.grid[1]
        self.position_embeddings = nn.Parameter(torch.zeros(1, positions, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        spectrogram = as_spectrogram_batch(input_values, self.config.num_mel_bins)
        min_frames = self.config.patch_size[1] * self.config.stem_time_stride
        if spectrogram.shape[-1] < min_frames:
            raise ValueError(
                f"input has {spectrogram.shape[-1]} frames, fewer than the patch width {self.config.patch_size[1]}"
                + (f" x the conv stem's time stride {self.config.stem_time_stride}" if self.config.stem == "conv" else "")
            )
        patches, grid = self.patch_embeddings(spectrogram.to(self.cls_token.dtype))  # (B, N, D)
        # A clip longer or shorter than config.max_length gives another time grid: interpolate the
        # learned positions instead of failing with a shape error (the classic AST pain point).
        prefix = self.num_prefix_tokens
        patch_pos = resize_pos_embed(self.position_embeddings[:, prefix:], self.grid, grid)
        prefix_tokens = self.cls_token if prefix == 1 else torch.cat([self.cls_token, self.dist_token], dim=1)
        prefix_tokens = (prefix_tokens + self.position_embeddings[:, :prefix]).expand(patches.shape[0], -1, -1)
        tokens = torch.cat([prefix_tokens, patches + patch_pos], dim=1)  # (B, prefix + N, D)
        return self.dropout(tokens), grid


def stem_frame_mask(attention_mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Frame mask `(B, T)` -> mask of the stem's time steps `(B, ceil(T / stride))`: a step is real if any of its frames is."""
    if stride == 1:
        return attention_mask
    frames = attention_mask[:, None, :].to(torch.float32)  # (B, 1, T)
    return F.max_pool1d(frames, kernel_size=stride, stride=stride, ceil_mode=True)[:, 0]
