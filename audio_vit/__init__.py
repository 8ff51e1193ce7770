"""audio_vit: Vision Transformer audio classifiers on log-mel spectrograms, the Hugging Face way.

Importing the package registers the classes with the transformers Auto classes and makes
`pipeline("audio-classification")` read files and resample without FFmpeg or torchaudio.
"""
from .configuration_audio_vit import AudioViTConfig
from .feature_extraction_audio_vit import AudioViTFeatureExtractor
from .modeling_audio_vit import AudioViTForAudioClassification, AudioViTModel, AudioViTPreTrainedModel
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "AudioViTConfig",
    "AudioViTFeatureExtractor",
    "AudioViTModel",
    "AudioViTForAudioClassification",
    "AudioViTPreTrainedModel",
    "__version__",
]
