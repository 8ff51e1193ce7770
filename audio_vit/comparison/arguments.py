"""Command-line arguments of `audio-vit cross-validate` and `audio-vit compare`.

Both take the data flags of `audio-vit train` (`--data-dir`, `--label-column`, `--fold-column`,
`--group-column`, ...), their own options below, and pass every other option on to the package's training
(`audio-vit train` flags such as `--num-train-epochs`, `--config`).
"""
from __future__ import annotations

import logging

from dataclasses import dataclass, field, fields
from typing import Optional

# DataArguments options that are about which clips form which split: cross-validation decides that itself.
SPLIT_OPTIONS = ("test_fold", "validation_fold", "split_strategy", "split_column", "test_fraction", "max_clips",
                 "streaming")
# DataArguments options about processing, handed on to the package's training of every fold.
FORWARDED_OPTIONS = ("cache_dir", "num_proc", "batch_size", "strict", "validation_fraction", "stratify", "max_clip_windows")


@dataclass
class CrossValidationArguments:
    output_dir: str = field(
        default="outputs/cross_validate",
        metadata={"help": "Run folder: folds.csv, one folder per seed/fold (model + result.json), cv_results.json/.md, "
                  "confusion_matrix.png. Re-running with the same folder skips finished folds."},
    )
    num_folds: Optional[int] = field(
        default=None,
        metadata={"help": "Make K stratified folds (group-disjoint with --group-column) instead of reading "
                  "--fold-column. Needed when the data has no fold column."},
    )
    folds: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Train only these folds (default: all); the report covers the finished ones."},
    )
    seeds: list[int] = field(
        default_factory=lambda: [42],
        metadata={"help": "Training seeds; the whole cross-validation is repeated once per seed on the same folds "
                  "(the folds come from --seed)."},
    )
    pretraining_flags: Optional[str] = field(
        default=None,
        metadata={"help": "`audio-vit pretrain` options of the vit-ssl-own model's pretraining on each fold's training "
                  "clips, as one string, e.g. '--num-train-epochs 50 --mask-pattern span' (default: its defaults)."},
    )


@dataclass
class CrossValidateModelArguments:
    model: str = field(
        default="vit-auto",
        metadata={"help": "The package model to cross-validate: vit-auto (default: what `audio-vit train` does, the "
                  "route chosen per fold on its validation split, named in each fold's result), vit (the scratch "
                  "ViT), vit-plain, timm:NAME, timm:NAME@WEIGHTS "
                  "(pretrained start, transfer recipe), vit-distilled:TEACHER (per fold the TEACHER is trained on "
                  "the fold's training folds first, in seed<S>/fold<F>/teacher, then vit with --teacher on it), "
                  "vit-pretrained:DIR (fine-tuned from an `audio-vit pretrain` encoder folder) or vit-ssl-own (per "
                  "fold pretrained without labels on the fold's training clips only, in seed<S>/fold<F>/pretrained, "
                  "then fine-tuned)."},
    )


@dataclass
class CompareArguments:
    models: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Models to compare: logreg knn gnb svm rf cnn1d cnn2d vit vit-auto vit-plain timm:NAME (vit: "
                  "the scratch ViT; vit-auto: the default route choice, reusing the vit and pretrained rows' fold runs "
                  "as its candidates when they are in the same comparison; vit-plain: "
                  "the package's training with --recipe none, the recipe before data-derived defaults), "
                  "timm:NAME@WEIGHTS (from pretrained weights: a file, folder, cached Hub repo or timm tag; transfer "
                  "recipe), vit-distilled:TEACHER (vit trained with --teacher on TEACHER's model of the same fold, "
                  "e.g. vit-distilled:timm:tf_efficientnet_lite0@lite0.pth), vit-pretrained:DIR (fine-tuned from an "
                  "`audio-vit pretrain` encoder folder), vit-ssl-own (per fold pretrained without labels on the "
                  "fold's training clips only, then fine-tuned; see --pretraining-flags). Default: all "
                  "of them with timm:mobilenetv2_100 and timm:resnet18; without vit-plain and the timm models under "
                  "--quick; without svm and the timm models on more than 20,000 clips."},
    )
    quick: bool = field(
        default=False,
        metadata={"help": "Quick preset: no timm models, and the CNNs and the package's training get "
                  "--quick-epochs epochs (the rest of the package's default recipe is kept)."},
    )
    quick_epochs: int = field(
        default=5,
        metadata={"help": "Epochs of the neural models under --quick (the wall time on FSDD is in BENCHMARKS.md)."},
    )
    cnn_epochs: int = field(default=30, metadata={"help": "Training epochs of the cnn1d / cnn2d baselines."})


TRAIN_FLAGS_EPILOG = ("Any other option is an `audio-vit train` option (see `audio-vit train --help`), given to the "
                      "package's training of every fold, e.g. --config recipe.yaml or --num-train-epochs 20.")


def parse_evaluation_args(argv: list[str], extra=(), prog: str = "audio-vit cross-validate", description: str = ""):
    """(CrossValidationArguments, DataArguments, *extra dataclasses, train_flags) from `argv`.

    Options no dataclass knows are the training flags; they are checked by the training parser right away,
    so a typo fails before hours of folds, not after.
    """
    import argparse

    from ..argparsing import DataclassArgumentParser  # no transformers: --help answers at once
    from ..data.arguments import DataArguments

    parser = DataclassArgumentParser((CrossValidationArguments, DataArguments, *extra), prog=prog,
                                     description=description, epilog=TRAIN_FLAGS_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    namespace, train_flags = parser.parse_known_args(argv)
    parsed = list(parser.dataclasses_from_namespace(namespace))
    cv_args, data_args = parsed[0], parsed[1]
    defaults = DataArguments()
    given = [name for name in SPLIT_OPTIONS if getattr(data_args, name) != getattr(defaults, name)]
    if given:
        raise ValueError(f"{', '.join('--' + n.replace('_', '-') for n in given)}: cross-validation makes the splits "
                         "itself (test = one fold, validation carved from the others); use --fold-column or "
                         "--num-folds [--group-column] instead")
    if cv_args.num_folds is None and not data_args.fold_column:
        raise ValueError("say where the folds come from: --fold-column NAME (e.g. fold) or --num-folds K "
                         "(with --group-column NAME for group-disjoint folds, e.g. speaker)")
    if cv_args.num_folds is not None and data_args.fold_column:
        raise ValueError(f"--num-folds {cv_args.num_folds} and --fold-column {data_args.fold_column}: choose one")
    if not cv_args.seeds:
        raise ValueError("--seeds needs at least one seed")
    return (*parsed, train_flags)


def forwarded_data_flags(data_args) -> list[str]:
    """Processing options the user set, as `audio-vit train` flags, plus the column names of the folds CSV
    (so that a --config recipe's own column or split settings cannot point the training elsewhere)."""
    from ..data.arguments import DataArguments

    defaults = DataArguments()
    flags = ["--audio-column", "file_name", "--label-column", "label", "--split-column", "",
             "--audio-subdir-template", ""]
    names = {f.name for f in fields(DataArguments)}
    for name in FORWARDED_OPTIONS:
        assert name in names, f"DataArguments has no field {name!r}"
        value = getattr(data_args, name)
        if value != getattr(defaults, name):
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


def configure_logging() -> None:
    """INFO lines of the comparison commands, without the chatter of the libraries under them."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "evaluate", "httpx", "urllib3", "matplotlib", "accelerate.checkpointing",
                  "accelerate.accelerator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
