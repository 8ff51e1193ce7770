"""Dataclasses -> command-line options, without importing transformers (so `--help` answers at once).

`DataclassArgumentParser` maps fields the way `transformers.HfArgumentParser` does, so options, defaults and
`--help` texts are unchanged: `--field_name` and `--field-name`; `Optional[X]` / `X | None` take an X; a
`bool` field takes no value or one of yes/no, true/false, t/f, y/n, 1/0, and a `True` default also gets
`--no_field` / `--no-field`; a `list[X]` field takes one or more values; `Literal[...]` gives choices; the rest of `field.metadata` (e.g. `help`) goes to `add_argument`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from typing import Any, Literal, Union


def string_to_bool(value) -> bool:
    """yes/no, true/false, t/f, y/n, 1/0 (any case) -> bool; anything else is an argparse error naming the value."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive)."
    )


def _strip_optional(annotation):
    """`Optional[X]` / `X | None` -> (X, True); anything else -> (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            if str in args:  # Union[str, X] is read as a string, as HfArgumentParser does
                return str, type(None) in typing.get_args(annotation)
            raise ValueError(f"only Optional[X] unions can be command-line options, got {annotation}")
        return args[0], True
    return annotation, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, dataclass_type) -> None:
    """Add one option per `init` field of `dataclass_type` to `parser`."""
    hints = typing.get_type_hints(dataclass_type, globalns=vars(sys.modules[dataclass_type.__module__]))
    for field in dataclasses.fields(dataclass_type):
        if not field.init:
            continue
        names = [f"--{field.name}"] + ([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])
        kwargs: dict[str, Any] = dict(field.metadata)
        annotation, optional = _strip_optional(hints[field.name])
        origin = typing.get_origin(annotation)
        has_default = field.default is not dataclasses.MISSING
        default = field.default if has_default else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None)
        if origin is Literal:
            kwargs.update(choices=list(typing.get_args(annotation)), type=type(typing.get_args(annotation)[0]))
        elif annotation is bool:
            if not optional or (has_default and field.default is not None):
                kwargs.update(nargs="?", const=True)
            kwargs["type"] = string_to_bool
        elif origin is list:
            kwargs["type"] = typing.get_args(annotation)[0]
            kwargs["nargs"] = "+"  # as HfArgumentParser, which overrides a `nargs` in the metadata
        else:
            kwargs["type"] = annotation
        if has_default or field.default_factory is not dataclasses.MISSING:
            kwargs["default"] = default
        elif annotation is bool:
            kwargs["default"] = False
        else:
            kwargs["required"] = True
        parser.add_argument(*names, **kwargs)
        if annotation is bool and field.default is True:
            parser.add_argument(f"--no_{field.name}", f"--no-{field.name.replace('_', '-')}", action="store_false",
                                dest=field.name, default=False, **dict(field.metadata))


class DataclassArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` with options for each of `dataclass_types` (see the module docstring)."""

    def __init__(self, dataclass_types, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(**kwargs)
        self.dataclass_types = list(dataclass_types) if isinstance(dataclass_types, (list, tuple)) else [dataclass_types]
        for dataclass_type in self.dataclass_types:
            add_dataclass_arguments(self, dataclass_type)

    def dataclasses_from_namespace(self, namespace: argparse.Namespace) -> tuple:
        """One instance per dataclass from a parsed namespace (a name shared by several fills them all)."""
        return tuple(
            cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init})
            for cls in self.dataclass_types
        )

    def parse_args_into_dataclasses(self, args: list[str] | None = None) -> tuple:
        return self.dataclasses_from_namespace(self.parse_args(args))

    def explicit_options(self, args: list[str] | None = None, ignore: tuple[str, ...] = ()) -> set[str]:
        """Names of the options `args` sets on the command line (whatever the value, a default one included)."""
        unset = object()  # a default no parsed value can equal
        saved = {action.dest: action.default for action in self._actions}
        try:
            for action in self._actions:
                if action.dest != "help":
                    action.default = unset
            namespace, _ = self.parse_known_args(args)
        finally:
            for action in self._actions:
                action.default = saved[action.dest]
        return {name for name, value in vars(namespace).items() if value is not unset and name not in ignore}


__all__ = ["DataclassArgumentParser", "add_dataclass_arguments", "string_to_bool"]
