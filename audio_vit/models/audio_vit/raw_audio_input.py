"""The raw audio the feature extractor accepts, checked: one clip or a list of clips -> mono float32 clips.

A clip is a 1-D `(samples,)` or 2-D `(channels, samples)` numpy array or torch tensor, or a list of floats;
float samples are used as they are, integer PCM is scaled to [-1, 1]. Every error names the item of the batch
that is wrong and what would be accepted. Copied next to saved checkpoints with the feature extractor
(`trust_remote_code`), so it imports only third-party packages and `audio_utils.py` beside it.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch
from transformers.utils import logging

from .audio_utils import pcm_to_float32, to_mono

logger = logging.get_logger(__name__)


def mono_float32_clips(raw_speech) -> list[np.ndarray]:
    """`raw_speech` (one clip or a list of clips) -> a list of finite 1-D float32 numpy clips."""
    clips = [_to_mono_float32(clip, i) for i, clip in enumerate(_split_clips(raw_speech))]
    for i, clip in enumerate(clips):  # the whole clip, also what truncation drops (numpy: no thread hand-offs)
        if not np.isfinite(clip).all():
            raise _non_finite_error(clip, i)
    return clips


def _split_clips(raw_speech) -> list[np.ndarray | torch.Tensor]:
    """Split the input into a list of per-clip arrays/tensors (not yet converted)."""
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        return [raw_speech]  # 1-D clip or 2-D (channels, samples) clip
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("raw_speech is an empty list; expected at least one clip")
        if all(isinstance(v, numbers.Number) for v in raw_speech):
            return [np.asarray(raw_speech, dtype=np.float32)]  # a single clip given as a list of floats
        return list(raw_speech)
    raise TypeError(
        f"raw_speech of type {type(raw_speech).__name__} is not supported; expected a 1-D or 2-D "
        "(channels, samples) numpy array / torch tensor, or a list of them"
    )


def _to_mono_float32(clip, index: int) -> np.ndarray:
    """One clip -> 1-D float32 numpy array (integer PCM scaled to [-1, 1], channels averaged)."""
    if isinstance(clip, torch.Tensor):
        clip = clip.detach()
        if clip.dtype == torch.bfloat16:
            clip = clip.float()
        clip = clip.cpu().numpy()
    elif isinstance(clip, (list, tuple)):
        clip = np.asarray(clip)
    if not isinstance(clip, np.ndarray):
        raise TypeError(
            f"item {index} of the batch has type {type(clip).__name__}; expected a numpy array or torch tensor"
        )
    if clip.ndim == 0 or clip.ndim > 2:
        raise ValueError(
            f"item {index} of the batch has {clip.ndim} dimensions (shape {tuple(clip.shape)}); expected "
            "1-D (samples,) or 2-D (channels, samples)"
        )
    if clip.size == 0:
        raise ValueError(f"item {index} of the batch is empty (shape {tuple(clip.shape)}, 0 samples)")
    if clip.ndim == 2 and clip.shape[0] > clip.shape[1]:
        raise ValueError(
            f"item {index} of the batch has shape {tuple(clip.shape)}, more channels than samples; expected "
            "(channels, samples) -- soundfile returns (samples, channels), pass `array.T`"
        )
    if not (np.issubdtype(clip.dtype, np.integer) or np.issubdtype(clip.dtype, np.floating)):
        raise ValueError(
            f"item {index} of the batch has dtype {clip.dtype}; expected floating point or integer PCM samples"
        )
    if clip.ndim == 2 and clip.shape[0] > 8:
        logger.warning_once(
            f"A 2-D input of shape {tuple(clip.shape)} is read as ONE clip of {clip.shape[0]} channels and "
            "averaged; pass a list of 1-D clips for a batch."
        )
    return to_mono(pcm_to_float32(clip))  # downmix (channels, samples) -> (samples,)


def _non_finite_error(clip: np.ndarray, index: int) -> ValueError:
    what = "NaN" if np.isnan(clip).any() else "Inf"
    count = int((~np.isfinite(clip)).sum())
    return ValueError(
        f"item {index} of the batch contains {what} ({count} non-finite samples); expected finite audio samples"
    )


__all__ = ["mono_float32_clips"]
