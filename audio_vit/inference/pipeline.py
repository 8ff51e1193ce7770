"""An audio-classification pipeline that works on a pip-only machine (no FFmpeg binary, no torchaudio).

Nothing is patched process-wide: ask for it per pipeline,

    from audio_vit import audio_classification_pipeline
    classifier = audio_classification_pipeline("outputs/fsdd-demo")  # or:
    classifier = transformers.pipeline("audio-classification", model=..., pipeline_class=AudioViTAudioClassificationPipeline)
"""
from __future__ import annotations

import io

import numpy as np
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.pipelines.audio_classification import AudioClassificationPipeline

from ..data.audio_decoding import load_audio
from .long_audio import whole_clip_logits
from ..models.audio_vit.audio_utils import resample, to_mono


class AudioViTAudioClassificationPipeline(AudioClassificationPipeline):
    """Drop-in `AudioClassificationPipeline`: local files and bytes are decoded with soundfile (fallbacks in
    `audio_vit.data.audio_decoding`), datasets' decoded audio (torchcodec `AudioDecoder`) is read as it is, multichannel
    audio is downmixed and other sampling rates are resampled with soxr
    (`audio_vit.models.audio_vit.audio_utils`). A recording longer than the model's window is judged on all of it (the
    window logits are averaged, `audio_vit.inference.long_audio.whole_clip_logits`), and a shorter one is padded with
    masked silence; scoring (softmax, or sigmoid for multi-label models) is transformers' own."""

    def preprocess(self, inputs):
        target_rate = self.feature_extractor.sampling_rate
        if hasattr(inputs, "get_all_samples"):
            # A torchcodec AudioDecoder: what datasets 5 gives for an `Audio` column (and evaluate's evaluator passes
            # on). transformers' own pipeline turns it into a (channels, samples) tensor it then refuses.
            samples = inputs.get_all_samples()
            inputs = {"raw": samples.data, "sampling_rate": samples.sample_rate}
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
            inputs = resample(to_mono(waveform), int(inputs.pop("sampling_rate")), target_rate)  # (channels, samples) -> mono
        if isinstance(inputs, np.ndarray) and inputs.ndim == 1:
            # The whole recording (never truncated); `_forward` cuts it into model windows.
            features = self.feature_extractor(inputs, sampling_rate=target_rate, padding="max_length", truncation=False,
                                              return_attention_mask=True, return_tensors="pt")
            return {"input_values": features["input_values"], "num_frames": features["attention_mask"].sum(-1)}
        return super().preprocess(inputs)

    def _forward(self, model_inputs):
        if "num_frames" not in model_inputs:
            return super()._forward(model_inputs)
        logits = whole_clip_logits(self.model, model_inputs["input_values"], model_inputs["num_frames"],
                                   self.feature_extractor.max_length)
        return SequenceClassifierOutput(logits=logits)


def audio_classification_pipeline(model, **kwargs):
    """`transformers.pipeline("audio-classification", model=model, pipeline_class=AudioViTAudioClassificationPipeline,
    **kwargs)`: files, bytes and arrays at any sampling rate, without FFmpeg or torchaudio."""
    from transformers import pipeline

    return pipeline("audio-classification", model=model, pipeline_class=AudioViTAudioClassificationPipeline, **kwargs)


__all__ = ["AudioViTAudioClassificationPipeline", "audio_classification_pipeline"]
