"""Training of AudioViT classifiers with accelerate: arguments, the loop, checkpoints, metrics.

    from audio_vit.training import parse_training_args, train
    results = train(*parse_training_args(["--config", "audio_vit/recipes/fsdd.yaml"]))  # -> dict

`train(model_args, data_args, aug_config, training_args)` trains the model the options describe;
`train_with_route` is what `audio-vit train` runs: with `--route auto` (the default) it trains the candidate routes
(scratch ViT, pretrained start) and keeps the best on validation (`route_selection`), else it calls `train`.
`train_seeds` repeats it over `--seeds` and reports mean ± std; `evaluate_folder` scores a saved model folder on a
dataset split.
"""
from .._imports import lazy_attributes

# Imported on first use, so the options (`audio_vit.training.arguments`) load without torch for `--help`.
_LAZY_ATTRIBUTES = {
    **dict.fromkeys(["ModelArguments", "TrainingArguments"], ".arguments"),
    **dict.fromkeys(["explicit_option_names", "parse_training_args", "read_config_file", "valid_option_names"],
                    ".command_line"),
    **dict.fromkeys(["TrainerState", "list_checkpoints", "resolve_checkpoint", "save_checkpoint"], ".checkpointing"),
    **dict.fromkeys(["ClassificationMetrics", "evaluate_model"], ".eval_loop"),
    "evaluate_folder": ".folder_evaluation",
    **dict.fromkeys(["LRSchedule", "ModelEMA", "build_optimizer", "parameter_groups"], ".optimization"),
    **dict.fromkeys(["build_model", "end_distributed"], ".components"),
    **dict.fromkeys(["format_summary", "train_seeds"], ".multi_seed"),
    "train": ".trainer",
    "train_with_route": ".route_selection",
    "training_function": ".trainer",
}
_ALIASES = {"training_function": "train"}  # the name of accelerate's examples; the same function as `train`


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES, _ALIASES)

__all__ = [
    "ClassificationMetrics",
    "LRSchedule",
    "ModelArguments",
    "ModelEMA",
    "TrainerState",
    "TrainingArguments",
    "build_model",
    "build_optimizer",
    "end_distributed",
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
    "train_with_route",
    "training_function",
    "valid_option_names",
]
