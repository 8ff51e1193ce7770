"""`pipeline("audio-classification")` that works on a pip-only machine (no FFmpeg binary, no torchaudio)."""
from __future__ import annotations

import io

import numpy as np
from transformers.pipelines.audio_classification import AudioClassificationPipeline

from .audio_io import load_audio


class AudioViTAudioClassificationPipeline(AudioClassificationPipeline):
    """Drop-in `AudioClassificationPipeline`: local files and bytes are decoded with soundfile (fallbacks in
    `audio_vit.audio_io`), multichannel audio is downmixed and other sampling rates are resampled with soxr,
    then everything else is left to transformers' implementation."""

    def preprocess(self, inputs):
        target_rate = self.feature_extractor.sampling_rate
        if isinstance(inputs, str) and not inputs.startswith(("http://", "https://")):
            waveform, rate = load_audio(inputs)
            inputs = {"raw": waveform, "sampling_rate": rate}
        elif isinstance(inputs, (bytes, bytearray)):
            waveform, rate = load_audio(io.BytesIO(inputs))
            inputs = {"raw": waveform, "sampling_rate": rate}
        if isinstance(inputs, dict) and "sampling_rate" in inputs:
            inputs = dict(inputs)
            waveform = inputs.pop("raw", None)
            if waveform is None:
                inputs.pop("path", None)
                waveform = inputs.pop("array", None)
            if waveform is None:
                raise ValueError('a dict input needs a "raw" or "array" waveform and a "sampling_rate"')
            waveform = np.asarray(getattr(waveform, "numpy", lambda: waveform)(), dtype=np.float32)
            if waveform.ndim == 2:  # (channels, samples) -> mono
                waveform = waveform.mean(axis=0)
            rate = int(inputs.pop("sampling_rate"))
            if rate != target_rate:
                import soxr

                waveform = soxr.resample(waveform, rate, target_rate, quality="HQ").astype(np.float32)
            inputs = waveform
        return super().preprocess(inputs)
