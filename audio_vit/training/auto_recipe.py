"""Defaults derived from the data: what `audio-vit train` uses for every option the user did not set.

A user brings a folder of clips and runs `audio-vit train --data-dir DIR`. Fixed defaults cannot fit both
1 s keywords at 8 kHz and 10 s field recordings at 48 kHz, so the options that depend on the data are
derived from a `DataProfile` (native rates, durations, clip and class counts, read from file headers):

- features: the sampling rate is the median native rate, never above 16 kHz (cost) and never an upsampling
  of most clips; the window is the geometric mean of the median and the 90th-percentile clip duration (1-10 s:
  the clips' length where they are alike, between the typical clip and the long tail where they spread widely);
  longer windows use a coarser hop so a window stays about 250 frames or fewer (the cost of a training step
  grows with the frame count); clips are cached whole up to a minute and judged on all their windows;
- model: the ViT with a convolutional stem ("early convolutions"), sized for small data, pooling the mean plus
  the maximum of its tokens (a short event in a long window is not averaged away);
- training: epochs from the number of training clips and the window length (a budget of clip-passes that
  fits about 10 minutes on 2 CPU cores), ReduceLROnPlateau on the validation loss with warmup, weight EMA,
  label smoothing, no early stopping on a noisy small validation set;
- augmentation: gain, time shift and SpecAugment always; mixup for windows of 2 s or more (sound events and
  scenes, where mixtures are natural), off for short speech-like clips;
- validation: a whole other fold when the data has folds, group-disjoint when a group column is given.

`--recipe none` keeps the plain dataclass defaults. Any option given on the command line or in a `--config`
file wins over the derived value; `resolve_recipe` returns what it applied so it can be printed and saved.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..data.profile import DataProfile
from ..model_folder import PREPROCESSOR_NAME, RECIPE_NAME
from .distillation_recipe import add_distillation_defaults
from .transfer_recipe import add_transfer_defaults
# Feature options a model or prepared folder fixes (its preprocessor_config.json).
FEATURE_OPTIONS = ("sampling_rate", "hop_length", "win_length", "n_fft", "num_mel_bins", "f_max", "max_length")
# Standard rates, low to high; the derived rate is the highest one not above the data's median rate.
STANDARD_RATES = (8000, 11025, 16000)
MAX_WINDOW_SECONDS = 10.0
MIN_WINDOW_SECONDS = 1.0
# Longest stretch of a clip that is cached (and so judged) whole; the storage of every clip is this long, padded.
MAX_CACHED_SECONDS = 60.0
# Training clip-passes x window frames that fit about 10 minutes on 2 CPU cores with the default model.
CLIP_FRAME_BUDGET = 4_500_000
MIN_EPOCHS, MAX_EPOCHS = 20, 80


def feature_defaults(profile: DataProfile, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sampling rate, STFT and window length (frames) from the profile's native rates and durations.

    `fixed` holds the options the user set: the others are derived consistently with them (a user's hop
    length gives the window in frames of that hop).
    """
    fixed = fixed or {}
    median_rate = profile.median_sampling_rate
    rate = fixed.get("sampling_rate") or max([r for r in STANDARD_RATES if r <= median_rate] or [STANDARD_RATES[0]])
    window_s = window_seconds(profile.duration_percentiles)
    hop_ms = 10 if window_s <= 3 else 20 if window_s <= 6 else 40
    hop_length = fixed.get("hop_length") or int(rate * hop_ms // 1000)
    win_length = fixed.get("win_length") or int(2.5 * hop_length)  # 25 ms windows at a 10 ms hop, as for speech
    n_fft = fixed.get("n_fft") or 1 << (int(win_length) - 1).bit_length()
    max_length = fixed.get("max_length") or 1 + int(window_s * rate) // hop_length
    return {
        "sampling_rate": rate,
        "hop_length": hop_length,
        "win_length": min(win_length, n_fft),
        "n_fft": n_fft,
        "num_mel_bins": 64,
        "f_max": rate / 2,
        "max_length": max_length,
        # Cache whole clips (up to MAX_CACHED_SECONDS): training crops a new window each epoch, evaluation averages
        # the model over every window of the clip, so a long recording is judged whole.
        "max_clip_windows": cached_windows(profile.duration_percentiles["max"], rate, hop_length, max_length),
    }


def window_seconds(durations: dict[str, float]) -> float:
    """The model window: the geometric mean of the median and the 90th-percentile clip duration, 1-10 s, in quarter
    seconds.

    Where clips have similar lengths this is about their length (1 s keywords, 5 s events fill the window). Where
    they spread widely (fragments of 0.2 s and recordings of 40 s in one folder: median 2.7 s, p90 11.3 s) a
    window as long as the 90th percentile leaves the typical clip mostly padding at a coarse hop; the geometric
    mean sits between the typical clip and the long tail, and longer clips are judged on all their windows.
    Chosen on validation folds of the `mixed` development variant (BENCHMARKS.md): a 5 s window beat the
    90th-percentile window (10 s) and the median one (2.5 s) on accuracy and macro-F1.
    """
    typical = math.sqrt(max(durations["p50"], 1e-3) * max(durations["p90"], 1e-3))
    window_s = min(MAX_WINDOW_SECONDS, max(MIN_WINDOW_SECONDS, typical))
    return math.ceil(window_s * 4) / 4  # quarter seconds: a stable value for similar datasets


def cached_windows(longest_s: float, rate: int, hop_length: int, max_length: int) -> int:
    """How many model windows of storage a clip gets: enough for the longest clip, at most MAX_CACHED_SECONDS."""
    frames = min(longest_s, MAX_CACHED_SECONDS) * rate / hop_length
    return max(1, math.ceil(frames / max_length))


def model_defaults(profile: DataProfile, num_mel_bins: int = 64) -> dict[str, Any]:
    """The conv-stem ViT; a wider, deeper one only when there are thousands of clips to fit it.

    Its patches span the whole height of the stem's map (64 mel bins -> 8 rows after the three stride-2 layers)
    and one map step (4 frames) in time: one token per time step, as a CNN's time axis."""
    from ..configuration_audio_vit import conv_stem_output_size  # transformers: not needed to parse options

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


def apply_defaults(arguments, derived: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
    """Set each derived option on whichever argument dataclass has it, unless the user set it explicitly.

    Returns the options that were applied (name -> value).
    """
    applied = {}
    for name, value in derived.items():
        if name in explicit:
            continue
        for args in arguments:
            if hasattr(args, name):
                setattr(args, name, value)
                applied[name] = value
    return applied


def validation_defaults(manifest, data_args) -> dict[str, Any]:
    """Honest validation: a whole other fold when a test fold is held out (clips of one source recording share
    a fold, so a fraction of the training folds would leak); group-disjoint carving happens in the splits."""
    if manifest.folds and data_args.test_fold is not None and data_args.validation_fold is None:
        folds = sorted(set(manifest.folds), key=lambda f: (len(f), f))  # "2" before "10"
        test = str(data_args.test_fold)
        if test in folds and len(folds) >= 3:
            return {"validation_fold": folds[(folds.index(test) + 1) % len(folds)]}
    return {}


def _train_fraction(manifest, data_args, validation: dict, splits: dict) -> float:
    """Share of the profiled clips (every clip but the test split's) that the training split will hold: the folds
    left once a validation fold is taken, else what the splits hold."""
    if manifest.folds and data_args.test_fold is not None:
        num_folds = len(set(manifest.folds))
        return max(0.1, (num_folds - 1 - (1 if validation or data_args.validation_fold else 0)) / (num_folds - 1))
    profiled = len(splits.get("train", [])) + len(splits.get("validation", []))
    return len(splits.get("train", [])) / max(1, profiled)


def folder_features(folder) -> dict[str, Any]:
    """The feature options a model folder or a prepared folder fixes (its `preprocessor_config.json`)."""
    path = Path(folder) / PREPROCESSOR_NAME
    if not path.is_file():
        return {}
    config = json.loads(path.read_text(encoding="utf-8"))
    return {name: config[name] for name in FEATURE_OPTIONS if config.get(name) is not None}


def read_prepared_recipe(folder) -> dict[str, Any] | None:
    """The `recipe.json` `audio-vit prepare` wrote into a prepared folder (None if it was prepared with
    `--recipe none` or by an older version)."""
    path = Path(folder) / RECIPE_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _profile_data(data_args):
    """(manifest, profile, splits) of the source `data_args` names: clip lists and labels, rates and durations from
    headers, and the rows of each split (`audio_vit.data.splits.assign_splits`).

    The test split is left out of the profile: nothing derived for training (the window, the epochs, balanced
    sampling) may depend on the clips the model is judged on."""
    from ..data import resolve_data_dir
    from ..data.profile import profile_manifest
    from ..data.sources import build_manifest
    from ..data.splits import assign_splits

    manifest = build_manifest(resolve_data_dir(data_args))
    splits, _ = assign_splits(manifest, data_args)
    test = set(splits.get("test", []).tolist())
    rows = [row for row in range(len(manifest)) if row not in test] if test else None
    return manifest, profile_manifest(manifest, rows), splits


def _record(profile: DataProfile, derived: dict[str, Any], applied: dict[str, Any], explicit: set[str]) -> dict:
    return {"recipe": "auto", "profile": profile.to_dict(), "profile_text": profile.format(), "applied": applied,
            "kept": sorted(name for name in derived if name in explicit)}


def _fixed_options(arguments, explicit: set[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in explicit for obj in arguments if hasattr(obj, name)}


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
    fixed = _fixed_options(arguments, explicit)
    if args.prepared_data_dir:
        prepared = read_prepared_recipe(args.prepared_data_dir)
        if prepared is None:
            return None
        profile = DataProfile.from_dict(prepared["profile"])
        fixed = {**folder_features(args.prepared_data_dir), **fixed}
        validation, train_fraction, multi_label = {}, prepared["train_fraction"], prepared.get("multi_label", False)
        parts = ("model", "training", "augmentation")
    else:
        manifest, profile, splits = _profile_data(data_args)
        validation = validation_defaults(manifest, data_args)
        train_fraction = _train_fraction(manifest, data_args, validation, splits)
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
    record = _record(profile, derived, apply_defaults(arguments, derived, explicit), explicit)
    record["train_clips"] = training_clip_count(profile, train_fraction)
    extras = {"transfer": transfer, "distillation": distillation}
    return {**record, **{key: value for key, value in extras.items() if value}}


def resolve_prepare_recipe(data_args, prepare_args, explicit: set[str]) -> dict[str, Any] | None:
    """`audio-vit prepare --recipe auto`: derive the feature options (rate, STFT, window, cached clip windows) and
    the validation fold, in place, as `audio-vit train` would. A `--feature-extractor` fixes the features; then
    only the cached windows and the validation fold are derived. Returns the record (see `resolve_recipe`) with
    `multi_label`; the prepare command adds `train_fraction` once the splits exist, and writes it as the prepared
    folder's `recipe.json`, from which `train --prepared-data-dir` derives the rest."""
    if prepare_args.recipe == "none" or data_args.streaming:
        return None
    manifest, profile, _ = _profile_data(data_args)
    arguments = (data_args, prepare_args)
    fixed = _fixed_options(arguments, explicit)
    features = derive_defaults(profile, fixed={**(folder_features(prepare_args.feature_extractor)
                                                  if prepare_args.feature_extractor else {}), **fixed},
                               parts=("features",))
    if prepare_args.feature_extractor:
        features = {"max_clip_windows": features["max_clip_windows"]}
    derived = {**validation_defaults(manifest, data_args), **features}
    record = _record(profile, derived, apply_defaults(arguments, derived, explicit), explicit)
    record["multi_label"] = manifest.label_sets is not None
    return record


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


__all__ = ["CLIP_FRAME_BUDGET", "RECIPE_RECORD_KEYS", "derive_defaults", "apply_defaults", "feature_defaults",
           "model_defaults", "resolve_recipe", "resolve_prepare_recipe", "read_prepared_recipe", "folder_features",
           "format_recipe", "training_cost", "validation_defaults"]
