"""Per-class reports and the multi-label metric modules agree with scikit-learn; files are written."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, precision_recall_fscore_support

from audio_vit.classification_report import (
    format_per_class_markdown,
    multilabel_per_class_scores,
    per_class_scores,
    write_classification_report,
)
from audio_vit.metrics import AVAILABLE_METRICS, load_metric


def _random_multilabel(seed=0, clips=60, labels=4):
    rng = np.random.default_rng(seed)
    references = (rng.random((clips, labels)) < 0.3).astype(int)
    references[0] = 1  # every label has a positive
    scores = np.clip(0.5 * references + 0.6 * rng.random((clips, labels)), 0, 1)  # informative, not perfect
    return scores, references


def test_per_class_scores_match_sklearn():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 4, 200))
    predicted[predicted == 3] = 2  # class 3 is never predicted: precision 0 by the zero_division convention
    matrix = confusion_matrix(truth, predicted, labels=range(4))
    rows = per_class_scores(matrix, ["a", "b", "c", "d"])
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=range(4), zero_division=0)
    assert [r["label"] for r in rows] == ["a", "b", "c", "d"]
    np.testing.assert_allclose([r["precision"] for r in rows], precision)
    np.testing.assert_allclose([r["recall"] for r in rows], recall)
    np.testing.assert_allclose([r["f1"] for r in rows], f1)
    assert [r["support"] for r in rows] == support.tolist()
    table = format_per_class_markdown(rows)
    macro_line = table.strip().splitlines()[-1]
    assert f"{np.mean(f1):.4f}" in macro_line and "200" in macro_line


def test_per_class_scores_bad_input_names_the_shapes():
    with pytest.raises(ValueError, match="square"):
        per_class_scores([[1, 2, 3]], ["a"])
    with pytest.raises(ValueError, match="3 labels given for a 2x2"):
        per_class_scores([[1, 0], [0, 1]], ["a", "b", "c"])


def test_average_precision_module_matches_sklearn():
    assert "average_precision" in AVAILABLE_METRICS
    scores, references = _random_multilabel()
    metric = load_metric("average_precision", keep_in_memory=True)
    macro = metric.compute(predictions=scores.tolist(), references=references.tolist())
    assert macro["num_labels_scored"] == 4
    assert macro["average_precision"] == pytest.approx(average_precision_score(references, scores, average="macro"))
    micro = metric.compute(predictions=scores.tolist(), references=references.tolist(), average="micro")
    assert micro["average_precision"] == pytest.approx(average_precision_score(references, scores, average="micro"))
    per_label = metric.compute(predictions=scores.tolist(), references=references.tolist(), average=None)
    np.testing.assert_allclose(per_label["average_precision"], average_precision_score(references, scores, average=None))


def test_average_precision_leaves_out_labels_without_positives():
    metric = load_metric("average_precision", keep_in_memory=True)
    result = metric.compute(predictions=[[0.9, 0.1, 0.5], [0.2, 0.8, 0.5]], references=[[1, 0, 0], [0, 1, 0]])
    assert result == {"average_precision": 1.0, "num_labels_scored": 2}
    per_label = metric.compute(predictions=[[0.9, 0.1, 0.5], [0.2, 0.8, 0.5]], references=[[1, 0, 0], [0, 1, 0]],
                               average=None)["average_precision"]
    assert per_label[:2] == [1.0, 1.0] and np.isnan(per_label[2])
    with pytest.raises(ValueError, match="multi-hot"):
        metric.compute(predictions=[[0.9, 0.1]], references=[[2, 0]])


def test_multilabel_per_class_scores_match_sklearn_at_a_threshold():
    scores, references = _random_multilabel(seed=3)
    rows = multilabel_per_class_scores(scores, references, ["w", "x", "y", "z"], threshold=0.6)
    decisions = (scores >= 0.6).astype(int)
    np.testing.assert_allclose([r["f1"] for r in rows], f1_score(references, decisions, average=None, zero_division=0))
    np.testing.assert_allclose([r["average_precision"] for r in rows],
                               average_precision_score(references, scores, average=None))
    assert [r["support"] for r in rows] == references.sum(axis=0).tolist()
    # the shipped f1 module's multilabel config gives micro-F1 at the same threshold
    f1 = load_metric("f1", config_name="multilabel", keep_in_memory=True)
    micro = f1.compute(predictions=decisions.tolist(), references=references.tolist(), average="micro")["f1"]
    assert micro == pytest.approx(f1_score(references, decisions, average="micro"))


def test_write_classification_report_writes_json_markdown_and_png(tmp_path):
    matrix = [[5, 1], [2, 7]]
    rows = per_class_scores(matrix, ["cat", "dog"])
    written = write_classification_report(tmp_path / "report", rows, confusion_matrix=matrix, labels=["cat", "dog"],
                                          title="test split", summary={"accuracy": 12 / 15})
    assert written["confusion_matrix"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads(written["json"].read_text())
    assert record["per_class"][1] == rows[1] and record["summary"]["accuracy"] == pytest.approx(0.8)
    text = written["markdown"].read_text()
    assert "| cat | 0.7143 | 0.8333 |" in text and "accuracy: 0.8000" in text and "confusion_matrix.png" in text
    with pytest.raises(ValueError, match="needs its labels"):
        write_classification_report(tmp_path / "bad", rows, confusion_matrix=matrix)
