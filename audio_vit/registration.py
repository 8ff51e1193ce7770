"""Hooks audio_vit into transformers: Auto classes and `trust_remote_code` checkpoints.

The audio pipeline is not patched process-wide: `audio_vit.audio_classification_pipeline` (or
`pipeline_class=AudioViTAudioClassificationPipeline`) asks for ours per pipeline.

`import audio_vit` must stay cheap (the `audio-vit` command line answers `--help` without torch or
transformers), yet leave the Auto classes knowing `model_type="audio_vit"`. So registration happens when
transformers' own Auto modules are loaded: `register_on_import()` registers with the ones already imported
and asks the import system to register with each of the others right after it finishes loading. The classes
carry `_auto_class` themselves, so `save_pretrained` writes `auto_map` (and copies the code) either way.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys

logger = logging.getLogger(__name__)

def _register_config() -> None:
    from transformers import AutoConfig

    from .models.audio_vit.configuration_audio_vit import AudioViTConfig

    AutoConfig.register(AudioViTConfig.model_type, AudioViTConfig, exist_ok=True)


def _register_feature_extractor() -> None:
    from transformers import AutoFeatureExtractor

    from .models.audio_vit.configuration_audio_vit import AudioViTConfig
    from .models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

    AutoFeatureExtractor.register(AudioViTConfig, AudioViTFeatureExtractor, exist_ok=True)


def _register_models() -> None:
    from transformers import AutoModel, AutoModelForAudioClassification

    from .models.audio_vit.configuration_audio_vit import AudioViTConfig
    from .models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification, AudioViTModel

    AutoModel.register(AudioViTConfig, AudioViTModel, exist_ok=True)
    AutoModelForAudioClassification.register(AudioViTConfig, AudioViTForAudioClassification, exist_ok=True)


# transformers module -> what to register once it is loaded. Each step imports only what it registers, and
# runs after the module has finished loading (transformers.modeling_utils imports configuration_auto while it
# is itself half loaded: registering models at that point would import it again).
REGISTRATIONS = {
    "transformers.models.auto.configuration_auto": _register_config,
    "transformers.models.auto.feature_extraction_auto": _register_feature_extractor,
    "transformers.models.auto.modeling_auto": _register_models,
}


def register_auto_classes() -> None:
    """Register the AudioViT classes with the Auto classes now (idempotent; imports torch)."""
    for register in REGISTRATIONS.values():
        register()


class _LoaderThenRegister(importlib.abc.Loader):
    """Runs the real loader, then the registration step; everything else is the real loader's."""

    def __init__(self, loader, register):
        self._loader = loader
        self._register = register

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            self._register()
        except Exception as err:  # a failed registration must not break the user's transformers import
            logger.warning("audio_vit could not register with %s: %s: %s", module.__name__, type(err).__name__, err)

    def __getattr__(self, name):  # get_source, get_filename, is_package, ... for inspect and importlib.resources
        return getattr(self._loader, name)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands out the real spec of a watched module with a registering loader."""

    def __init__(self):
        self.pending = {}

    def find_spec(self, fullname, path=None, target=None):
        register = self.pending.pop(fullname, None)
        if register is None:
            return None
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)  # the other finders (this one no longer watches fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderThenRegister(spec.loader, register)
        return spec


_FINDER = _RegisterAfterImport()


def register_on_import() -> None:
    """Register with the transformers Auto modules already loaded now, and with the others when they load."""
    for module_name, register in REGISTRATIONS.items():
        if module_name in sys.modules:
            register()
        else:
            _FINDER.pending[module_name] = register
    if _FINDER.pending and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
