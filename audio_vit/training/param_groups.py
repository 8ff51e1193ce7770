"""Optimizer parameter groups and freezing, from what the model declares (timm's convention):

* `model.no_weight_decay()`: names of the non-1-D parameters that get no weight decay (positions, CLS and
  distillation tokens); 1-D parameters (biases, norms) never get it. One rule for the plain groups and the
  layer-wise ones, so `--layer-decay` cannot change which parameters decay.
* `model.group_matcher()`: which depth (stem 0 ... head) each parameter sits at, for layer-wise LR decay
  (timm's `group_parameters`).
* `model.get_classifier()`: the classification head, the part that stays trainable when the rest is frozen.
"""
from __future__ import annotations

from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / accelerate wrapper."""
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return model


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters without weight decay: every 1-D parameter and those `model.no_weight_decay()` names."""
    model = unwrap(model)
    declared = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    return {name for name, param in model.named_parameters() if param.ndim <= 1 or name in declared}


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weights, and the `no_decay_parameter_names` without decay.

    Frozen parameters are included so that unfreezing later needs no new optimizer (AdamW skips parameters
    whose `.grad` is None).
    """
    model = unwrap(model)
    no_decay = no_decay_parameter_names(model)
    named = list(model.named_parameters())
    return [
        {"params": [p for name, p in named if name not in no_decay], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name in no_decay], "weight_decay": 0.0},
    ]


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """Parameter name -> layer id (0 = embeddings/stem, top = final norm/head) from `model.group_matcher()`,
    and the number of ids."""
    from timm.models import group_parameters

    model = unwrap(model)
    if not hasattr(model, "group_matcher"):
        raise ValueError(f"layer-wise learning rates need a model with group_matcher(), got {type(model).__name__}")
    ids = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    return ids, max(ids.values()) + 1


def layerwise_lr_param_groups(
    model: nn.Module, base_lr: float, decay: float = 0.75, weight_decay: float = 0.05
) -> list[dict]:
    """AdamW parameter groups with layer-wise learning-rate decay (BEiT / MAE fine-tuning recipe).

    The head and final norm get `base_lr`, each block below `decay` times the one above, the patch
    embedding and tokens `base_lr * decay ** (num_blocks + 1)`. Weight decay follows `no_decay_parameter_names`.
    Works for the scratch ViT (`audio_vit.layers.N`) and for timm backbones (timm's `group_matcher`: ViT
    blocks, ResNet/EfficientNet stages). Frozen parameters are included so that unfreezing later needs no
    new optimizer.

    Returns a list of dicts with `params`, `lr`, `weight_decay` and `layer_id`, for `torch.optim.AdamW`.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay={decay} must be in (0, 1]")
    model = unwrap(model)
    ids, num_ids = layer_ids(model)
    no_decay = no_decay_parameter_names(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        layer_id, skip_decay = ids[name], name in no_decay
        group = groups.setdefault(
            (layer_id, skip_decay),
            {
                "params": [],
                "lr": base_lr * decay ** (num_ids - 1 - layer_id),
                "weight_decay": 0.0 if skip_decay else weight_decay,
                "layer_id": layer_id,
            },
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def classifier_parameter_names(model: nn.Module) -> list[str]:
    """Names (as in `model.named_parameters()`) of the classification head's parameters (`model.get_classifier()`)."""
    model = unwrap(model)
    if not hasattr(model, "get_classifier"):
        raise ValueError(f"{type(model).__name__} declares no classification head (get_classifier())")
    head_ids = {id(p) for head in model.get_classifier() for p in head.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in head_ids]


def freeze_backbone(model: nn.Module, freeze: bool = True) -> list[str]:
    """Set `requires_grad=not freeze` on every parameter but the classification head's; return the trainable names.

    Only gradients stop: BatchNorm running statistics still update in `model.train()` mode. Build the
    optimizer over all parameters; AdamW skips parameters whose `.grad` is None, so unfreezing later
    needs no new optimizer.
    """
    model = unwrap(model)
    head = set(classifier_parameter_names(model))
    for name, param in model.named_parameters():
        param.requires_grad_(True if name in head else not freeze)
    return [name for name, p in model.named_parameters() if p.requires_grad]


class HeadOnlyThenUnfreeze:
    """Train only the classification head for `head_only_epochs` epochs, then the whole model.

    Call `on_epoch_start(epoch)` (0-based) at the start of every epoch; it returns whether the backbone is
    frozen in that epoch. `head_only_epochs=0` never freezes. With several processes (DDP), parameters
    that get no gradient in the head-only epochs need `DistributedDataParallelKwargs(find_unused_parameters=True)`.
    """

    def __init__(self, model: nn.Module, head_only_epochs: int):
        if head_only_epochs < 0:
            raise ValueError(f"head_only_epochs={head_only_epochs} must be >= 0")
        self.model = model
        self.head_only_epochs = int(head_only_epochs)
        self.frozen: bool | None = None

    def on_epoch_start(self, epoch: int) -> bool:
        frozen = epoch < self.head_only_epochs
        if frozen != self.frozen:
            freeze_backbone(self.model, freeze=frozen)
            self.frozen = frozen
        return frozen


__all__ = [
    "HeadOnlyThenUnfreeze",
    "classifier_parameter_names",
    "freeze_backbone",
    "layer_ids",
    "layerwise_lr_param_groups",
    "no_decay_parameter_names",
    "parameter_groups",
]
