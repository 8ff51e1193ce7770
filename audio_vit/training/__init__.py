"""Training of AudioViT classifiers with accelerate: arguments, the loop, checkpoints, metrics.

    from audio_vit.training import parse_training_args, training_function
    results = training_function(*parse_training_args(["--config", "audio_vit/recipes/fsdd.yaml"]))
"""
from .arguments import ModelArguments, TrainingArguments, parse_training_args, read_config_file, valid_option_names
from .checkpointing import TrainerState, list_checkpoints, resolve_checkpoint, save_checkpoint
from .evaluation import ClassificationMetrics, evaluate_model
from .loop import build_model, training_function
from .optimization import LRSchedule, ModelEMA, build_optimizer, parameter_groups

__all__ = [
    "ClassificationMetrics",
    "LRSchedule",
    "ModelArguments",
    "ModelEMA",
    "TrainerState",
    "TrainingArguments",
    "build_model",
    "build_optimizer",
    "evaluate_model",
    "list_checkpoints",
    "parameter_groups",
    "parse_training_args",
    "read_config_file",
    "resolve_checkpoint",
    "save_checkpoint",
    "training_function",
    "valid_option_names",
]
