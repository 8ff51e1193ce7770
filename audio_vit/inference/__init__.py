"""Using a trained model: long recordings in overlapping windows (`long_audio`), their features chunk by chunk
(`chunked_features`), the audio-classification pipeline that reads files without FFmpeg (`pipeline`), and the
choices of `predict` (`options`).

    from audio_vit.inference import classify_audio_file
    result = classify_audio_file(model, extractor, "recording.flac")  # windows + recording-level scores
"""
from .._imports import lazy_attributes

# Imported on first use, so `audio_vit.inference.options` loads without torch for the command line's `--help`.
_LAZY_ATTRIBUTES = dict.fromkeys(
    ["LongAudioPrediction", "WindowPrediction", "average_window_logits", "classify_audio_file", "classify_blocks",
     "classify_long_audio", "clip_windows", "iter_windows", "whole_clip_logits", "window_probabilities",
     "window_starts"], ".long_audio")

__all__ = sorted(_LAZY_ATTRIBUTES)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)
