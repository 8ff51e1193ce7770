"""Fine-tuning settings for a pretrained start: the transfer part of `--recipe auto`.

A start is pretrained when `--pretrained-backbone` loads (e.g. ImageNet) weights into a fresh timm backbone, or
when `--model-name-or-path` fine-tunes a trained or AST-converted model folder. The scratch recipe is wrong for
it: a learning rate of 1e-3 for every layer and 20-80 epochs wash the pretrained features out before the new head
has learned to read them. `transfer_defaults` derives instead:

| option | pretrained start |
| --- | --- |
| `learning_rate` | `TRANSFER_LEARNING_RATE` for the head |
| `layer_decay` | each layer below the head gets less, down to `STEM_LR_FRACTION` of the head's LR at the stem (the decay per layer follows from the network's depth: `layer_decay_for`) |
| `head_only_epochs` | `HEAD_ONLY_EPOCHS` of training the new head alone first, when the head is new |
| `num_train_epochs` | `TRANSFER_EPOCH_SHARE` of the scratch recipe's, `MIN_TRANSFER_EPOCHS`-`MAX_TRANSFER_EPOCHS` |
| `lr_scheduler` | cosine decay after a short warmup (a fixed short run that ends on a low LR) |
| augmentation | the scratch recipe's SpecAugment and mixup scaled by `TRANSFER_AUGMENTATION` |
| `num_mel_bins` | `PRETRAINED_MEL_BINS` for an ImageNet start (`--pretrained-backbone`): the input height the network's 32x downsampling needs; a model folder brings its own |

Normalisation stays the training split's mean/std: zero mean and unit variance, as ImageNet-normalised RGB (and
the summed 1-channel stem keeps the response to a grey image, see `audio_vit.pretrained_weights`); BatchNorm
statistics then adapt during training. `resolve_recipe` applies these values like every derived option (an option
the user set wins) and records them under `transfer` in `recipe.json` and the config's `training_recipe`.

The values were chosen on validation folds only (BENCHMARKS.md, "Transfer recipe: how it was chosen").
"""
from __future__ import annotations

import math
from typing import Any

TRANSFER_LEARNING_RATE = 3e-4
STEM_LR_FRACTION = 0.1
HEAD_ONLY_EPOCHS = 1
TRANSFER_EPOCH_SHARE = 0.5
MIN_TRANSFER_EPOCHS, MAX_TRANSFER_EPOCHS = 10, 30
TRANSFER_WARMUP_EPOCHS = 1.0
PRETRAINED_MEL_BINS = 64
# Multipliers of the scratch recipe's augmentation (SpecAugment mask counts, mixup probability).
TRANSFER_AUGMENTATION = {"masks": 1.0, "mixup": 1.0}


def pretrained_start(model_args) -> dict[str, Any] | None:
    """What a run starts from when it is pretrained: `{"kind", "source", "new_head"}`, or None (from scratch)."""
    if getattr(model_args, "pretrained_backbone", None):
        return {"kind": "pretrained_backbone", "source": str(model_args.pretrained_backbone), "new_head": True}
    if getattr(model_args, "model_name_or_path", None):
        return {"kind": "model_folder", "source": str(model_args.model_name_or_path),
                "new_head": bool(model_args.ignore_mismatched_labels)}
    return None


def layer_decay_for(num_layer_ids: int, stem_fraction: float = STEM_LR_FRACTION) -> float:
    """The layer-wise LR decay that gives the stem (layer id 0) `stem_fraction` of the head's (top id) LR."""
    if num_layer_ids < 2:
        return 1.0
    return round(stem_fraction ** (1.0 / (num_layer_ids - 1)), 4)


def count_layer_ids(model_args) -> int:
    """Depth ids (stem 0 ... head) the model of `model_args` will have for layer-wise decay, from a model built on
    the meta device (nothing allocated, nothing loaded): a model folder's config, or the fresh timm backbone's."""
    import torch

    from ..configuration_audio_vit import AudioViTConfig
    from ..modeling_audio_vit import AudioViTForAudioClassification
    from .param_groups import layer_ids

    if model_args.model_name_or_path:
        config = AudioViTConfig.from_pretrained(model_args.model_name_or_path)
    else:
        config = AudioViTConfig(**model_args.config_kwargs(), num_labels=2)
    with torch.device("meta"):
        model = AudioViTForAudioClassification(config)
    return layer_ids(model)[1]


def transfer_defaults(start: dict[str, Any], scratch: dict[str, Any], num_layer_ids: int,
                      parts: tuple[str, ...]) -> dict[str, Any]:
    """The options that replace the scratch recipe's `scratch` values for the pretrained `start` (see module docstring).

    Args:
        start (`dict`): `pretrained_start(model_args)`.
        scratch (`dict`): the scratch recipe's derived options (`auto_recipe.derive_defaults`).
        num_layer_ids (`int`): depth ids of the model (`count_layer_ids`), for the layer-wise decay.
        parts (`tuple[str]`): the recipe parts being derived (a model folder brings its features: no mel bins here).
    """
    options: dict[str, Any] = {}
    if "features" in parts and start["kind"] == "pretrained_backbone":
        options["num_mel_bins"] = PRETRAINED_MEL_BINS
    if "training" in parts:
        epochs = round(scratch["num_train_epochs"] * TRANSFER_EPOCH_SHARE)
        options.update(
            learning_rate=TRANSFER_LEARNING_RATE,
            layer_decay=layer_decay_for(num_layer_ids),
            head_only_epochs=HEAD_ONLY_EPOCHS if start["new_head"] else 0,
            num_train_epochs=min(MAX_TRANSFER_EPOCHS, max(MIN_TRANSFER_EPOCHS, epochs)),
            lr_scheduler="cosine",
            warmup_epochs=TRANSFER_WARMUP_EPOCHS,
        )
    if "augmentation" in parts:
        for name in ("num_freq_masks", "num_time_masks"):
            if name in scratch:
                options[name] = int(math.floor(scratch[name] * TRANSFER_AUGMENTATION["masks"] + 0.5))
        if "mixup_prob" in scratch:
            options["mixup_prob"] = round(scratch["mixup_prob"] * TRANSFER_AUGMENTATION["mixup"], 3)
    return options


def add_transfer_defaults(model_args, derived: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any] | None:
    """`resolve_recipe`'s hook: for a pretrained start, replace the scratch values in `derived` (in place) by
    `transfer_defaults` and return what to record (`{"start", "options"}`); None for a start from scratch."""
    start = pretrained_start(model_args)
    if start is None:
        return None
    options = transfer_defaults(start, derived, count_layer_ids(model_args), parts)
    derived.update(options)
    return {"start": describe_start(start), "options": sorted(options)}


def describe_start(start: dict[str, Any]) -> str:
    if start["kind"] == "pretrained_backbone":
        return f"pretrained backbone {start['source']} (new head)"
    return f"model folder {start['source']}" + (" (new head)" if start["new_head"] else "")


__all__ = ["add_transfer_defaults", "count_layer_ids", "describe_start", "layer_decay_for", "pretrained_start", "transfer_defaults"]
