r"""`audio-vit compare`: baselines and the package's model on the same folds, in one table and one plot.

    audio-vit compare --data-dir ../shared/data/fsdd --group-column speaker --num-folds 5 --quick \
        --output-dir outputs/compare_fsdd
    audio-vit compare --data-dir DIR --fold-column fold --models logreg svm cnn2d vit --output-dir OUT
    audio-vit compare --data-dir DIR --fold-column fold --models rf vit timm:tf_efficientnet_lite0 \
        timm:tf_efficientnet_lite0@lite0.pth vit-distilled:timm:tf_efficientnet_lite0@lite0.pth --output-dir OUT

Models: logreg, knn, gnb, svm, rf (scikit-learn on MFCC-40 + delta mean/std), cnn1d (raw waveform), cnn2d
(UrbanSound8K-tutorial CNN on log-mel), vit (`audio-vit train` with the data flags and any train flags given
here), vit-plain (the same with --recipe none: the recipe before data-derived defaults), timm:NAME (the
same training with a timm backbone), timm:NAME@WEIGHTS (the same from pretrained weights, with the transfer
recipe), vit-distilled:TEACHER (per fold the TEACHER, e.g. timm:NAME@WEIGHTS, trained on the fold's training
folds, then vit trained with --teacher on it: no test fold leaks), vit-pretrained:DIR (fine-tuned from an
`audio-vit pretrain` encoder folder) and vit-ssl-own (per fold `audio-vit pretrain` on the fold's training clips
only, then fine-tuned from that encoder; --pretraining-flags sets its pretraining options). Default: all of them with timm:mobilenetv2_100 and timm:resnet18, but
without svm and the timm models on more than 20,000 clips; --quick leaves out vit-plain and the timm models. Writes OUTPUT_DIR/compare_results.json,
compare_results.md and compare.png (accuracy and macro F1, mean ± std over folds), and one cross-validation
report per model in OUTPUT_DIR/models/<model>/. Re-running skips finished folds.
"""
from __future__ import annotations

import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    from ..comparison.arguments import (CompareArguments, configure_logging, forwarded_data_flags,
                                        parse_evaluation_args)

    argv = list(sys.argv[1:] if argv is None else argv)
    cv_args, data_args, compare_args, train_flags = parse_evaluation_args(
        argv, extra=(CompareArguments,), prog="audio-vit compare", description=__doc__)
    # imported after parsing, so that --help loads no torch
    from ..comparison.compare import compare_models
    from ..comparison.cross_validate import prepare_folds
    from ..comparison.folds import read_folds_csv
    from ..comparison.model_names import check_model_name, default_models, is_package_model
    from ..comparison.models import training_argv
    from ..training import parse_training_args
    for name in compare_args.models or ():
        check_model_name(name)
    cnn_epochs = compare_args.cnn_epochs
    if compare_args.quick:
        if compare_args.quick_epochs < 1:
            raise ValueError(f"--quick-epochs {compare_args.quick_epochs} must be at least 1")
        cnn_epochs = compare_args.quick_epochs
        train_flags = ["--num-train-epochs", str(compare_args.quick_epochs), *train_flags]
    configure_logging()
    context = prepare_folds(data_args, cv_args.output_dir, cv_args.num_folds, data_args.stratify)
    context.data_flags, context.train_flags = forwarded_data_flags(data_args), train_flags
    context.pretraining_flags = shlex.split(cv_args.pretraining_flags or "")
    context.cnn_epochs = cnn_epochs
    if context.multi_label:
        raise ValueError("compare's baselines (scikit-learn, the CNNs) are single-label and the data has several "
                         "labels per clip; use `audio-vit cross-validate` (mAP per fold) for multi-label data")
    models = compare_args.models or default_models(len(read_folds_csv(context.folds_csv)["fold"]), compare_args.quick)
    if any(is_package_model(name) for name in models):
        parse_training_args(training_argv("vit", context, "1", cv_args.seeds[0], context.folds_csv.parent / "check"))
    from ..comparison.processes import num_processes

    if num_processes() > 1:
        raise ValueError("compare runs in one process (its baselines are not distributed); use "
                         "`accelerate launch ... cross-validate` for a multi-process ViT cross-validation")
    if cv_args.folds:
        raise ValueError("--folds is a cross-validate option; compare always runs every fold")
    result = compare_models(models, context, cv_args.output_dir, cv_args.seeds,
                            command="audio-vit compare " + shlex.join(argv))
    for row in result["models"]:
        print(f"{row['model']:<40} accuracy {row['accuracy']['mean'] * 100:6.2f} ± {row['accuracy']['std'] * 100:5.2f} %"
              f"  macro F1 {row['macro_f1']['mean'] * 100:6.2f} %  train {row['train_seconds']['mean']:.1f} s/fold")
    for name, error in result["failures"].items():
        print(f"{name}: FAILED: {error}", file=sys.stderr)
    print(f"table: {cv_args.output_dir}/compare_results.md, plot: {cv_args.output_dir}/compare.png")
    return 1 if result["failures"] else 0
