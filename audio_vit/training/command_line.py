"""Parsing `audio-vit train`'s command line and `--config` file into the four argument dataclasses (`arguments.py`):
by increasing priority the dataclass defaults, the YAML/JSON config file, and the command line; and which options
a user set (the data-derived defaults of `--recipe auto` leave those alone)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from ..argparsing import DataclassArgumentParser
from ..data.arguments import DataArguments
from ..data.augmentation_config import AugmentationConfig
from .arguments import CONFIG_SECTIONS, ModelArguments, TrainingArguments


ARGUMENT_CLASSES = (ModelArguments, DataArguments, AugmentationConfig, TrainingArguments)


def valid_option_names(argument_classes=ARGUMENT_CLASSES) -> list[str]:
    return sorted(f.name for cls in argument_classes for f in dataclasses.fields(cls) if f.init)


def read_config_file(path: str | Path, argument_classes=ARGUMENT_CLASSES) -> dict[str, Any]:
    """Read a YAML/JSON config into one flat dict of option -> value; raise on options that none of
    `argument_classes` (by default `train`'s four; `audio-vit pretrain` passes its own) has.

    Keys may be flat or grouped under `model:`, `data:`, `augmentation:`, `training:`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"config file {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from err
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of option: value, got {type(raw).__name__}")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in CONFIG_SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key.replace("-", "_")] = value
    flat = {key.replace("-", "_"): value for key, value in flat.items()}
    valid = valid_option_names(argument_classes)
    unknown = sorted(set(flat) - set(valid))
    if unknown:
        raise ValueError(
            f"config file {str(path)!r} has unknown option(s) {unknown}; valid options are: {', '.join(valid)}"
        )
    return flat


def build_parser(prog: str = "audio-vit train") -> DataclassArgumentParser:
    # DataArguments, AugmentationConfig and TrainingArguments each have a `seed`: "resolve" keeps one
    # --seed option whose value fills all three (one seed makes the split, augmentation and training reproducible).
    parser = DataclassArgumentParser(ARGUMENT_CLASSES, conflict_handler="resolve", prog=prog)
    parser.add_argument(
        "--config",
        default=None,
        help="YAML/JSON file of options (flat, or under model:/data:/augmentation:/training:); "
        "command-line options override it.",
    )
    return parser


def non_default_options(*arguments) -> set[str]:
    """Names of the fields whose value differs from their dataclass default (what a Python caller set)."""
    names = set()
    for args in arguments:
        for f in dataclasses.fields(args):
            if not f.init:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if getattr(args, f.name) != default:
                names.add(f.name)
    return names


def explicit_option_names(argv: list[str] | None = None, prog: str = "audio-vit train") -> set[str]:
    """The options `argv` sets, on the command line or in its `--config` file (the data-derived defaults of
    `--recipe auto` leave exactly these alone)."""
    parser = build_parser(prog)
    known, _ = parser.parse_known_args(argv)
    names = set(read_config_file(known.config)) if known.config else set()
    return names | parser.explicit_options(argv, ignore=("config",))


def parse_training_args(argv: list[str] | None = None, prog: str = "audio-vit train"):
    """Parse `argv` (plus `--config FILE`) into (ModelArguments, DataArguments, AugmentationConfig, TrainingArguments)."""
    parser = build_parser(prog)
    known, _ = parser.parse_known_args(argv)
    if known.config:
        # Config values become the parser's defaults, so anything given on the command line wins.
        parser.set_defaults(**read_config_file(known.config))
    namespace = parser.parse_args(argv)
    # Built by hand rather than with parse_args_into_dataclasses, which consumes each attribute once and so
    # cannot give the shared `seed` to every dataclass that has one.
    return tuple(
        cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init}) for cls in ARGUMENT_CLASSES
    )
