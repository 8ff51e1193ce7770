"""Waveform conversions, the one copy: integer PCM -> float32, channels -> mono, resampling (soxr, HQ).

Used by the feature extractor, the pipeline and `audio_vit.data.audio_decoding`. This file is copied next to saved checkpoints
with the feature extractor (`trust_remote_code`), so it imports only numpy (soxr when resampling).
"""
from __future__ import annotations

import numpy as np


def pcm_to_float32(array: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1] (int16 / 32768, uint8 (x - 128) / 128, ...); float input is only cast."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min == 0:  # unsigned PCM (8-bit WAV) is centred on the middle of its range
            return ((array.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)).astype(np.float32)
        return (array.astype(np.float64) / float(-info.min)).astype(np.float32)
    return array.astype(np.float32, copy=False)


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """(channels, num_samples) or (num_samples,) -> (num_samples,), averaging the channels."""
    if waveform.ndim == 1:
        return waveform
    if waveform.shape[0] == 1:
        return waveform[0]
    return waveform.mean(axis=0, dtype=np.float32)


def resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample a (num_samples,) or (channels, num_samples) waveform with soxr (HQ)."""
    if orig_sampling_rate == target_sampling_rate or waveform.shape[-1] == 0:
        return waveform
    if orig_sampling_rate <= 0 or target_sampling_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_sampling_rate} -> {target_sampling_rate}")
    import soxr

    if waveform.ndim == 1:
        return soxr.resample(waveform, orig_sampling_rate, target_sampling_rate, quality="HQ").astype(np.float32, copy=False)
    resampled = soxr.resample(waveform.T, orig_sampling_rate, target_sampling_rate, quality="HQ")  # soxr wants (T, C)
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


__all__ = ["pcm_to_float32", "resample", "to_mono"]
