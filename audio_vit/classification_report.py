"""Per-class reports people read: precision / recall / F1 / support per class as JSON + a markdown table, and
the confusion matrix as a PNG.

    rows = per_class_scores(results["confusion_matrix"], results["labels"])        # single-label
    rows = multilabel_per_class_scores(scores, references, labels, threshold=0.5)  # multi-label (adds AP)
    write_classification_report("out/eval", rows, confusion_matrix=..., labels=..., title="test split")

One writer for every command that reports a split (`audio-vit evaluate`, cross-validation, comparisons), so
the tables and images look the same everywhere.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

PER_CLASS_JSON = "per_class.json"
PER_CLASS_MARKDOWN = "per_class.md"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"


def _ratio(numerator: float, denominator: float) -> float:
    # scikit-learn's zero_division=0 convention: an empty denominator scores 0, not nan.
    return float(numerator / denominator) if denominator > 0 else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def per_class_scores(confusion_matrix: Sequence[Sequence[float]], labels: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support of every class from a confusion matrix (rows: true, columns: predicted).

    Args:
        confusion_matrix (`(n, n)` counts): e.g. `results["confusion_matrix"]`; may be a sum over folds.
        labels (`list[str]`, length n): class names in id order.
    Returns:
        one dict per class, in id order: `label`, `precision`, `recall`, `f1`, `support` (true clips).
    """
    matrix = np.asarray(confusion_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square (n, n); got shape {matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"{len(labels)} labels given for a {matrix.shape[0]}x{matrix.shape[1]} confusion matrix")
    true_positives = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    rows = []
    for i, label in enumerate(labels):
        precision = _ratio(true_positives[i], predicted[i])
        recall = _ratio(true_positives[i], actual[i])
        rows.append({"label": str(label), "precision": precision, "recall": recall, "f1": _f1(precision, recall),
                     "support": int(round(actual[i]))})
    return rows


def multilabel_per_class_scores(scores, references, labels: Sequence[str], threshold: float = 0.5) -> list[dict]:
    """Per-label average precision, and precision / recall / F1 of the decision `score >= threshold`.

    Args:
        scores (`(n, L)` floats): per-label probabilities (sigmoid outputs).
        references (`(n, L)` 0/1): multi-hot ground truth.
        labels (`list[str]`, length L): label names in id order.
        threshold (`float`, defaults to 0.5): decision threshold on `scores`.
    Returns:
        one dict per label: `label`, `average_precision` (None for a label with no positive clip), `precision`,
        `recall`, `f1`, `support` (positive clips).
    """
    from sklearn.metrics import average_precision_score

    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(references, dtype=np.int64)
    if scores.ndim != 2 or scores.shape != targets.shape or scores.shape[1] != len(labels):
        raise ValueError(f"scores {scores.shape} and references {targets.shape} must both be (clips, {len(labels)} labels)")
    decisions = scores >= threshold
    rows = []
    for j, label in enumerate(labels):
        positive = targets[:, j] == 1
        true_positives = float((decisions[:, j] & positive).sum())
        precision = _ratio(true_positives, decisions[:, j].sum())
        recall = _ratio(true_positives, positive.sum())
        ap = float(average_precision_score(positive, scores[:, j])) if positive.any() else None
        rows.append({"label": str(label), "average_precision": ap, "precision": precision, "recall": recall,
                     "f1": _f1(precision, recall), "support": int(positive.sum())})
    return rows


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_per_class_markdown(rows: Sequence[dict], title: Optional[str] = None) -> str:
    """A markdown table of `rows` (the dicts of `per_class_scores` / `multilabel_per_class_scores`), with a
    macro-average line (the unweighted mean over classes, as macro-F1)."""
    if not rows:
        raise ValueError("no classes to report")
    columns = list(rows[0])
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    macro = []
    for column in columns:
        values = [row[column] for row in rows if isinstance(row[column], (int, float)) and row[column] is not None]
        if column == "label":
            macro.append("**macro average**")
        elif column == "support":
            macro.append(str(sum(values)))
        else:
            macro.append(_cell(float(np.mean(values))) if values else "n/a")
    lines.append("| " + " | ".join(macro) + " |")
    return "\n".join(lines) + "\n"


def write_classification_report(output_dir: str | os.PathLike, rows: Sequence[dict], *,
                                confusion_matrix: Optional[Sequence[Sequence[float]]] = None,
                                labels: Optional[Sequence[str]] = None, title: Optional[str] = None,
                                summary: Optional[dict] = None) -> dict[str, Path]:
    """Write `per_class.json`, `per_class.md` and (given a confusion matrix) `confusion_matrix.png` into
    `output_dir`; returns the written paths by kind ("json", "markdown", "confusion_matrix").

    Args:
        output_dir (`str` or `os.PathLike`): created when missing.
        rows (`list[dict]`): per-class rows, see `per_class_scores`.
        confusion_matrix (`(n, n)` counts, *optional*), labels (`list[str]`, *optional*): drawn when given.
        title (`str`, *optional*): heading of the markdown file and the image.
        summary (`dict`, *optional*): overall figures (accuracy, macro-F1, mAP, ...) listed above the table.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    record = {"title": title, "summary": summary or {}, "per_class": list(rows)}
    written["json"] = output_dir / PER_CLASS_JSON
    written["json"].write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    text = f"# {title}\n\n" if title else ""
    if summary:
        text += "".join(f"- {name}: {_cell(value)}\n" for name, value in summary.items()) + "\n"
    text += format_per_class_markdown(rows, title="Per class")
    if confusion_matrix is not None:
        if labels is None:
            raise ValueError("a confusion matrix needs its labels (class names in id order)")
        written["confusion_matrix"] = plot_confusion_matrix(confusion_matrix, labels, output_dir / CONFUSION_MATRIX_PNG,
                                                            title=f"Confusion matrix: {title}" if title else None)
        text += f"\n![confusion matrix]({CONFUSION_MATRIX_PNG})\n"
    written["markdown"] = output_dir / PER_CLASS_MARKDOWN
    written["markdown"].write_text(text, encoding="utf-8")
    return written


def plot_confusion_matrix(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str | None = "Confusion matrix",
    normalize: bool = False,
    dpi: int = 120,
) -> Path:
    """Draw `matrix` (rows: true label, columns: predicted label) with counts in the cells to a PNG at `path`.

    Args:
        matrix (`(n, n)` ints or floats): counts, e.g. `confusion_matrix` of `test_results.json`.
        labels (`list[str]`, length n): class names in id order.
        path (`str` or `os.PathLike`): output image; the folder is created.
        title (`str`, *optional*): figure title. normalize (`bool`, defaults to `False`): colour by row fraction.
    Uses matplotlib's Agg canvas directly (no pyplot, no display, safe in threads and headless CI).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"confusion matrix must be square (n, n); got shape {values.shape}")
    if len(labels) != values.shape[0]:
        raise ValueError(f"{len(labels)} labels given for a {values.shape[0]}x{values.shape[1]} confusion matrix")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("confusion matrix entries must be finite and non-negative")
    shown = values / np.clip(values.sum(axis=1, keepdims=True), 1e-12, None) if normalize else values
    n = len(labels)
    side = min(max(3.0, 0.55 * n + 2.0), 20.0)
    figure = Figure(figsize=(side + 1.0, side), dpi=dpi)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=[str(label) for label in labels], rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), labels=[str(label) for label in labels])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if title:
        ax.set_title(title)
    if n <= 30:  # counts stay readable up to ~30 classes
        threshold = shown.max() / 2.0 if shown.size and shown.max() > 0 else 0.5
        integer_counts = np.allclose(values, np.round(values))
        for i in range(n):
            for j in range(n):
                text = f"{int(round(values[i, j]))}" if integer_counts else f"{values[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > threshold else "black")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """The one mean ± std rule of every report over folds or seeds: {"mean", "std"}, std the sample standard
    deviation (ddof=1; 0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


__all__ = [
    "CONFUSION_MATRIX_PNG",
    "PER_CLASS_JSON",
    "PER_CLASS_MARKDOWN",
    "format_per_class_markdown",
    "mean_std",
    "multilabel_per_class_scores",
    "per_class_scores",
    "plot_confusion_matrix",
    "write_classification_report",
]

