"""Cross-validation arithmetic against scikit-learn, and the markdown / JSON / PNG files."""
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from audio_vit.comparison.report import (
    compare_markdown,
    confusion_from_predictions,
    plot_comparison,
    summarize_runs,
    write_cv_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fold_predictions():
    rng = np.random.default_rng(0)
    folds = []
    for size in (30, 25, 40):
        references = rng.integers(0, 4, size)
        predictions = np.where(rng.random(size) < 0.7, references, rng.integers(0, 4, size))
        folds.append((references, predictions))
    references = np.array([0, 0, 1, 1])  # class 2 and 3 absent, class 3 never predicted: zero_division=0
    folds.append((references, np.array([0, 2, 1, 1])))
    return folds


def test_summary_matches_sklearn():
    folds = fold_predictions()
    runs = [{"fold": str(i + 1), "seed": 42, "train_seconds": float(i + 1),
             "confusion_matrix": confusion_from_predictions(r, p, 4).tolist()} for i, (r, p) in enumerate(folds)]
    summary = summarize_runs(runs, ["a", "b", "c", "d"])
    accuracies = [accuracy_score(r, p) for r, p in folds]
    f1s = [f1_score(r, p, average="macro", labels=[0, 1, 2, 3], zero_division=0) for r, p in folds]
    assert [run["accuracy"] for run in summary["runs"]] == pytest.approx(accuracies)
    assert [run["macro_f1"] for run in summary["runs"]] == pytest.approx(f1s)
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert summary["macro_f1"]["std"] == pytest.approx(np.std(f1s, ddof=1))
    assert summary["train_seconds"] == pytest.approx({"mean": 2.5, "std": np.std([1, 2, 3, 4], ddof=1)})
    all_refs = np.concatenate([r for r, _ in folds])
    all_preds = np.concatenate([p for _, p in folds])
    precision, recall, f1, support = precision_recall_fscore_support(all_refs, all_preds, labels=[0, 1, 2, 3],
                                                                     zero_division=0)
    table = summary["per_class"]
    assert [row["precision"] for row in table] == pytest.approx(precision)
    assert [row["recall"] for row in table] == pytest.approx(recall)
    assert [row["f1"] for row in table] == pytest.approx(f1)
    assert [row["support"] for row in table] == support.tolist()
    assert summary["pooled_accuracy"] == pytest.approx(accuracy_score(all_refs, all_preds))
    assert np.array_equal(summary["confusion_matrix"], confusion_from_predictions(all_refs, all_preds, 4))


def test_single_run_std_is_zero_and_bad_shapes_are_named():
    summary = summarize_runs([{"fold": "1", "confusion_matrix": [[2, 0], [1, 1]]}], ["x", "y"])
    assert summary["accuracy"] == {"mean": 0.75, "std": 0.0}
    with pytest.raises(ValueError, match=r"run '1': confusion matrix of shape \(2, 2\), expected \(3, 3\)"):
        summarize_runs([{"fold": "1", "confusion_matrix": [[2, 0], [1, 1]]}], ["x", "y", "z"])
    with pytest.raises(ValueError, match="no finished runs"):
        summarize_runs([], ["x"])


def test_cv_report_files(tmp_path):
    runs = [{"fold": "1", "seed": 1, "train_seconds": 3.0, "confusion_matrix": [[3, 1], [0, 4]]},
            {"fold": "2", "seed": 1, "train_seconds": 5.0, "confusion_matrix": [[4, 0], [2, 2]]}]
    summary = summarize_runs(runs, ["dog", "cat"])
    paths = write_cv_report(summary, tmp_path, "CV test")
    assert json.loads(paths["json"].read_text())["accuracy"]["mean"] == pytest.approx(0.8125)
    text = paths["markdown"].read_text()
    assert "**Accuracy: 81.25 ± 8.84 %**" in text  # (7/8, 6/8): mean 81.25, std 12.5/sqrt(2) (ddof=1)
    assert "| dog | 77.78 | 87.50 | 82.35 | 8 |" in text  # pooled [[7, 1], [2, 6]]
    assert paths["confusion_matrix"].read_bytes()[:8] == PNG_SIGNATURE


def test_comparison_table_and_plot(tmp_path):
    rows = [{"model": "svm", "accuracy": {"mean": 0.9, "std": 0.05}, "macro_f1": {"mean": 0.89, "std": 0.04},
             "train_seconds": {"mean": 1.25, "std": 0.1}, "parameters": 12345, "inference_clips_per_second": 5000.0,
             "description": "an SVM"}]
    text = compare_markdown(rows)
    assert "| svm | 90.00 ± 5.00 | 89.00 ± 4.00 | 1.2 | 12,345 | 5,000 | an SVM |" in text
    assert plot_comparison(rows, tmp_path / "c.png").read_bytes()[:8] == PNG_SIGNATURE
