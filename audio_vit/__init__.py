"""audio_vit: Vision Transformer audio classifiers on log-mel spectrograms, the Hugging Face way.

Importing the package registers the classes with the transformers Auto classes (nothing else in transformers
is changed); `audio_classification_pipeline(model)` is an audio-classification pipeline that reads files and
resamples without FFmpeg or torchaudio.
"""
from .configuration_audio_vit import AudioViTConfig
from .feature_extraction_audio_vit import AudioViTFeatureExtractor
from .modeling_audio_vit import AudioViTForAudioClassification, AudioViTModel, AudioViTPreTrainedModel
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()



def __getattr__(name: str):
    # The pipeline (and the audio decoders it imports) load on first use, not with `import audio_vit`.
    if name in ("AudioViTAudioClassificationPipeline", "audio_classification_pipeline"):
        from . import pipeline_audio_vit

        return getattr(pipeline_audio_vit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AudioViTConfig",
    "AudioViTFeatureExtractor",
    "AudioViTModel",
    "AudioViTForAudioClassification",
    "AudioViTPreTrainedModel",
    "AudioViTAudioClassificationPipeline",
    "audio_classification_pipeline",
    "__version__",
]
