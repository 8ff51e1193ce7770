"""What "evaluate" means for the data at hand: single-label (softmax; accuracy, macro-F1, confusion matrix) or
multi-label (sigmoid; mAP, micro/macro-F1 at a threshold). The training loop and `audio-vit evaluate` ask an
`EvaluationTask` instead of branching on the kind of data themselves.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .eval_loop import ClassificationMetrics, evaluate_model
from .multilabel_metrics import (
    TRIVIAL_BASELINE_NOTE,
    MultiLabelMetrics,
    evaluate_multilabel_model,
    label_frequency_baseline,
)

SINGLE_LABEL_BEST_METRICS = ("accuracy", "f1", "loss")
# multi-label: --metric-for-best-model accuracy (the default) / f1 mean mAP / micro-F1
MULTI_LABEL_BEST_METRICS = {"accuracy": "mAP", "f1": "micro_f1", "mAP": "mAP", "micro_f1": "micro_f1", "loss": "loss"}


class EvaluationTask:
    """Metrics, evaluation function, log line and test record of single- or multi-label classification.

    Args:
        multi_label (`bool`): multi-hot targets, sigmoid scores.
        label_names (`list[str]`): label names in id order.
        threshold (`float`, defaults to 0.5): multi-label decision threshold on sigmoid scores.
    """

    def __init__(self, multi_label: bool, label_names: Sequence[str], threshold: float = 0.5):
        self.multi_label = multi_label
        self.label_names = [str(name) for name in label_names]
        self.threshold = threshold

    def metric_for_best_model(self, requested: str) -> str:
        """The validation metric that picks the best model, for this kind of data."""
        if self.multi_label:
            if requested not in MULTI_LABEL_BEST_METRICS:
                raise ValueError(f"metric_for_best_model={requested!r} does not apply to multi-label data; use one "
                                 f"of {sorted(set(MULTI_LABEL_BEST_METRICS.values()))}")
            return MULTI_LABEL_BEST_METRICS[requested]
        if requested not in SINGLE_LABEL_BEST_METRICS:
            raise ValueError(f"metric_for_best_model={requested!r} is for multi-label data; this data has one label "
                             f"per clip: use one of {list(SINGLE_LABEL_BEST_METRICS)}")
        return requested

    def metrics(self, for_report: bool = False):
        """The metrics object; `for_report=True` adds the confusion matrix (single-label) or per-label rows."""
        if self.multi_label:
            return MultiLabelMetrics(self.label_names, self.threshold, with_per_class=for_report)
        return ClassificationMetrics(len(self.label_names), with_confusion_matrix=for_report)

    def evaluate(self, model, dataloader, accelerator, metrics, desc: str = "eval", disable_tqdm: bool = False) -> dict:
        function = evaluate_multilabel_model if self.multi_label else evaluate_model
        return function(model, dataloader, accelerator, metrics, desc=desc, disable_tqdm=disable_tqdm)

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """The figures printed and logged for a split."""
        return ("mAP", "micro_f1", "loss") if self.multi_label else ("accuracy", "f1", "loss")

    def summary(self, results: dict, prefix: str = "") -> str:
        """e.g. "val_mAP 0.8123 val_micro_f1 0.7012 val_loss 0.2101"."""
        return " ".join(f"{prefix}{name} {results[name]:.4f}" for name in self.headline_metrics)

    def test_record(self, test: dict, best_epoch: Optional[int], train_references=None, test_references=None) -> dict:
        """What `test_results.json` holds. Multi-label: every metric, the per-label rows and, given the training
        and test multi-hot labels, the label-frequency baseline (a model that ignores the audio) to compare with."""
        record = {name: test[name] for name in self.headline_metrics}
        record.update(num_samples=test["num_samples"], labels=self.label_names, best_epoch=best_epoch)
        if not self.multi_label:
            record["confusion_matrix"] = test["confusion_matrix"]
            return record
        record.update({k: test[k] for k in ("micro_AP", "macro_f1", "subset_accuracy", "threshold")},
                      problem_type="multi_label_classification", per_class=test.get("per_class"))
        if train_references is not None and test_references is not None:
            baseline = label_frequency_baseline(train_references, test_references, self.metrics())
            record["label_frequency_baseline"] = {"note": TRIVIAL_BASELINE_NOTE,
                                                  **{k: baseline[k] for k in ("mAP", "micro_AP", "micro_f1")}}
        return record


def multi_hot_labels(dataset) -> np.ndarray:
    """The (clips, labels) multi-hot targets of a prepared multi-label split."""
    return np.asarray(dataset.with_format("numpy")["labels"][:], dtype=np.float32)
