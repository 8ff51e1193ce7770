"""Model families. Each folder holds exactly the files a checkpoint of that family carries beside its weights
(transformers copies a modeling file and its single-dot imports into the folder, for `trust_remote_code`): they
import only third-party packages and each other, never the rest of audio_vit."""
