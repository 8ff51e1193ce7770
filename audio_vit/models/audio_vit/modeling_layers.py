"""Building blocks shared by the AudioViT networks: input check, position-embedding resize, padding masks, DropPath,
and the transformer blocks (attention, MLP, pre-norm block; small and separate, timm style).

This file is copied next to saved checkpoints for `trust_remote_code` loading (the modeling files import it),
so it imports only torch, transformers and the config beside it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from .configuration_audio_vit import AudioViTConfig

def as_spectrogram_batch(input_values: torch.Tensor, num_mel_bins: int) -> torch.Tensor:
    """Check and normalise the model input to `(batch, 1, num_mel_bins, frames)`."""
    if input_values.dim() == 3:
        input_values = input_values.unsqueeze(1)
    elif not (input_values.dim() == 4 and input_values.shape[1] == 1):
        raise ValueError(
            f"input_values must have shape (batch, num_mel_bins, frames) or (batch, 1, num_mel_bins, frames); "
            f"got {tuple(input_values.shape)}"
        )
    if input_values.shape[2] != num_mel_bins:
        raise ValueError(
            f"input_values has {input_values.shape[2]} mel bins but the model expects num_mel_bins={num_mel_bins}; "
            "use the feature extractor saved with this model"
        )
    return input_values


def resize_pos_embed(pos_embed: torch.Tensor, old_grid, new_grid, num_prefix_tokens: int = 0) -> torch.Tensor:
    """Bilinearly resize position embeddings `(1, prefix + Go_f*Go_t, D)` laid out on `old_grid` to `new_grid`
    (rows, cols), `align_corners=False`; the prefix tokens (CLS, distillation) are kept as they are.

    The scratch ViT's resize for every clip length, and the growing axes of AST's crop recipe when pretrained
    weights are adapted; the bicubic adaptation of pretrained weights is timm's `resample_abs_pos_embed`.
    """
    # While tracing with dynamic shapes (torch.export, ONNX) the grid is symbolic: comparing it with the
    # training grid would become a guard that fixes the time axis, so traced graphs always interpolate
    # (to the same size, interpolation with align_corners=False is the identity).
    symbolic = any(isinstance(size, torch.SymInt) for size in new_grid)
    if not symbolic and tuple(old_grid) == tuple(new_grid):
        return pos_embed
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = pos_embed.shape[-1]
    grid = patches.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)  # (1, D, Go_f, Go_t)
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode="bilinear", align_corners=False)
    grid = grid.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim)  # (1, Gn, D)
    return torch.cat([prefix, grid], dim=1) if num_prefix_tokens else grid


def patch_padding_mask(attention_mask: torch.Tensor, patch_width: int, time_stride: int, grid,
                       num_prefix_tokens: int = 1) -> torch.Tensor:
    """Frame-level mask `(B, frames)` -> token-level mask `(B, prefix + Gf*Gt)` (bool).

    A patch is valid if it sees any real frame; prefix tokens (CLS) are always valid. An example with no real frame
    at all (all padding) counts as all real: attention and pooling then see its (silent) patches, so the model's
    output stays finite and defined for any mask instead of pooling over nothing.
    """
    frames = attention_mask[:, None, None, :].to(torch.float32)  # (B, 1, 1, T)
    valid_time = F.max_pool2d(frames, kernel_size=(1, patch_width), stride=(1, time_stride))
    valid_time = valid_time[..., : grid[1]].reshape(attention_mask.shape[0], 1, grid[1]) > 0  # (B, 1, Gt)
    valid_time = valid_time | ~valid_time.any(dim=2, keepdim=True)  # all padding -> all valid
    valid = valid_time.expand(-1, grid[0], -1).reshape(attention_mask.shape[0], -1)  # (B, Gf*Gt)
    prefix_valid = valid.new_ones(attention_mask.shape[0], num_prefix_tokens)
    return torch.cat([prefix_valid, valid], dim=1)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per example during training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


# ----------------------------------------------------------------------------------------------
# Transformer blocks (small and separate, timm style)
# ----------------------------------------------------------------------------------------------


class AudioViTSelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and `F.scaled_dot_product_attention`."""

    def __init__(self, config: AudioViTConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.attn_dropout = config.attention_probs_dropout_prob
        self.proj_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # each (B, H, N, Dh)
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attn_mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, D)
        return self.proj_dropout(self.proj(out))


class AudioViTMLP(nn.Module):
    def __init__(self, config: AudioViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(x)))))


class AudioViTBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: AudioViTConfig, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AudioViTSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = AudioViTMLP(config)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attention(self.norm1(x), attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


__all__ = ["AudioViTBlock", "AudioViTMLP", "AudioViTSelfAttention", "DropPath", "as_spectrogram_batch",
           "patch_padding_mask", "resize_pos_embed"]
