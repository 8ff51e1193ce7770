"""Evaluation of a classifier over a DataLoader: loss, accuracy, macro-F1 (and a confusion matrix).

Metrics go through `evaluate` with the modules shipped in `audio_vit/metrics` (loaded by path, offline);
predictions are collected with `accelerator.gather_for_metrics`, so every example counts exactly once
however many processes share the loader.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..metrics import load_metric


class ClassificationMetrics:
    """accuracy + macro-F1 (+ confusion matrix) through `evaluate`, loaded once."""

    def __init__(self, num_labels: int, with_confusion_matrix: bool = False):
        self.num_labels = num_labels
        # In memory: every process computes on the already-gathered predictions, so no cache files or
        # cross-process locks are needed.
        kwargs = {"keep_in_memory": True}
        self.accuracy = load_metric("accuracy", **kwargs)
        self.f1 = load_metric("f1", **kwargs)
        self.confusion = load_metric("confusion_matrix", **kwargs) if with_confusion_matrix else None

    def compute(self, predictions: list[int], references: list[int]) -> dict:
        results = {
            "accuracy": self.accuracy.compute(predictions=predictions, references=references)["accuracy"],
            "f1": self.f1.compute(
                predictions=predictions, references=references, average="macro", labels=list(range(self.num_labels))
            )["f1"],
        }
        if self.confusion is not None:
            matrix = self.confusion.compute(
                predictions=predictions, references=references, labels=list(range(self.num_labels))
            )["confusion_matrix"]
            results["confusion_matrix"] = matrix.tolist()
        return results


@torch.no_grad()
def evaluate_model(model, dataloader, accelerator, metrics: ClassificationMetrics, desc: str = "eval",
                   disable_tqdm: bool = False) -> dict:
    """Run `model` over `dataloader`; returns {"loss", "accuracy", "f1"[, "confusion_matrix"], "num_samples"}.

    The loss is the mean cross-entropy over the gathered examples (not a mean of per-process means).
    """
    from tqdm.auto import tqdm

    model.eval()
    predictions, references = [], []
    loss_sum, count = 0.0, 0
    for batch in tqdm(dataloader, desc=desc, leave=False,
                      disable=disable_tqdm or not accelerator.is_local_main_process):
        logits = model(input_values=batch["input_values"]).logits
        logits, labels = accelerator.gather_for_metrics((logits.float(), batch["labels"]))
        if labels.ndim == 2:  # soft / multi-hot targets: score against the arg-max class
            labels = labels.argmax(dim=-1)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        count += labels.numel()
        predictions += logits.argmax(dim=-1).tolist()
        references += labels.tolist()
    if count == 0:
        raise ValueError(f"{desc}: the evaluation dataloader is empty")
    results = {"loss": loss_sum / count, **metrics.compute(predictions, references), "num_samples": count}
    return results
