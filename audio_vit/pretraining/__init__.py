"""Pretraining the scratch ViT on unlabeled audio: `audio-vit pretrain` (masked spectrogram modeling).

    from audio_vit.pretraining import parse_pretraining_args, pretrain
    model_args, data_args, args, explicit = parse_pretraining_args(["--data-dir", "FOLDER", "--output-dir", "OUT"])
    results = pretrain(model_args, data_args, args, explicit)  # OUT: an encoder folder to fine-tune

Files: `arguments.py` (the options), `data.py` (the clips without labels, the data-derived features, encoder and
epochs, the windows of a step), `masking.py` (which tokens a step hides), `modeling_masked_spectrogram.py` (the
encoder + decoder that is trained; only the encoder is saved), `trainer.py` (the loop, checkpoints, time budget, the
encoder folder), `card.py` (its README.md).
"""
import importlib

# Imported on first use, so the options (`audio_vit.pretraining.arguments`) load without torch for `--help`.
_LAZY_ATTRIBUTES = {
    **dict.fromkeys(["PretrainingArguments", "parse_pretraining_args"], ".arguments"),
    "sample_token_mask": ".masking",
    **dict.fromkeys(["MaskedSpectrogramModel", "MaskedSpectrogramOutput"], ".modeling_masked_spectrogram"),
    **dict.fromkeys(["PretrainingState", "pretrain"], ".trainer"),
}

__all__ = sorted(_LAZY_ATTRIBUTES)


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_ATTRIBUTES})
