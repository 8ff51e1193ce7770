"""A model folder (what `save_pretrained` writes and training leaves behind): its file names, how to recognise
one, and the one loader.

`load_model` is what the commands use instead of a bare `from_pretrained`: it checks the folder first so a
broken checkpoint fails with the file name and what was expected, never unpickles a `pytorch_model.bin`
unless asked to (and then only with `torch.load(weights_only=True)`), and refuses weights whose shapes do
not match `config.json` instead of re-initialising them. (Importing this module runs `audio_vit/__init__`, which
registers `model_type="audio_vit"` with the transformers Auto classes.)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"
PREPROCESSOR_NAME = "preprocessor_config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
PICKLE_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
# Written by training beside the model files.
ALL_RESULTS_NAME = "all_results.json"
TEST_RESULTS_NAME = "test_results.json"
DATA_REPORT_NAME = "data_report.json"
PRETRAINED_REPORT_NAME = "pretrained_backbone.json"
RECIPE_NAME = "recipe.json"  # the data-derived defaults (a model folder's or a prepared folder's) and the data profile
ROUTE_NAME = "route.json"  # `--route auto`: the candidate routes, their validation scores and the one chosen
CARD_NAME = "README.md"


class ModelFolderError(ValueError):
    """A model folder (or file in it) is missing, unreadable or inconsistent; the message names the file."""


def resolve_model_folder(model_name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder as is; a Hub repo id through `snapshot_download` (the cache when `HF_HUB_OFFLINE=1`)."""
    path = Path(model_name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelFolderError(f"{str(path)!r} is a file; expected a model folder (config.json + model.safetensors)")
    name = str(model_name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelFolderError(f"model folder {name!r} does not exist (and is not a Hub repo id like 'user/name')")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as err:  # offline, unknown repo, no cache entry: keep the hub's reason
        raise ModelFolderError(
            f"{name!r} is not a local folder and could not be fetched from the Hub or found in the cache "
            f"({type(err).__name__}: {err})"
        ) from err


def read_config(folder: str | os.PathLike):
    """`config.json` -> the model's `PretrainedConfig`, with an error naming the file when it is missing or bad."""
    from transformers import AutoConfig

    folder = Path(folder)
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ModelFolderError(
            f"{str(folder)!r} has no {CONFIG_NAME}; expected a folder written by save_pretrained "
            f"(config.json, {SAFE_WEIGHTS_NAME}, {PREPROCESSOR_NAME}); found {sorted(p.name for p in folder.iterdir())}"
        )
    try:
        payload = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{str(config_file)!r} is not valid JSON: {err}") from err
    if not isinstance(payload, dict) or "model_type" not in payload:
        raise ModelFolderError(f"{str(config_file)!r} has no 'model_type'; expected e.g. \"model_type\": \"audio_vit\"")
    try:
        return AutoConfig.from_pretrained(folder)
    except Exception as err:
        raise ModelFolderError(f"{str(config_file)!r} could not be read as a model config: {err}") from err


def find_weight_files(folder: Path, allow_pickle: bool) -> tuple[str, list[Path]]:
    """("safetensors" | "pickle", files) of the folder's weights, preferring safetensors."""
    for kind, single, index in (
        ("safetensors", SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME),
        ("pickle", PICKLE_WEIGHTS_NAME, PICKLE_WEIGHTS_INDEX_NAME),
    ):
        if (folder / index).is_file():
            try:
                weight_map = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ModelFolderError(f"{str(folder / index)!r} is not a valid shard index (need 'weight_map'): {err}") from err
            files = [folder / name for name in sorted(set(weight_map.values()))]
        elif (folder / single).is_file():
            files = [folder / single]
        else:
            continue
        for file in files:
            if not file.is_file():
                raise ModelFolderError(f"{str(file)!r} is listed in the shard index but missing")
        if kind == "pickle" and not allow_pickle:
            raise ModelFolderError(
                f"{str(folder)!r} has only pickle weights ({files[0].name}) and no {SAFE_WEIGHTS_NAME}; pickle files "
                "can run code when loaded, so they are refused. Convert them once in a trusted environment "
                "(load, then save_pretrained writes safetensors) or pass allow_pickle=True to load them with "
                "torch.load(weights_only=True)"
            )
        return kind, files
    raise ModelFolderError(
        f"{str(folder)!r} has no weights: expected {SAFE_WEIGHTS_NAME} (or a sharded {SAFE_WEIGHTS_INDEX_NAME}); "
        f"found {sorted(p.name for p in folder.iterdir())}"
    )


def read_weight_shapes(files: list[Path], kind: str = "safetensors") -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, read from safetensors headers (no tensor data) or a weights-only unpickle."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        if kind == "safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(file), framework="pt") as handle:
                    for key in handle.keys():
                        shapes[key] = tuple(handle.get_slice(key).get_shape())
            except Exception as err:  # SafetensorError: truncated or not a safetensors file
                size = file.stat().st_size
                raise ModelFolderError(
                    f"{str(file)!r} ({size} bytes) is not a readable safetensors file ({err}); it may be truncated "
                    "by an interrupted download or copy: fetch or save it again"
                ) from err
        else:
            import pickle

            import torch

            try:
                state_dict = torch.load(file, map_location="meta", weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
                raise ModelFolderError(
                    f"{str(file)!r} could not be loaded with torch.load(weights_only=True): {err}"
                ) from err
            shapes.update({key: tuple(value.shape) for key, value in state_dict.items()})
    return shapes


def expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape for a model built from `config` (parameters on the meta device: no memory, no init)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForAudioClassification

    # init_empty_weights puts only parameters on "meta"; plain tensors built in __init__ stay usable.
    with init_empty_weights(include_buffers=False):
        model = AutoModelForAudioClassification.from_config(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def check_weights_match_config(config, shapes: dict[str, tuple[int, ...]], weights_name: str) -> None:
    """Raise `ModelFolderError` naming each parameter whose shape differs, or which is missing from the weights."""
    expected = expected_shapes(config)
    mismatched = [
        f"{key}: {weights_name} has {list(shapes[key])}, config.json implies {list(shape)}"
        for key, shape in expected.items()
        if key in shapes and tuple(shapes[key]) != tuple(shape)
    ]
    if mismatched:
        raise ModelFolderError(
            f"{len(mismatched)} parameter(s) in {weights_name} do not match config.json "
            f"(e.g. hidden_size={getattr(config, 'hidden_size', '?')}, num_labels={config.num_labels}); "
            "the config and weights come from different models:\n  " + "\n  ".join(mismatched[:20])
        )
    missing = sorted(set(expected) - set(shapes))
    if missing:
        raise ModelFolderError(
            f"{weights_name} lacks {len(missing)} parameter(s) the model of config.json needs, e.g. "
            f"{missing[:5]}; is it a checkpoint of another architecture or a bare encoder?"
        )


def load_model(
    model_name_or_path: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    revision: str | None = None,
    **from_pretrained_kwargs: Any,
):
    """Load an audio classifier folder (or Hub repo id) after checking it, with errors that name the file.

    Args:
        model_name_or_path (`str` or `os.PathLike`): a save_pretrained folder or a Hub repo id `user/name`.
        allow_pickle (`bool`, defaults to `False`): accept a folder whose only weights are `pytorch_model.bin`;
            they are then loaded with `torch.load(weights_only=True)` (no arbitrary code).
        revision (`str`, *optional*): Hub branch, tag or commit when a repo id is given.
        from_pretrained_kwargs: passed to `AutoModelForAudioClassification.from_pretrained` (e.g. `dtype`).

    Returns the model in eval mode. Raises `ModelFolderError` for a missing/invalid config.json, missing or
    truncated weights, pickle-only weights (unless allowed) and weights whose shapes differ from the config.
    """
    from transformers import AutoModelForAudioClassification

    folder = resolve_model_folder(model_name_or_path, revision=revision)
    config = read_config(folder)
    kind, files = find_weight_files(folder, allow_pickle)
    weights_name = files[0].name if len(files) == 1 else f"{len(files)} shards of {folder.name}"
    check_weights_match_config(config, read_weight_shapes(files, kind), weights_name)
    kwargs = dict(from_pretrained_kwargs)
    if kind == "pickle":
        kwargs.update(use_safetensors=False, weights_only=True)
    else:
        kwargs.setdefault("use_safetensors", True)
    try:
        model = AutoModelForAudioClassification.from_pretrained(folder, config=config, **kwargs)
    except Exception as err:
        raise ModelFolderError(f"loading {str(folder)!r} failed: {type(err).__name__}: {err}") from err
    return model.eval()


def load_feature_extractor(model_name_or_path: str | os.PathLike, revision: str | None = None):
    """`preprocessor_config.json` of a model folder (or repo id) -> its feature extractor, or a clear error."""
    from transformers import AutoFeatureExtractor

    folder = resolve_model_folder(model_name_or_path, revision=revision)
    if not (folder / PREPROCESSOR_NAME).is_file():
        raise ModelFolderError(
            f"{str(folder)!r} has no {PREPROCESSOR_NAME}: the feature extractor (sampling rate, mel bins, "
            "normalization) is needed to turn audio into model input; save it with feature_extractor.save_pretrained"
        )
    try:
        return AutoFeatureExtractor.from_pretrained(folder)
    except Exception as err:
        raise ModelFolderError(f"{str(folder / PREPROCESSOR_NAME)!r} could not be read: {err}") from err


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a local folder holding a `config.json` (what `save_pretrained` writes first)."""
    return (Path(path) / CONFIG_NAME).is_file()


# `config.json` "architectures" of a folder holding a bare encoder (no classification head), as `audio-vit pretrain`
# writes it; `audio-vit train --model-name-or-path` gives it a new head.
ENCODER_ARCHITECTURES = ["AudioViTModel"]


def is_encoder_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a model folder of a bare `AudioViTModel` encoder, without a classification head."""
    config_file = Path(path) / CONFIG_NAME
    try:
        architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False
    return architectures == ENCODER_ARCHITECTURES


def require_model_folder(path: str | os.PathLike, option: str = "model folder") -> Path:
    """`path` as a `Path` when it is a model folder; otherwise a `ModelFolderError` naming `option` and the path."""
    if not is_model_folder(path):
        raise ModelFolderError(
            f"{option} {str(path)!r} is not a model folder (no {CONFIG_NAME}); pass a folder written by "
            "`audio-vit train` / save_pretrained"
        )
    return Path(path)


__all__ = [
    "ALL_RESULTS_NAME",
    "CARD_NAME",
    "CONFIG_NAME",
    "DATA_REPORT_NAME",
    "PREPROCESSOR_NAME",
    "PRETRAINED_REPORT_NAME",
    "RECIPE_NAME",
    "ROUTE_NAME",
    "SAFE_WEIGHTS_NAME",
    "TEST_RESULTS_NAME",
    "ENCODER_ARCHITECTURES",
    "ModelFolderError",
    "check_weights_match_config",
    "find_weight_files",
    "is_encoder_folder",
    "is_model_folder",
    "load_feature_extractor",
    "load_model",
    "read_config",
    "require_model_folder",
    "resolve_model_folder",
]
