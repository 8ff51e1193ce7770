"""Training of AudioViT classifiers with accelerate: arguments, the loop, checkpoints, metrics.

    from audio_vit.training import parse_training_args, train
    results = train(*parse_training_args(["--config", "audio_vit/recipes/fsdd.yaml"]))  # -> dict

`train(model_args, data_args, aug_config, training_args)` is the public entry point (commands and scripts
call it); `train_seeds` repeats it over `--seeds` and reports mean ± std; `evaluate_folder` scores a saved
model folder on a dataset split.
"""
from .arguments import (
    ModelArguments,
    TrainingArguments,
    explicit_option_names,
    parse_training_args,
    read_config_file,
    valid_option_names,
)
from .checkpointing import TrainerState, list_checkpoints, resolve_checkpoint, save_checkpoint
from .evaluation import ClassificationMetrics, evaluate_folder, evaluate_model
from .optimization import LRSchedule, ModelEMA, build_optimizer, parameter_groups
from .setup import build_model
from .multi_seed import format_summary, train_seeds
from .trainer import train

# The name of accelerate's examples; the same function as `train`.
training_function = train

__all__ = [
    "ClassificationMetrics",
    "LRSchedule",
    "ModelArguments",
    "ModelEMA",
    "TrainerState",
    "TrainingArguments",
    "build_model",
    "build_optimizer",
    "evaluate_folder",
    "evaluate_model",
    "explicit_option_names",
    "format_summary",
    "list_checkpoints",
    "parameter_groups",
    "parse_training_args",
    "read_config_file",
    "resolve_checkpoint",
    "save_checkpoint",
    "train",
    "train_seeds",
    "training_function",
    "valid_option_names",
]
