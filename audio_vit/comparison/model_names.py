"""The model names `compare` and `cross-validate` take, what each means, and the default lists.

Model names:
- `logreg`, `knn`, `gnb`, `svm`, `rf`: scikit-learn on MFCC-40 + delta statistics (`classic.py`);
- `cnn1d`, `cnn2d`: the raw-waveform 1-D CNN and the UrbanSound8K-tutorial 2-D CNN (`cnn.py`);
- `vit`: the package's ViT from scratch with the data-derived recipe (`audio-vit train --route scratch` with only
  data flags, plus any train flags given);
- `vit-auto`: the package's default, `audio-vit train` with only data flags (`--route auto`): per fold, the scratch
  ViT and the pretrained start are trained and the one with the better validation score is kept and tested; the
  fold result says which (`route`) and why. When the same comparison runs the candidates as rows (`vit` and
  `timm:tf_efficientnet_lite0@WEIGHTS` with the start's weights), their fold runs are reused as the candidates;
- `vit-plain`: `vit` with `--recipe none`, the plain defaults the package had before its options were derived
  from the data;
- `timm:NAME` (e.g. `timm:resnet18`, `timm:mobilenetv2_100`): the same training with `--backbone timm
  --timm-model-name NAME` (weights from scratch: the Hub is not reached offline);
- `timm:NAME@SOURCE` (e.g. `timm:tf_efficientnet_lite0@/path/lite0.pth`): the same, started from pretrained weights
  (`--pretrained-backbone SOURCE`: a weight file or folder, a cached Hub repo or a timm tag), so the transfer recipe
  applies; beside its from-scratch twin `timm:NAME` it shows what the pretrained start is worth;
- `vit-distilled:TEACHER` (e.g. `vit-distilled:timm:tf_efficientnet_lite0@/path/lite0.pth`): per fold, the
  package model TEACHER is trained first (or its finished fold reused, from the same comparison or an earlier run in
  the same folder), on the same training folds, so it never sees the fold's test clips; then `vit` is trained with
  `--teacher` set to that fold's teacher;
- `vit-pretrained:DIR`: the ViT fine-tuned from the pretrained encoder folder DIR (`audio-vit pretrain`'s, or any
  model folder: `--model-name-or-path DIR`), with the transfer recipe;
- `vit-ssl-own`: per fold, the ViT pretrained without labels (`audio-vit pretrain`, masked spectrogram modeling) on
  that fold's training clips only, exactly the clips its fine-tuning trains on (`fold_training_files`: never a
  validation or test clip), then fine-tuned from that encoder as `vit-pretrained:` is; its time is pretraining plus
  fine-tuning (`pretrain_seconds` says how much was pretraining).
"""
from __future__ import annotations

from pathlib import Path

from .classic import CLASSIC_MODELS
from .classic import DESCRIPTIONS as CLASSIC_DESCRIPTIONS
from .cnn import CNN_MODELS
from .cnn import DESCRIPTIONS as CNN_DESCRIPTIONS

# The package's own training (plus timm:NAME): the `audio-vit train` flags each model adds.
AUTO_MODEL = "vit-auto"  # the package's default: the route chosen on validation (`--route auto`)
PACKAGE_MODELS = {"vit": ["--route", "scratch"], AUTO_MODEL: [], "vit-plain": ["--recipe", "none"]}
DEFAULT_MODELS = (*CLASSIC_MODELS, *CNN_MODELS, *PACKAGE_MODELS, "timm:mobilenetv2_100", "timm:resnet18")
QUICK_MODELS = (*CLASSIC_MODELS, *CNN_MODELS, "vit")
# Above this many clips the default list leaves out the models whose cost grows fastest: the timm CNNs and the
# route choice that trains one (hours per fold on a CPU) and the RBF SVM (kernel matrix quadratic in the clips);
# --models still runs them.
LARGE_DATASET_CLIPS = 20_000
SLOW_ON_LARGE_DATASETS = ("svm", "vit-auto", "timm:mobilenetv2_100", "timm:resnet18")


def default_models(num_clips: int, quick: bool = False) -> list[str]:
    """The models `compare` runs when --models is not given (see QUICK_MODELS, LARGE_DATASET_CLIPS)."""
    models = list(QUICK_MODELS if quick else DEFAULT_MODELS)
    if num_clips > LARGE_DATASET_CLIPS:
        models = [name for name in models if name not in SLOW_ON_LARGE_DATASETS]
    return models


DISTILLED_PREFIX = "vit-distilled:"
PRETRAINED_PREFIX = "vit-pretrained:"
SSL_OWN_MODEL = "vit-ssl-own"


def is_package_model(name: str) -> bool:
    """Whether `name` is trained by the package's own training (vit, vit-plain, timm:NAME[@SOURCE], vit-distilled:...,
    vit-pretrained:DIR, vit-ssl-own)."""
    return name in PACKAGE_MODELS or name == SSL_OWN_MODEL or name.startswith(("timm:", DISTILLED_PREFIX,
                                                                               PRETRAINED_PREFIX))


def pretrained_dir_of(name: str) -> str | None:
    """The encoder folder of `vit-pretrained:DIR`, else None."""
    return name[len(PRETRAINED_PREFIX):] if name.startswith(PRETRAINED_PREFIX) else None


def split_timm_name(name: str) -> tuple[str, str | None]:
    """`timm:NAME[@SOURCE]` -> (NAME, SOURCE or None)."""
    architecture, _, source = name[len("timm:"):].partition("@")
    return architecture, source or None


def teacher_of(name: str) -> str | None:
    """The teacher model name of `vit-distilled:TEACHER`, else None."""
    return name[len(DISTILLED_PREFIX):] if name.startswith(DISTILLED_PREFIX) else None


def display_name(name: str) -> str:
    """The name shown in tables and used for run folders: a pretrained source path shortened to its file name."""
    teacher = teacher_of(name)
    if teacher is not None:
        return DISTILLED_PREFIX + display_name(teacher)
    if name.startswith("timm:"):
        architecture, source = split_timm_name(name)
        return f"timm:{architecture}" + (f"@{Path(source).name or source}" if source else "")
    if pretrained_dir_of(name) is not None:
        return PRETRAINED_PREFIX + (Path(pretrained_dir_of(name)).name or pretrained_dir_of(name))
    return name


def model_folder_name(name: str) -> str:
    return display_name(name).replace(":", "_").replace("/", "_")


def check_model_name(name: str) -> str:
    if name in CLASSIC_MODELS or name in CNN_MODELS or name in PACKAGE_MODELS or name == SSL_OWN_MODEL:
        return name
    if pretrained_dir_of(name):
        return name
    if name.startswith("timm:") and split_timm_name(name)[0] and not name.endswith("@"):
        return name
    teacher = teacher_of(name)
    if teacher is not None and is_package_model(teacher) and teacher_of(teacher) is None:
        return check_model_name(teacher) and name
    raise ValueError(f"unknown model {name!r}; choose from {', '.join((*CLASSIC_MODELS, *CNN_MODELS, *PACKAGE_MODELS))}, "
                     f"{SSL_OWN_MODEL}, timm:NAME (e.g. timm:resnet18), timm:NAME@WEIGHTS (a pretrained start), "
                     "vit-distilled:TEACHER (TEACHER one of vit, vit-plain, timm:NAME[@WEIGHTS]) or vit-pretrained:DIR "
                     "(an `audio-vit pretrain` encoder folder)")


def describe(name: str) -> str:
    if name in CLASSIC_DESCRIPTIONS:
        return CLASSIC_DESCRIPTIONS[name]
    if name in CNN_DESCRIPTIONS:
        return CNN_DESCRIPTIONS[name]
    if name == "vit":
        return "audio_vit's ViT trained from scratch with the data-derived recipe (`audio-vit train --route scratch`)"
    if name == "vit-auto":
        return ("audio_vit's default (`audio-vit train` + data flags): the route chosen on the fold's validation split "
                "among the scratch ViT and the pretrained start (--route auto)")
    if name == "vit-plain":
        return "audio_vit with the plain defaults (`--recipe none`: the recipe before data-derived defaults)"
    teacher = teacher_of(name)
    if teacher is not None:
        return f"the default ViT distilled from a {display_name(teacher)} teacher trained on the same folds (--teacher)"
    if pretrained_dir_of(name) is not None:
        return (f"audio_vit's ViT fine-tuned from the pretrained encoder {Path(pretrained_dir_of(name)).name} "
                "(--model-name-or-path, transfer recipe)")
    if name == SSL_OWN_MODEL:
        return ("audio_vit's ViT pretrained without labels on the fold's own training clips (`audio-vit pretrain`, "
                "masked spectrogram modeling), then fine-tuned on them")
    architecture, source = split_timm_name(name)
    if source:
        return f"audio_vit training with the timm backbone {architecture} from pretrained weights {Path(source).name} " \
               "(transfer recipe)"
    return f"audio_vit training with the timm backbone {architecture} (from scratch)"
