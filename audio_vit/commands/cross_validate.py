r"""`audio-vit cross-validate`: k-fold cross-validation of the package's training, with a report.

    audio-vit cross-validate --data-dir ../shared/data/fsdd --group-column speaker --num-folds 5 \
        --output-dir outputs/cv_fsdd
    audio-vit cross-validate --data-dir UrbanSound8K --metadata-file metadata/UrbanSound8K.csv \
        --audio-subdir-template 'audio/fold{fold}' --label-column class --fold-column fold \
        --output-dir outputs/cv_us8k --config recipe.yaml --seeds 1 2 3

Every fold trains what `audio-vit train` would with the same flags (test: the fold; validation: carved from the
other folds, group-disjoint with --group-column), keeps the model in OUTPUT_DIR/seed<S>/fold<F>/model and
writes OUTPUT_DIR/cv_results.json, cv_results.md (per fold, mean ± std, per class) and confusion_matrix.png
(pooled over folds). A re-run with the same --output-dir skips finished folds and resumes an interrupted one
from its last checkpoint. It runs under `accelerate launch` with several processes too:
    accelerate launch --multi_gpu --num_processes 2 -m audio_vit.cli cross-validate ...
By default (--model vit-auto) each fold chooses its route on its validation split as `audio-vit train` does (the
scratch ViT or the pretrained start; cv_results.md names the route of every fold). --model picks another package
model (vit: the scratch ViT alone, timm:NAME, timm:NAME@WEIGHTS for a pretrained start, vit-distilled:TEACHER: per
fold the teacher first, on the same training folds, then the ViT distilled from it; vit-pretrained:DIR: fine-tuned
from an `audio-vit pretrain` encoder; vit-ssl-own: per fold pretrained without labels on the fold's training clips
only, then fine-tuned).
"""
from __future__ import annotations

import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    from ..comparison.arguments import (CrossValidateModelArguments, configure_logging, forwarded_data_flags,
                                        parse_evaluation_args)

    argv = list(sys.argv[1:] if argv is None else argv)
    cv_args, data_args, model_args, train_flags = parse_evaluation_args(
        argv, extra=(CrossValidateModelArguments,), prog="audio-vit cross-validate", description=__doc__)
    # imported after parsing, so that --help loads no torch
    from ..comparison.cross_validate import cross_validate_model, prepare_folds
    from ..comparison.model_names import check_model_name, display_name, is_package_model
    from ..comparison.models import training_argv
    from ..training import parse_training_args
    if not is_package_model(check_model_name(model_args.model)):
        raise ValueError(f"--model {model_args.model}: cross-validate runs the package's training (vit-auto, vit, vit-plain, "
                         "timm:NAME[@WEIGHTS], vit-distilled:TEACHER, vit-pretrained:DIR, vit-ssl-own); compare runs "
                         "the baselines")
    configure_logging()
    context = prepare_folds(data_args, cv_args.output_dir, cv_args.num_folds, data_args.stratify)
    context.data_flags, context.train_flags = forwarded_data_flags(data_args), train_flags
    context.pretraining_flags = shlex.split(cv_args.pretraining_flags or "")
    parse_training_args(training_argv("vit", context, "1", cv_args.seeds[0], context.folds_csv.parent / "check"))
    title = "audio_vit" if model_args.model == "vit-auto" else display_name(model_args.model)
    summary = cross_validate_model(model_args.model, context, cv_args.output_dir, cv_args.seeds, folds=cv_args.folds,
                                   title=f"Cross-validation: {title}",
                                   command="audio-vit cross-validate " + shlex.join(argv))
    if not summary:  # a non-main process under accelerate launch
        return 0
    headline = "mAP" if summary.get("multi_label") else "accuracy"
    print(f"{headline} {summary[headline]['mean'] * 100:.2f} ± {summary[headline]['std'] * 100:.2f} %, "
          f"macro F1 {summary['macro_f1']['mean'] * 100:.2f} ± {summary['macro_f1']['std'] * 100:.2f} % over "
          f"{len(summary['runs'])} runs; report: {cv_args.output_dir}/cv_results.md")
    return 0
