"""How the package's modules are imported: public names loaded on first use, and module paths of the last release
that still work for one more.

`import audio_vit` and the command line's `--help` must not pay for torch, transformers or datasets, so a package
`__init__` names where each public attribute lives and `lazy_attributes` imports it on first use.

The layout step of issue 34 moved most modules (`audio_vit.app` -> `audio_vit.serving.app`, ...). `MOVED_MODULES`
maps every old path that no longer exists to the new one; importing an old path gives a module that forwards every
attribute to the new module and warns once (`FutureWarning`) with the path to use. The aliases are kept for one
release, then removed. (`audio_vit.inference`, `.hub`, `.export` and `.serving` are packages now; their package
`__init__` keeps the public names the modules had.)
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType


def lazy_attributes(package: str, table: dict[str, str], aliases: dict[str, str] | None = None):
    """`(__getattr__, __dir__)` for the package `package`: `table` maps each public name to the (relative) module
    that defines it; `aliases` maps a public name to the name it has in that module."""
    aliases = aliases or {}

    def __getattr__(name: str):
        if name in table:
            module = importlib.import_module(table[name], package)
            value = getattr(module, aliases.get(name, name))
            setattr(sys.modules[package], name, value)  # later look-ups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__


MOVED_MODULES = {
    "audio_vit.app": "audio_vit.serving.app",
    "audio_vit.spectrogram_overview": "audio_vit.serving.spectrogram_overview",
    "audio_vit.configuration_audio_vit": "audio_vit.models.audio_vit.configuration_audio_vit",
    "audio_vit.modeling_audio_vit": "audio_vit.models.audio_vit.modeling_audio_vit",
    "audio_vit.modeling_spectrogram_embeddings": "audio_vit.models.audio_vit.modeling_spectrogram_embeddings",
    "audio_vit.modeling_timm_encoder": "audio_vit.models.audio_vit.modeling_timm_encoder",
    "audio_vit.modeling_utils": "audio_vit.models.audio_vit.modeling_layers",
    "audio_vit.feature_extraction_audio_vit": "audio_vit.models.audio_vit.feature_extraction_audio_vit",
    "audio_vit.raw_audio_input": "audio_vit.models.audio_vit.raw_audio_input",
    "audio_vit.log_mel_frontends": "audio_vit.models.audio_vit.log_mel_frontends",
    "audio_vit.audio_utils": "audio_vit.models.audio_vit.audio_utils",
    "audio_vit.inference_options": "audio_vit.inference.options",
    "audio_vit.streaming_features": "audio_vit.inference.chunked_features",
    "audio_vit.pipeline_audio_vit": "audio_vit.inference.pipeline",
    "audio_vit.model_card": "audio_vit.hub.model_card",
    "audio_vit.model_card_tables": "audio_vit.hub.model_card_tables",
    "audio_vit.export_options": "audio_vit.export.options",
    "audio_vit.pretrained_weights": "audio_vit.pretrained.weights",
    "audio_vit.pretrained_key_matching": "audio_vit.pretrained.key_matching",
    "audio_vit.pretrained_starts": "audio_vit.pretrained.starts",
    "audio_vit.convert_ast": "audio_vit.pretrained.convert_ast",
    "audio_vit.fsdd": "audio_vit.data.fsdd",
    "audio_vit.augmentation": "audio_vit.data.augmentation",
    "audio_vit.augmentation_config": "audio_vit.data.augmentation_config",
    "audio_vit.prepare_fingerprint": "audio_vit.data.prepare_fingerprint",
    "audio_vit.audio_io": "audio_vit.data.audio_decoding",
    "audio_vit.data.streaming": "audio_vit.data.iterable_dataset",
    "audio_vit.training.setup": "audio_vit.training.components",
    "audio_vit.training.evaluation": "audio_vit.training.eval_loop",
    "audio_vit.training.evaluation_task": "audio_vit.training.task_metrics",
    "audio_vit.training.multilabel_evaluation": "audio_vit.training.multilabel_metrics",
    "audio_vit.training.model_evaluation": "audio_vit.training.folder_evaluation",
    "audio_vit.evaluation": "audio_vit.comparison",
    **{f"audio_vit.evaluation.{name}": f"audio_vit.comparison.{name}"
       for name in ("arguments", "auto_route", "classic", "cnn", "compare", "cross_validate", "features", "folds",
                    "models", "processes", "report")},
}


class _Forwarding(ModuleType):
    """The old path of a moved module: every attribute read goes to the new module."""

    def __init__(self, name: str, target: str):
        super().__init__(name, f"Moved to {target}; this old path is removed in the next release.")
        self.__dict__["_target"] = target

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # the import system's own attributes (`__path__`, ...) are not forwarded: the
            raise AttributeError(attribute)  # new package's `__path__` would load its files a second time here
        return getattr(importlib.import_module(self.__dict__["_target"]), attribute)

    def __dir__(self):
        return dir(importlib.import_module(self.__dict__["_target"]))


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return _Forwarding(spec.name, self.target)

    def exec_module(self, module) -> None:
        warnings.warn(f"{module.__name__} moved to {self.target}; import it from there (the old path is removed in "
                      "the next release)", FutureWarning, stacklevel=2)
        importlib.import_module(self.target)  # an error in the new module shows now, under its own name


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        is_package = any(old.startswith(fullname + ".") for old in MOVED_MODULES)
        return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader(new), is_package=is_package)


def keep_moved_module_paths() -> None:
    """Let the old paths of `MOVED_MODULES` import (idempotent)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())  # after the real finders: a path that exists wins
