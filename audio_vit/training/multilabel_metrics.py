"""Evaluation of a multi-label classifier (several labels per clip, sigmoid outputs): BCE loss, mAP, F1 at a threshold.

Metrics go through `evaluate` with the modules shipped in `audio_vit/metrics` (loaded by path, offline):
`average_precision` (mAP = the mean over labels of each label's AP, the AudioSet/FSD50K figure; micro-AP) and
`f1`/`accuracy` in their "multilabel" configuration on the decisions `sigmoid(logit) >= threshold`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..classification_report import multilabel_per_class_scores
from ..metrics import load_metric
from .eval_loop import gathered_outputs

MULTILABEL_METRICS = ("mAP", "micro_AP", "micro_f1", "macro_f1", "subset_accuracy", "loss")
TRIVIAL_BASELINE_NOTE = "every clip scored with the training label frequencies (a constant per label)"


class MultiLabelMetrics:
    """mAP, micro-AP, micro/macro-F1 and subset accuracy at `threshold`, through `evaluate`, loaded once.

    Args:
        label_names (`list[str]`): label names in id order (for the per-label report).
        threshold (`float`, defaults to 0.5): a label is predicted when its sigmoid score is >= threshold.
        with_per_class (`bool`, defaults to `False`): also return the per-label rows (AP, precision, recall, F1).
    """

    multi_label = True

    def __init__(self, label_names, threshold: float = 0.5, with_per_class: bool = False):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1): it is compared with sigmoid scores")
        self.label_names = [str(name) for name in label_names]
        self.threshold = threshold
        self.with_per_class = with_per_class
        kwargs = {"keep_in_memory": True}
        self.average_precision = load_metric("average_precision", **kwargs)
        self.f1 = load_metric("f1", config_name="multilabel", **kwargs)
        self.accuracy = load_metric("accuracy", config_name="multilabel", **kwargs)

    def compute(self, scores, references) -> dict:
        """`scores` (n, L) sigmoid probabilities, `references` (n, L) multi-hot -> the metrics dict."""
        scores = np.asarray(scores, dtype=np.float32)
        references = np.asarray(references).round().astype(np.int32)
        decisions = (scores >= self.threshold).astype(np.int32).tolist()
        targets = references.tolist()
        all_labels = list(range(len(self.label_names)))
        results = {
            "mAP": self.average_precision.compute(predictions=scores.tolist(), references=targets)["average_precision"],
            "micro_AP": self.average_precision.compute(predictions=scores.tolist(), references=targets,
                                                       average="micro")["average_precision"],
            "micro_f1": self.f1.compute(predictions=decisions, references=targets, average="micro")["f1"],
            "macro_f1": self.f1.compute(predictions=decisions, references=targets, average="macro",
                                        labels=all_labels)["f1"],
            "subset_accuracy": self.accuracy.compute(predictions=decisions, references=targets)["accuracy"],
            "threshold": self.threshold,
        }
        if self.with_per_class:
            results["per_class"] = multilabel_per_class_scores(scores, references, self.label_names, self.threshold)
        return results


@torch.no_grad()
def evaluate_multilabel_model(model, dataloader, accelerator, metrics: MultiLabelMetrics, desc: str = "eval",
                              disable_tqdm: bool = False) -> dict:
    """Run `model` over `dataloader` (multi-hot `labels`); returns {"loss", "mAP", "micro_AP", "micro_f1",
    "macro_f1", "subset_accuracy", "threshold"[, "per_class"], "num_samples"}.

    The loss is the model's own (`compute_loss`: binary cross-entropy for a multi-label model), averaged over
    every (clip, label) of the gathered examples.
    """
    compute_loss = accelerator.unwrap_model(model).compute_loss
    scores, references = [], []
    loss_sum, count = 0.0, 0
    for logits, labels in gathered_outputs(model, dataloader, accelerator, desc, disable_tqdm):
        labels = labels.float()
        if labels.shape != logits.shape:
            raise ValueError(f"{desc}: multi-hot labels {tuple(labels.shape)} do not match the logits {tuple(logits.shape)}")
        loss_sum += compute_loss(logits, labels).item() * labels.numel()  # a mean over the batch -> a sum
        count += labels.shape[0]
        scores.append(logits.sigmoid().cpu().numpy())
        references.append(labels.cpu().numpy())
    if count == 0:
        raise ValueError(f"{desc}: the evaluation dataloader is empty")
    num_labels = scores[0].shape[1]
    results = {"loss": loss_sum / (count * num_labels),
               **metrics.compute(np.concatenate(scores), np.concatenate(references)), "num_samples": count}
    return results


def label_frequency_baseline(train_references, test_references, metrics: MultiLabelMetrics) -> dict:
    """The metrics of a model that ignores the audio: every test clip gets the training label frequencies as
    scores. Its mAP is about the mean label frequency; a model that learned anything scores above it."""
    train = np.asarray(train_references, dtype=np.float32)
    test = np.asarray(test_references, dtype=np.float32)
    scores = np.broadcast_to(train.mean(axis=0, keepdims=True), test.shape)
    return metrics.compute(scores, test)


__all__ = [
    "MULTILABEL_METRICS",
    "MultiLabelMetrics",
    "evaluate_multilabel_model",
    "label_frequency_baseline",
]
