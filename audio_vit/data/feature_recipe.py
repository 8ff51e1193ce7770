"""The data half of the automatic recipe: what `audio-vit prepare` and `audio-vit train` derive from the clips alone.

- features: the sampling rate is the median native rate, never above 16 kHz (cost) and never an upsampling of most
  clips; the window is the geometric mean of the median and the 90th-percentile clip duration (1-10 s); longer
  windows use a coarser hop so a window stays about 250 frames or fewer; clips are cached whole up to a minute;
- validation: a whole other fold when the data has folds (group-disjoint carving happens in the splits);
- the profile itself (`profile_data`), read without the test split, and how options are applied: a value the user
  set (command line or config) always wins.

`audio_vit.training.auto_recipe` derives the model, training and augmentation options on top of these.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model_folder import PREPROCESSOR_NAME, RECIPE_NAME

if TYPE_CHECKING:
    from .profile import DataProfile

FEATURE_OPTIONS = ("sampling_rate", "hop_length", "win_length", "n_fft", "num_mel_bins", "f_max", "max_length")
# Standard rates, low to high; the derived rate is the highest one not above the data's median rate.
STANDARD_RATES = (8000, 11025, 16000)
MAX_WINDOW_SECONDS = 10.0
MIN_WINDOW_SECONDS = 1.0
# Longest stretch of a clip that is cached (and so judged) whole; the storage of every clip is this long, padded.
MAX_CACHED_SECONDS = 60.0


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


def expected_train_fraction(manifest, data_args, validation: dict, splits: dict) -> float:
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


def profile_data(data_args):
    """(manifest, profile, splits) of the source `data_args` names: clip lists and labels, rates and durations from
    headers, and the rows of each split (`audio_vit.data.splits.assign_splits`).

    The test split is left out of the profile: nothing derived for training (the window, the epochs, balanced
    sampling) may depend on the clips the model is judged on."""
    from .build import resolve_data_dir
    from .profile import profile_manifest
    from .sources import build_manifest
    from .splits import assign_splits

    manifest = build_manifest(resolve_data_dir(data_args))
    splits, _ = assign_splits(manifest, data_args)
    test = set(splits.get("test", []).tolist())
    rows = [row for row in range(len(manifest)) if row not in test] if test else None
    return manifest, profile_manifest(manifest, rows), splits


def recipe_record(profile: DataProfile, derived: dict[str, Any], applied: dict[str, Any], explicit: set[str]) -> dict:
    return {"recipe": "auto", "profile": profile.to_dict(), "profile_text": profile.format(), "applied": applied,
            "kept": sorted(name for name in derived if name in explicit)}


def fixed_options(arguments, explicit: set[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in explicit for obj in arguments if hasattr(obj, name)}


def resolve_prepare_recipe(data_args, prepare_args, explicit: set[str]) -> dict[str, Any] | None:
    """`audio-vit prepare --recipe auto`: derive the feature options (rate, STFT, window, cached clip windows) and
    the validation fold, in place, as `audio-vit train` would. A `--feature-extractor` fixes the features; then
    only the cached windows and the validation fold are derived. Returns the record (see `resolve_recipe`) with
    `multi_label`; the prepare command adds `train_fraction` once the splits exist, and writes it as the prepared
    folder's `recipe.json`, from which `train --prepared-data-dir` derives the rest."""
    if prepare_args.recipe == "none" or data_args.streaming:
        return None
    manifest, profile, _ = profile_data(data_args)
    arguments = (data_args, prepare_args)
    fixed = fixed_options(arguments, explicit)
    features = feature_defaults(profile, {**(folder_features(prepare_args.feature_extractor)
                                             if prepare_args.feature_extractor else {}), **fixed})
    if prepare_args.feature_extractor:
        features = {"max_clip_windows": features["max_clip_windows"]}
    derived = {**validation_defaults(manifest, data_args), **features}
    record = recipe_record(profile, derived, apply_defaults(arguments, derived, explicit), explicit)
    record["multi_label"] = manifest.label_sets is not None
    return record


__all__ = ["FEATURE_OPTIONS", "apply_defaults", "cached_windows", "expected_train_fraction",
           "feature_defaults", "fixed_options", "folder_features", "profile_data", "read_prepared_recipe",
           "recipe_record", "resolve_prepare_recipe", "validation_defaults", "window_seconds"]
