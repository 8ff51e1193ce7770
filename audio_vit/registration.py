"""Hooks audio_vit into transformers: Auto classes and `trust_remote_code` checkpoints.

The audio pipeline is not patched process-wide: `audio_vit.audio_classification_pipeline` (or
`pipeline_class=AudioViTAudioClassificationPipeline`) asks for ours per pipeline.
"""
from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
)

from .configuration_audio_vit import AudioViTConfig
from .feature_extraction_audio_vit import AudioViTFeatureExtractor
from .modeling_audio_vit import AudioViTForAudioClassification, AudioViTModel


def register_auto_classes() -> None:
    """Register the AudioViT classes with the Auto classes (idempotent)."""
    AutoConfig.register(AudioViTConfig.model_type, AudioViTConfig, exist_ok=True)
    AutoFeatureExtractor.register(AudioViTConfig, AudioViTFeatureExtractor, exist_ok=True)
    AutoModel.register(AudioViTConfig, AudioViTModel, exist_ok=True)
    AutoModelForAudioClassification.register(AudioViTConfig, AudioViTForAudioClassification, exist_ok=True)

    # save_pretrained then copies our module files next to the weights and writes `auto_map`, so
    # `from_pretrained(dir, trust_remote_code=True)` works where audio_vit is not installed.
    AudioViTConfig.register_for_auto_class()
    AudioViTFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    AudioViTModel.register_for_auto_class("AutoModel")
    AudioViTForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

