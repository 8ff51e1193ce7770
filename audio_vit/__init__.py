"""audio_vit: Vision Transformer audio classifiers on log-mel spectrograms, the Hugging Face way.

Importing the package is cheap (no torch, transformers or datasets): the classes below are imported on
first use, and the transformers Auto classes learn `model_type="audio_vit"` as soon as transformers loads them,
before or after `import audio_vit` (see `audio_vit.registration`; nothing else in transformers is changed).
`audio_classification_pipeline(model)` is an audio-classification pipeline that reads files and resamples
without FFmpeg or torchaudio.
"""
from __future__ import annotations

import importlib

from .registration import register_on_import

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "AudioViTConfig": ".configuration_audio_vit",
    "AudioViTFeatureExtractor": ".feature_extraction_audio_vit",
    "AudioViTModel": ".modeling_audio_vit",
    "AudioViTForAudioClassification": ".modeling_audio_vit",
    "AudioViTPreTrainedModel": ".modeling_audio_vit",
    "AudioViTAudioClassificationPipeline": ".pipeline_audio_vit",
    "audio_classification_pipeline": ".pipeline_audio_vit",
}

__all__ = [*_LAZY_ATTRIBUTES, "__version__"]


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'audio_vit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_ATTRIBUTES})


register_on_import()
