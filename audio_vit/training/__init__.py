"""Training of AudioViT classifiers with accelerate: arguments, the loop, checkpoints, metrics.

    from audio_vit.training import parse_training_args, train
    results = train(*parse_training_args(["--config", "audio_vit/recipes/fsdd.yaml"]))  # -> dict

`train(model_args, data_args, aug_config, training_args)` is the public entry point (commands and scripts
call it); `evaluate_folder` scores a saved model folder on a dataset split.
"""
from .arguments import ModelArguments, TrainingArguments, parse_training_args, read_config_file, valid_option_names
from .checkpointing import TrainerState, list_checkpoints, resolve_checkpoint, save_checkpoint
from .evaluation import ClassificationMetrics, evaluate_folder, evaluate_model
from .optimization import LRSchedule, ModelEMA, build_optimizer, parameter_groups
from .setup import build_model
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
    "list_checkpoints",
    "parameter_groups",
    "parse_training_args",
    "read_config_file",
    "resolve_checkpoint",
    "save_checkpoint",
    "train",
    "training_function",
    "valid_option_names",
]
