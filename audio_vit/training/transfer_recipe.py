"""Fine-tuning settings for a pretrained start: the transfer part of `--recipe auto`.

A start is pretrained when `--pretrained-backbone` loads (e.g. ImageNet) weights into a fresh timm backbone, or
when `--model-name-or-path` fine-tunes a trained or AST-converted model folder. `transfer_defaults` then derives,
from the kind of start (`IMAGENET_START`, `AUDIO_START`) and the scratch recipe's values:

| option | pretrained start |
| --- | --- |
| `learning_rate` | the start's `learning_rate` (the head's) |
| `layer_decay` | with a `stem_lr_fraction`: each layer below the head gets less, down to that share of the head's LR at the stem (the decay per layer follows from the network's depth, `layer_decay_for`); without: one LR |
| `head_only_epochs` | epochs of training a new head alone first |
| `num_train_epochs` | `epoch_share` of the scratch recipe's epochs, within the start's bounds |
| `lr_scheduler`, `warmup_epochs` | the start's |
| augmentation | the scratch recipe's SpecAugment mask counts and mixup probability, scaled |
| `num_mel_bins` | `PRETRAINED_MEL_BINS` for an ImageNet start; a model folder brings its own input |

Normalisation stays the training split's mean/std: zero mean and unit variance, as ImageNet-normalised RGB (and
the summed 1-channel stem keeps the response to a grey image, see `audio_vit.pretrained.weights`); BatchNorm
statistics then adapt during training. A new head on pretrained weights starts at zero (`load_pretrained_backbone`).
`resolve_recipe` applies these values like every derived option (an option the user set wins) and records them,
with the reason, under `transfer` in `recipe.json` and the config's `training_recipe`.

ImageNet weights get one LR of 3e-3 for the whole network (no layer-wise decay), one head-only epoch, the scratch
recipe's epochs (20-80), a cosine schedule after one warmup epoch and the scratch augmentation. Why, from validation
folds only (BENCHMARKS.md, "Transfer recipe: how it was chosen": EfficientNet-Lite0, 18 training clips per class,
the validation folds of test folds 1 / 3 / 5): on the `small` variant that recipe over half the epochs (40) scored
83.3 / 91.7 / 85.0% (mean 86.7%) against 85.0 / 90.0 / 86.7% (87.2%) for the scratch optimisation (1e-3, plateau, 80
epochs) with the code of the time; with the code since issue 19 it scored 77.2% there, its best epoch the last on
every fold (rerun with the current code: 82.8%, within the 11.7-point swing that floating-point order alone gives
one fold; BENCHMARKS.md, "The ImageNet start's drop on `small`"), and on `noisy5s-small` the same recipe over 80
epochs scored 86.7 / 83.3 / 95.0% (88.3%) against 78.3 / 75.0 / 88.3% (80.6%) over 40: a few clips a class give few
optimizer steps an epoch, so the full epoch budget. Keeping ImageNet's features more (1e-3 over 40 epochs: 68.9%;
3e-4 decayed layer-wise to a tenth at the stem over 30 epochs: 27.8%) fitted far worse: log-mel spectrograms are far
from photographs, and the whole network has to move. The head-only epoch, the warmup and the augmentation were not
varied on their own. The audio-start values were not measured (no audio-pretrained checkpoint is available offline)
and say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TransferSettings:
    """The fine-tuning values of one kind of pretrained start (see `transfer_defaults`)."""

    learning_rate: float
    stem_lr_fraction: float | None  # the stem's share of the head's LR (layer-wise decay); None: one LR for all
    head_only_epochs: int  # when the head is new
    epoch_share: float  # of the scratch recipe's epochs
    min_epochs: int
    max_epochs: int
    lr_scheduler: str
    warmup_epochs: float
    mask_scale: float  # multiplies the scratch recipe's SpecAugment mask counts
    mixup_scale: float  # multiplies its mixup probability
    why: str


# ImageNet weights (`--pretrained-backbone`): chosen on validation folds (the module docstring, BENCHMARKS.md).
IMAGENET_START = TransferSettings(
    learning_rate=3e-3, stem_lr_fraction=None, head_only_epochs=1, epoch_share=1.0, min_epochs=20, max_epochs=80,
    lr_scheduler="cosine", warmup_epochs=1.0, mask_scale=1.0, mixup_scale=1.0,
    why="chosen on validation folds: spectrograms are far from photographs, so the whole network moves at one high LR "
        "(3e-3, cosine; a lower or layer-wise decayed LR 28-69%) over the scratch recipe's epochs (80 vs 40 epochs on "
        "18 clips a class: 88.3% vs 80.6%; BENCHMARKS.md)",
)
# A model trained on audio (`--model-name-or-path`: a trained folder, a converted AST): not measured here (no
# audio-pretrained checkpoint is available offline); the usual fine-tuning practice (AST, BEiT): a tenth of the
# scratch LR, the lower layers less, half the epochs.
AUDIO_START = TransferSettings(
    learning_rate=1e-4, stem_lr_fraction=0.1, head_only_epochs=1, epoch_share=0.5, min_epochs=10, max_epochs=40,
    lr_scheduler="cosine", warmup_epochs=1.0, mask_scale=1.0, mixup_scale=1.0,
    why="not measured here: AST / BEiT fine-tuning practice for a model already trained on audio",
)
# Mel bins of an ImageNet start's input (a model folder brings its own): not measured above 64, which keeps the
# input, and a distilled ViT's cost, those of the scratch models.
PRETRAINED_MEL_BINS = 64


def pretrained_start(model_args) -> dict[str, Any] | None:
    """What a run starts from when it is pretrained: `{"kind", "source", "new_head"}`, or None (from scratch)."""
    if getattr(model_args, "pretrained_backbone", None):
        return {"kind": "pretrained_backbone", "source": str(model_args.pretrained_backbone), "new_head": True}
    if getattr(model_args, "model_name_or_path", None):
        from ..model_folder import is_encoder_folder

        return {"kind": "model_folder", "source": str(model_args.model_name_or_path),
                "new_head": bool(model_args.ignore_mismatched_labels) or is_encoder_folder(model_args.model_name_or_path)}
    return None


def layer_decay_for(num_layer_ids: int, stem_fraction: float) -> float:
    """The layer-wise LR decay that gives the stem (layer id 0) `stem_fraction` of the head's (top id) LR."""
    if num_layer_ids < 2:
        return 1.0
    return round(stem_fraction ** (1.0 / (num_layer_ids - 1)), 4)


def count_layer_ids(model_args) -> int:
    """Depth ids (stem 0 ... head) the model of `model_args` will have for layer-wise decay, from a model built on
    the meta device (nothing allocated, nothing loaded): a model folder's config, or the fresh timm backbone's."""
    import torch

    from ..models.audio_vit.configuration_audio_vit import AudioViTConfig
    from ..models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification
    from .param_groups import layer_ids

    if model_args.model_name_or_path:
        config = AudioViTConfig.from_pretrained(model_args.model_name_or_path)
    else:
        config = AudioViTConfig(**model_args.config_kwargs(), num_labels=2)
    with torch.device("meta"):
        model = AudioViTForAudioClassification(config)
    return layer_ids(model)[1]


def settings_for(start: dict[str, Any]) -> TransferSettings:
    return IMAGENET_START if start["kind"] == "pretrained_backbone" else AUDIO_START


def transfer_defaults(start: dict[str, Any], scratch: dict[str, Any], num_layer_ids: int,
                      parts: tuple[str, ...]) -> dict[str, Any]:
    """The options that replace the scratch recipe's `scratch` values for the pretrained `start` (see module docstring).

    Args:
        start (`dict`): `pretrained_start(model_args)`.
        scratch (`dict`): the scratch recipe's derived options (`auto_recipe.derive_defaults`).
        num_layer_ids (`int`): depth ids of the model (`count_layer_ids`), for the layer-wise decay.
        parts (`tuple[str]`): the recipe parts being derived (a model folder brings its features: no mel bins here).
    """
    settings, options = settings_for(start), {}
    if "features" in parts and start["kind"] == "pretrained_backbone":
        options["num_mel_bins"] = PRETRAINED_MEL_BINS
    if "training" in parts:
        epochs = round(scratch["num_train_epochs"] * settings.epoch_share)
        options.update(
            learning_rate=settings.learning_rate,
            layer_decay=(layer_decay_for(num_layer_ids, settings.stem_lr_fraction)
                         if settings.stem_lr_fraction is not None else None),
            head_only_epochs=settings.head_only_epochs if start["new_head"] else 0,
            num_train_epochs=min(settings.max_epochs, max(settings.min_epochs, epochs)),
            lr_scheduler=settings.lr_scheduler,
            warmup_epochs=settings.warmup_epochs,
        )
    if "augmentation" in parts:
        for name in ("num_freq_masks", "num_time_masks"):
            if name in scratch:
                options[name] = int(math.floor(scratch[name] * settings.mask_scale + 0.5))
        if "mixup_prob" in scratch:
            options["mixup_prob"] = round(scratch["mixup_prob"] * settings.mixup_scale, 3)
    return options


def add_transfer_defaults(model_args, derived: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any] | None:
    """`resolve_recipe`'s hook: for a pretrained start, replace the scratch values in `derived` (in place) by
    `transfer_defaults` and return what to record (`{"start", "options"}`); None for a start from scratch."""
    start = pretrained_start(model_args)
    if start is None:
        return None
    layer_wise = settings_for(start).stem_lr_fraction is not None and "training" in parts
    options = transfer_defaults(start, derived, count_layer_ids(model_args) if layer_wise else 0, parts)
    derived.update(options)
    return {"start": describe_start(start), "options": sorted(options), "why": settings_for(start).why}


def describe_start(start: dict[str, Any]) -> str:
    if start["kind"] == "pretrained_backbone":
        return f"pretrained backbone {start['source']} (new head)"
    return f"model folder {start['source']}" + (" (new head)" if start["new_head"] else "")


__all__ = ["AUDIO_START", "IMAGENET_START", "TransferSettings", "add_transfer_defaults", "count_layer_ids",
           "describe_start", "layer_decay_for", "pretrained_start", "settings_for", "transfer_defaults"]
