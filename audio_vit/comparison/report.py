"""Cross-validation arithmetic and the files people read: JSON, markdown tables, PNG plots.

    runs = [{"fold": "1", "seed": 42, "confusion_matrix": [[...]], "train_seconds": 12.3}, ...]
    summary = summarize_runs(runs, label_names)   # per-run and mean/std accuracy and macro F1, per-class table
    write_cv_report(summary, "out/")              # cv_results.json, cv_results.md, confusion_matrix.png

Every single-label figure is computed from confusion matrices (rows: true class, columns: predicted class), so a
model that only reports predictions and one that reports a matrix are scored the same way. Multi-label runs (several
labels per clip) carry their test mAP, micro-AP and micro/macro-F1 instead, and are summarised as mean ± std of
those, with the per-label AP / precision / recall / F1 averaged over the runs. Macro F1 follows scikit-learn's
`f1_score(average="macro", labels=all, zero_division=0)`: a class without clips or predictions in a fold scores 0.
Standard deviations are over runs (folds x seeds) with ddof=1 (0 for a single run).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..classification_report import mean_std, per_class_scores, plot_confusion_matrix

# What a multi-label run reports (the test scores of the package's multi-label evaluation).
MULTI_LABEL_SCORES = ("mAP", "micro_AP", "micro_f1", "macro_f1")


def confusion_from_predictions(references: Sequence[int], predictions: Sequence[int], num_labels: int) -> np.ndarray:
    """(num_labels, num_labels) int matrix: entry [t, p] counts clips of class t predicted as p."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(references, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def accuracy_and_macro_f1(matrix) -> tuple[float, float]:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.sum() == 0:
        raise ValueError("an empty confusion matrix (no test clips) has no accuracy")
    rows = per_class_scores(matrix, [str(i) for i in range(len(matrix))])
    return float(np.trace(matrix) / matrix.sum()), float(np.mean([row["f1"] for row in rows]))


def summarize_runs(runs: list[dict], label_names: list[str]) -> dict:
    """Per-run accuracy / macro F1, their mean and std, and per-class scores of the pooled confusion matrix.

    Each run needs `confusion_matrix`; `fold`, `seed`, `train_seconds` and other keys are carried through.
    """
    if not runs:
        raise ValueError("no finished runs to summarise")
    if "confusion_matrix" not in runs[0]:
        return summarize_multilabel_runs(runs, label_names)
    num_labels = len(label_names)
    pooled = np.zeros((num_labels, num_labels), dtype=np.int64)
    table = []
    for run in runs:
        matrix = np.asarray(run["confusion_matrix"], dtype=np.int64)
        if matrix.shape != (num_labels, num_labels):
            raise ValueError(f"run {run.get('fold')!r}: confusion matrix of shape {matrix.shape}, expected "
                             f"({num_labels}, {num_labels}) for labels {label_names}")
        accuracy, macro_f1 = accuracy_and_macro_f1(matrix)
        table.append({**{k: v for k, v in run.items() if k != "confusion_matrix"},
                      "accuracy": accuracy, "macro_f1": macro_f1, "num_test_clips": int(matrix.sum())})
        pooled += matrix
    summary = {
        "labels": list(label_names),
        "runs": table,
        "accuracy": mean_std([r["accuracy"] for r in table]),
        "macro_f1": mean_std([r["macro_f1"] for r in table]),
        "pooled_accuracy": accuracy_and_macro_f1(pooled)[0],
        "per_class": per_class_scores(pooled, label_names),
        "confusion_matrix": pooled.tolist(),
    }
    seconds = [r["train_seconds"] for r in table if r.get("train_seconds") is not None]
    if seconds:
        summary["train_seconds"] = mean_std(seconds)
    return summary


def summarize_multilabel_runs(runs: list[dict], label_names: list[str]) -> dict:
    """Multi-label runs: mean ± std of each run's mAP, micro-AP and micro/macro-F1, and the per-label rows averaged
    over the runs (a label's AP over the runs where it had a positive clip)."""
    missing = [run.get("fold") for run in runs if any(key not in run for key in MULTI_LABEL_SCORES)]
    if missing:
        raise ValueError(f"runs {missing} have neither a confusion matrix nor the multi-label scores {MULTI_LABEL_SCORES}")
    table = [{k: v for k, v in run.items() if k != "per_class"} for run in runs]
    per_class = []
    for j, label in enumerate(label_names):
        rows = [run["per_class"][j] for run in runs if run.get("per_class")]
        precisions = [row["average_precision"] for row in rows if row["average_precision"] is not None]
        per_class.append({
            "label": str(label), "average_precision": float(np.mean(precisions)) if precisions else None,
            **{key: float(np.mean([row[key] for row in rows])) if rows else None for key in ("precision", "recall", "f1")},
            "support": int(sum(row["support"] for row in rows)),
        })
    summary = {"labels": list(label_names), "multi_label": True, "runs": table,
               **{key: mean_std([run[key] for run in table]) for key in MULTI_LABEL_SCORES}, "per_class": per_class}
    seconds = [r["train_seconds"] for r in table if r.get("train_seconds") is not None]
    if seconds:
        summary["train_seconds"] = mean_std(seconds)
    return summary


def _pm(stats: dict, scale: float = 100.0, digits: int = 2) -> str:
    return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"


def cv_markdown(summary: dict, title: str = "Cross-validation") -> str:
    """Per-run table, mean ± std, per-class table of a `summarize_runs` result."""
    lines = [f"# {title}", ""]
    if summary.get("command"):
        lines += ["```", summary["command"], "```", ""]
    if summary.get("multi_label"):
        return "\n".join(lines + _multilabel_lines(summary)) + "\n"
    routes = any(run.get("route") for run in summary["runs"])  # vit-auto: the route each fold chose
    lines += ["| fold | seed | test clips | accuracy (%) | macro F1 (%) | train s |" + (" route |" if routes else ""),
              "|---|---|---|---|---|---|" + ("---|" if routes else "")]
    for run in summary["runs"]:
        seconds = run.get("train_seconds")
        lines.append(f"| {run.get('fold', '')} | {run.get('seed', '')} | {run['num_test_clips']} | "
                     f"{run['accuracy'] * 100:.2f} | {run['macro_f1'] * 100:.2f} | "
                     f"{'' if seconds is None else f'{seconds:.1f}'} |" + (f" {run.get('route', '')} |" if routes else ""))
    lines += ["", f"**Accuracy: {_pm(summary['accuracy'])} %** (mean ± std over {len(summary['runs'])} runs); "
              f"macro F1: {_pm(summary['macro_f1'])} %; pooled accuracy: {summary['pooled_accuracy'] * 100:.2f} %."]
    if "train_seconds" in summary:
        lines.append(f"Seconds per fold: {_pm(summary['train_seconds'], 1.0, 1)}.")
    lines += ["", "Per class, over all folds (pooled confusion matrix):", "",
              "| class | precision (%) | recall (%) | F1 (%) | clips |", "|---|---|---|---|---|"]
    for row in summary["per_class"]:
        lines.append(f"| {row['label']} | {row['precision'] * 100:.2f} | {row['recall'] * 100:.2f} | "
                     f"{row['f1'] * 100:.2f} | {row['support']} |")
    return "\n".join(lines) + "\n"


def _multilabel_lines(summary: dict) -> list[str]:
    lines = ["| fold | seed | test clips | mAP (%) | micro-AP (%) | micro F1 (%) | macro F1 (%) | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for run in summary["runs"]:
        seconds = run.get("train_seconds")
        lines.append(f"| {run.get('fold', '')} | {run.get('seed', '')} | {run.get('num_test_clips', '')} | "
                     + " | ".join(f"{run[key] * 100:.2f}" for key in MULTI_LABEL_SCORES)
                     + f" | {'' if seconds is None else f'{seconds:.1f}'} |")
    lines += ["", f"**mAP: {_pm(summary['mAP'])} %** (mean ± std over {len(summary['runs'])} runs); micro-AP: "
              f"{_pm(summary['micro_AP'])} %; micro F1: {_pm(summary['micro_f1'])} %; macro F1: "
              f"{_pm(summary['macro_f1'])} %."]
    if "train_seconds" in summary:
        lines.append(f"Seconds per fold: {_pm(summary['train_seconds'], 1.0, 1)}.")
    lines += ["", "Per label, averaged over the runs (F1 etc. at each run's decision threshold):", "",
              "| label | AP (%) | precision (%) | recall (%) | F1 (%) | positive clips |", "|---|---|---|---|---|---|"]
    for row in summary["per_class"]:
        cells = [row["average_precision"], row["precision"], row["recall"], row["f1"]]
        lines.append(f"| {row['label']} | " + " | ".join("-" if v is None else f"{v * 100:.2f}" for v in cells)
                     + f" | {row['support']} |")
    return lines


def write_json(path, data) -> Path:
    """Write `data` as indented JSON through a temporary file (a crash never leaves half a file)."""
    path = Path(path)
    staging = path.with_suffix(path.suffix + ".tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    staging.replace(path)
    return path


def write_cv_report(summary: dict, output_dir, title: str = "Cross-validation") -> dict[str, Path]:
    """cv_results.json, cv_results.md and (single-label) confusion_matrix.png in `output_dir`."""
    output_dir = Path(output_dir)
    written = {
        "json": write_json(output_dir / "cv_results.json", summary),
        "markdown": _write_text(output_dir / "cv_results.md", cv_markdown(summary, title)),
    }
    if "confusion_matrix" in summary:  # single-label; multi-label clips have no one predicted class
        written["confusion_matrix"] = plot_confusion_matrix(summary["confusion_matrix"], summary["labels"],
                                                            output_dir / "confusion_matrix.png",
                                                            title=f"{title}: pooled confusion matrix")
    return written


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def compare_markdown(rows: list[dict], title: str = "Model comparison") -> str:
    """One line per model: accuracy and macro F1 mean ± std, train seconds, parameters, inference clips/s."""
    lines = [f"# {title}", "", "| model | accuracy (%) | macro F1 (%) | train s / fold | parameters | "
             "inference clips/s | description |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        params = row.get("parameters")
        speed = row.get("inference_clips_per_second")
        lines.append(
            f"| {row['model']} | {_pm(row['accuracy'])} | {_pm(row['macro_f1'])} | "
            f"{row['train_seconds']['mean']:.1f} | {'' if params is None else f'{params:,}'} | "
            f"{'' if speed is None or not math.isfinite(speed) else f'{speed:,.0f}'} | {row.get('description', '')}"
            + (f" Routes chosen per run: {', '.join(map(str, row['routes']))}." if row.get("routes") else "") + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(rows: list[dict], path, title: str = "Model comparison") -> Path:
    """Bar chart of accuracy and macro F1 (mean, error bars: std over folds) per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["model"] for row in rows]
    x = np.arange(len(names))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4.5))
    for offset, key, label in ((-width / 2, "accuracy", "accuracy"), (width / 2, "macro_f1", "macro F1")):
        means = [row[key]["mean"] * 100 for row in rows]
        stds = [row[key]["std"] * 100 for row in rows]
        ax.bar(x + offset, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(x, labels=names, rotation=30, ha="right")
    ax.set_ylabel("% (mean ± std over folds)")
    ax.set_ylim(0, 115)  # headroom for the legend above 100 %
    ax.set_title(title)
    ax.legend(loc="upper center", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
