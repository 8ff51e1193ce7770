"""k-fold cross-validation of one model: folds, one training per (seed, fold), resume, report.

    context = prepare_folds(data_args, "out/cv", num_folds=5)          # writes out/cv/folds.csv (or reuses it)
    summary = cross_validate_model("vit", context, "out/cv", seeds=[42])  # out/cv/seed42/fold1/{model,result.json}

Layout of a run folder: `folds.csv` + `folds.json` (how the folds were made), one `seed<S>/fold<F>/result.json`
per finished run (a re-run skips those), the model folder of package-trained models in `seed<S>/fold<F>/model`,
and `cv_results.json`, `cv_results.md`, `confusion_matrix.png`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

from .folds import FOLDS_CSV_NAME, assign_folds, check_folds, read_folds_csv, sort_folds, write_folds_csv
from .models import RESULT_NAME, FoldContext, run_fold, run_settings
from .processes import is_main_process, wait_for_everyone
from .report import summarize_runs, write_cv_report, write_json

logger = logging.getLogger(__name__)

FOLDS_INFO_NAME = "folds.json"


def prepare_folds(data_args, output_dir, num_folds: Optional[int] = None, stratify: bool = True) -> FoldContext:
    """Build the manifest of `data_args`, assign folds and write `folds.csv`, or reuse the one already in
    `output_dir` when it was made from the same data and options (a different one is an error, not a silent
    redraw: finished runs were scored on the old folds)."""
    from ..data import build_manifest, resolve_data_dir
    from ..data.manifest import sort_labels

    output_dir = Path(output_dir)
    manifest = build_manifest(resolve_data_dir(data_args))
    info = {"source": manifest.source, "manifest_fingerprint": manifest.fingerprint, "num_folds": num_folds,
            "fold_column": data_args.fold_column, "group_column": data_args.group_column, "seed": data_args.seed,
            "stratify": stratify}
    folds_csv, info_file = output_dir / FOLDS_CSV_NAME, output_dir / FOLDS_INFO_NAME
    if info_file.is_file():
        saved = json.loads(info_file.read_text(encoding="utf-8"))
        saved.pop("folds", None)
        if saved != info:
            changed = {k: (saved.get(k), v) for k, v in info.items() if saved.get(k) != v}
            raise ValueError(f"{output_dir} holds folds made differently ({changed}, as (saved, now)); use another "
                             "--output-dir, or delete it to start over")
    elif is_main_process():
        # Label combinations of multi-label clips are too rare to stratify on: their folds are drawn at random.
        folds = assign_folds(manifest, num_folds, data_args.seed, stratify and not manifest.multi_label)
        check_folds(folds, manifest.groups)
        write_folds_csv(manifest, folds, folds_csv)
        write_json(info_file, {**info, "folds": {fold: folds.count(fold) for fold in sort_folds(folds)}})
    wait_for_everyone()
    table = read_folds_csv(folds_csv)
    # Multi-label: the folds CSV holds each clip's labels joined by ","; the label names are the single labels.
    label_names = list(manifest.label_names) if manifest.multi_label else sort_labels(table["label"])
    return FoldContext(folds_csv=folds_csv, label_names=label_names, has_groups=manifest.groups is not None,
                       multi_label=manifest.multi_label)


def fold_ids(context: FoldContext) -> list[str]:
    return sort_folds(read_folds_csv(context.folds_csv)["fold"])


def check_finished_runs(name: str, context: FoldContext, runs_dir) -> dict:
    """Raise if a finished run in `runs_dir` was made with other settings than this run's (other epochs, other
    train flags): mixing them would make a mean of different things. Returns this run's settings."""
    settings = run_settings(name, context)
    for result_file in sorted(Path(runs_dir).glob(f"seed*/fold*/{RESULT_NAME}")):
        saved = json.loads(result_file.read_text(encoding="utf-8")).get("settings", {})
        if saved != settings:
            raise ValueError(f"{result_file} was made with {saved}, this run asks for {settings}; use another "
                             f"--output-dir (or delete {runs_dir} to redo {name})")
    return settings


def cross_validate_model(name: str, context: FoldContext, runs_dir, seeds: Sequence[int] = (42,),
                         folds: Optional[Sequence[str]] = None, title: Optional[str] = None,
                         command: Optional[str] = None) -> dict:
    """Run model `name` on every (seed, fold) without a `result.json` yet, then summarise all of them and write
    the report into `runs_dir`. Returns the summary (see `report.summarize_runs`)."""
    runs_dir = Path(runs_dir)
    settings = check_finished_runs(name, context, runs_dir)
    all_folds = fold_ids(context)
    unknown = sorted(set(folds or ()) - set(all_folds))
    if unknown:
        raise ValueError(f"--folds {' '.join(unknown)}: not folds of {context.folds_csv} (folds: {', '.join(all_folds)})")
    folds = list(folds or all_folds)
    runs = []
    for seed in seeds:
        for fold in folds:
            run_dir = runs_dir / f"seed{seed}" / f"fold{fold}"
            result_file = run_dir / RESULT_NAME
            if result_file.is_file():
                logger.info("%s seed %s fold %s: finished earlier, skipped (%s)", name, seed, fold, result_file)
                result = json.loads(result_file.read_text(encoding="utf-8"))
            else:
                logger.info("%s seed %s fold %s: training", name, seed, fold)
                result = {"model": name, "seed": seed, "fold": fold, "settings": settings,
                          **run_fold(name, context, fold, seed, run_dir)}
                if not is_main_process():
                    return {}  # the main process records the run and writes the report
                run_dir.mkdir(parents=True, exist_ok=True)
                write_json(result_file, result)
            runs.append(result)
    summary = summarize_runs(runs, context.label_names)
    summary.update(model=name, folds_csv=str(context.folds_csv), seeds=list(seeds))
    if command:
        summary["command"] = command
    if is_main_process():
        write_cv_report(summary, runs_dir, title or f"Cross-validation: {name}")
    return summary
