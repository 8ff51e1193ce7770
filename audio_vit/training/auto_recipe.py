"""Defaults derived from the data: what `audio-vit train` uses for every option the user did not set.

A user brings a folder of clips and runs `audio-vit train --data-dir DIR`. Fixed defaults cannot fit both
1 s keywords at 8 kHz and 10 s field recordings at 48 kHz, so the options that depend on the data are
derived from a `DataProfile` (native rates, durations, clip and class counts, read from file headers):

- features (`audio_vit.data.feature_recipe`, shared with `audio-vit prepare`): the sampling rate from the median
  native rate, the window from the clips' durations (1-10 s), a coarser hop for longer windows, clips cached whole
  up to a minute and judged on all their windows;
- model: the ViT with a convolutional stem ("early convolutions"), sized for small data, pooling the mean plus
  the maximum of its tokens (a short event in a long window is not averaged away);
- training: epochs from the number of training clips and the window length (a budget of clip-passes that
  fits about 10 minutes on 2 CPU cores), ReduceLROnPlateau on the validation loss with warmup, weight EMA,
  label smoothing, no early stopping on a noisy small validation set;
- augmentation: gain, time shift and SpecAugment always; mixup for windows of 2 s or more (sound events and
  scenes, where mixtures are natural), off for short speech-like clips;
- validation (`feature_recipe.validation_defaults`): a whole other fold when the data has folds, group-disjoint
  when a group column is given.

`--recipe none` keeps the plain dataclass defaults. Any option given on the command line or in a `--config`
file wins over the derived value; `resolve_recipe` returns what it applied so it can be printed and saved.
"""
from __future__ import annotations

import math
from typing import Any

from ..data.feature_recipe import (apply_defaults, feature_defaults, fixed_options, folder_features, profile_data,
                                   read_prepared_recipe, recipe_record, expected_train_fraction,
                                   validation_defaults)
from ..data.profile import DataProfile
from .distillation_recipe import add_distillation_defaults
from .transfer_recipe import add_transfer_defaults

# Training clip-passes x window frames that fit about 10 minutes on 2 CPU cores with the default model.
CLIP_FRAME_BUDGET = 4_500_000
MIN_EPOCHS, MAX_EPOCHS = 20, 80


def model_defaults(profile: DataProfile, num_mel_bins: int = 64) -> dict[str, Any]:
    """The conv-stem ViT; a wider, deeper one only when there are thousands of clips to fit it.

    Its patches span the whole height of the stem's map (64 mel bins -> 8 rows after the three stride-2 layers)
    and one map step (4 frames) in time: one token per time step, as a CNN's time axis."""
    from ..models.audio_vit.configuration_audio_vit import conv_stem_output_size  # transformers: not needed to parse options

    large = profile.num_clips >= 10_000
    stem_channels = [32, 64, 128]
    stem_height, _ = conv_stem_output_size(num_mel_bins, 64, len(stem_channels))
    return {
        "backbone": "scratch",
        "stem": "conv",
        "stem_channels": stem_channels,
        "patch_size": [stem_height, 1],
        "hidden_size": 192 if large else 128,
        "num_hidden_layers": 6 if large else 4,
        "num_attention_heads": 4,
        # Mean + max over the tokens: on 5 s noisy clips with a short event, mean pooling sat at chance for 10-20
        # epochs and mean_max did not (validation accuracy 98% against 45% after 37 epochs; BENCHMARKS.md).
        "pooling": "mean_max",
        "drop_path_rate": 0.1,
    }


def training_clip_count(profile: DataProfile, train_fraction: float) -> int:
    """How many clips the training split will hold."""
    return max(1, int(profile.num_clips * train_fraction))


def training_cost(epochs: int, train_clips: int, max_length: int) -> int:
    """The recipe's cost unit: training clip-passes x window frames (at least 100: short windows have fixed costs);
    `CLIP_FRAME_BUDGET` of them take about 10 minutes for the scratch ViT on 2 CPU cores."""
    return epochs * train_clips * max(max_length, 100)


def training_defaults(profile: DataProfile, max_length: int, train_fraction: float) -> dict[str, Any]:
    num_train = training_clip_count(profile, train_fraction)
    epochs = int(round(CLIP_FRAME_BUDGET / training_cost(1, num_train, max_length)))
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, epochs))
    steps_per_epoch = max(1, math.ceil(num_train / 32))
    return {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": 32,
        "learning_rate": 1e-3,
        "weight_decay": 0.05,
        "lr_scheduler": "plateau",
        "warmup_epochs": 2.0,
        "plateau_patience": max(3, epochs // 8),
        "plateau_factor": 0.5,
        "metric_for_best_model": "loss",
        "early_stopping_patience": 0,
        "label_smoothing": 0.1,
        # About three epochs of averaging whatever the epoch length (a short epoch needs a faster EMA).
        "ema_decay": round(max(0.9, min(0.999, 1.0 - 1.0 / (3 * steps_per_epoch))), 4),
        "balanced_sampling": profile.imbalance_ratio >= 3.0,
    }


def augmentation_defaults(max_length: int, window_s: float) -> dict[str, Any]:
    mixup = window_s >= 2.0
    return {
        "gain_db": 6.0,
        "time_shift_frames": max(1, max_length // 10),
        "num_freq_masks": 2,
        "freq_mask_param": 8,
        "num_time_masks": 2,
        "time_mask_param": max(1, max_length // 10),
        "mixup_alpha": 0.2 if mixup else 0.0,
        "mixup_prob": 0.5,
    }


# Options that only make sense together: when the user sets one, the derived others are not applied.
GEOMETRY_OPTIONS = ("backbone", "timm_model_name", "stem", "stem_channels", "patch_size", "frequency_stride",
                    "time_stride")


RECIPE_PARTS = ("features", "model", "training", "augmentation")
# What a model's config keeps of the recipe record (`training_recipe`): the options applied and why.
RECIPE_RECORD_KEYS = ("recipe", "applied", "kept", "profile", "transfer", "distillation")


def derive_defaults(profile: DataProfile, *, fixed: dict[str, Any] | None = None, train_fraction: float = 0.8,
                    parts: tuple[str, ...] = RECIPE_PARTS) -> dict[str, Any]:
    """Option name -> value for every data-dependent option.

    Args:
        profile (`DataProfile`): the dataset.
        fixed (`dict`, *optional*): options already decided (by the user, a checkpoint or a prepared folder), name ->
            value; derived values are consistent with them (the window in frames of a fixed hop, say).
        train_fraction (`float`, defaults to 0.8): share of the profiled clips the training split will hold (for
            epochs).
        parts (`tuple[str]`, defaults to all of `RECIPE_PARTS`): which groups of options to derive. A checkpoint to
            fine-tune brings its features and architecture (training and augmentation only); a prepared folder its
            features; `audio-vit prepare` derives the features alone.
    """
    fixed = fixed or {}
    features = feature_defaults(profile, fixed)
    max_length = fixed.get("max_length") or features["max_length"]
    window_s = (max_length - 1) * features["hop_length"] / features["sampling_rate"]
    derived = {}
    if "features" in parts:
        derived.update(features)
    if "model" in parts:
        model = model_defaults(profile, fixed.get("num_mel_bins") or features["num_mel_bins"])
        if any(name in fixed for name in GEOMETRY_OPTIONS):
            model = {name: value for name, value in model.items() if name not in GEOMETRY_OPTIONS}
        derived.update(model)
    if "training" in parts:
        derived.update(training_defaults(profile, max_length, train_fraction))
    if "augmentation" in parts:
        derived.update(augmentation_defaults(max_length, window_s))
    return derived


def resolve_recipe(model_args, data_args, aug_config, args, explicit: set[str]) -> dict[str, Any] | None:
    """Apply the data-derived defaults of `args.recipe == "auto"` to the four argument dataclasses, in place.

    With `--prepared-data-dir` the profile comes from the folder's `recipe.json` and the features from its
    feature extractor (model, training and augmentation are derived); with `--model-name-or-path` the checkpoint
    brings features and architecture (training and augmentation are derived).

    Returns what was done (`{"recipe", "profile", "applied", "kept"}`) for printing and saving, or None when the
    recipe is `none` or the data cannot be profiled up front (streaming, a folder prepared without a recipe).
    """
    if args.recipe == "none" or data_args.streaming:
        return None
    arguments = (model_args, data_args, aug_config, args)
    fixed = fixed_options(arguments, explicit)
    if args.prepared_data_dir:
        prepared = read_prepared_recipe(args.prepared_data_dir)
        if prepared is None:
            return None
        profile = DataProfile.from_dict(prepared["profile"])
        fixed = {**folder_features(args.prepared_data_dir), **fixed}
        validation, train_fraction, multi_label = {}, prepared["train_fraction"], prepared.get("multi_label", False)
        parts = ("model", "training", "augmentation")
    else:
        manifest, profile, splits = profile_data(data_args)
        validation = validation_defaults(manifest, data_args)
        train_fraction = expected_train_fraction(manifest, data_args, validation, splits)
        multi_label = manifest.label_sets is not None
        parts = RECIPE_PARTS
        if model_args.model_name_or_path:
            fixed = {**folder_features(model_args.model_name_or_path), **fixed}
            parts = ("training", "augmentation")
    if getattr(args, "teacher", None):  # a distilled student sees the spectrograms its teacher was trained on
        fixed = {**folder_features(args.teacher), **fixed}
    derived = {**validation, **derive_defaults(profile, fixed=fixed, train_fraction=train_fraction, parts=parts)}
    if multi_label:
        # Multi-label clips have no single class to balance on (and their label strings are combinations).
        derived["balanced_sampling"] = False
    transfer = add_transfer_defaults(model_args, derived, parts)  # fine-tuning settings for a pretrained start
    distillation = add_distillation_defaults(args, derived, parts)  # how a student learns from --teacher
    record = recipe_record(profile, derived, apply_defaults(arguments, derived, explicit), explicit)
    record["train_clips"] = training_clip_count(profile, train_fraction)
    extras = {"transfer": transfer, "distillation": distillation}
    return {**record, **{key: value for key, value in extras.items() if value}}


def format_recipe(record: dict[str, Any]) -> str:
    """Lines for the terminal: the profile and every derived option."""
    options = ", ".join(f"{name}={value}" for name, value in record["applied"].items())
    kept = f"\n  kept from the command line / config: {', '.join(record['kept'])}" if record["kept"] else ""
    transfer = (f"\n  pretrained start, {record['transfer']['start']}: fine-tuning values for "
                f"{', '.join(record['transfer']['options'])} ({record['transfer']['why']})"
                if record.get("transfer") else "")
    distillation = (f"\n  teacher {record['distillation']['teacher']}: distillation values for "
                    f"{', '.join(record['distillation']['options'])} ({record['distillation']['why']})"
                    if record.get("distillation") else "")
    return (f"data-derived defaults (--recipe auto; --recipe none for the plain defaults):\n"
            f"  data: {record['profile_text']}\n  set: {options}{kept}{transfer}{distillation}")


__all__ = ["CLIP_FRAME_BUDGET", "RECIPE_RECORD_KEYS", "derive_defaults", "format_recipe", "model_defaults",
           "resolve_recipe", "training_cost"]
