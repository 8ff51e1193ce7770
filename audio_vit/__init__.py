"""audio_vit: Vision Transformer audio classifiers on log-mel spectrograms, the Hugging Face way.

Importing the package is cheap (no torch, transformers or datasets): the classes below are imported on
first use, and the transformers Auto classes learn `model_type="audio_vit"` as soon as transformers loads them,
before or after `import audio_vit` (see `audio_vit.registration`; nothing else in transformers is changed).
`audio_classification_pipeline(model)` is an audio-classification pipeline that reads files and resamples
without FFmpeg or torchaudio.
"""
from __future__ import annotations

from ._imports import keep_moved_module_paths, lazy_attributes
from .registration import register_on_import

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "AudioViTConfig": ".models.audio_vit.configuration_audio_vit",
    "AudioViTFeatureExtractor": ".models.audio_vit.feature_extraction_audio_vit",
    "AudioViTModel": ".models.audio_vit.modeling_audio_vit",
    "AudioViTForAudioClassification": ".models.audio_vit.modeling_audio_vit",
    "AudioViTPreTrainedModel": ".models.audio_vit.modeling_audio_vit",
    "AudioViTAudioClassificationPipeline": ".inference.pipeline",
    "audio_classification_pipeline": ".inference.pipeline",
}

__all__ = [*_LAZY_ATTRIBUTES, "__version__"]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)

register_on_import()
keep_moved_module_paths()
