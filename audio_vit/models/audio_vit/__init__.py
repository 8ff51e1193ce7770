"""AudioViT, the shipped layer: config, feature extractor (+ raw-audio checks, log-mel front ends, waveform
helpers) and the models (+ spectrogram embeddings, timm encoders, shared layers). Every module here is copied into
a saved model folder, so each imports only third-party packages and, with a single dot, the others of this folder.
The public classes are importable from `audio_vit` itself (`from audio_vit import AudioViTForAudioClassification`)."""
