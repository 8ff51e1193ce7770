"""Evaluation of a classifier over a DataLoader: loss, accuracy, macro-F1 (and a confusion matrix).

Metrics go through `evaluate` with the modules shipped in `audio_vit/metrics` (loaded by path, offline);
predictions are collected with `accelerator.gather_for_metrics`, so every example counts exactly once
however many processes share the loader. The loss is the model's own (`compute_loss`).
Multi-label models: `multilabel_metrics.py`; a saved model folder on a dataset split: `folder_evaluation.py`.
`evaluate_folder` scores a saved model folder on a dataset split (`audio-vit evaluate`).
"""
from __future__ import annotations

import torch

from ..inference.long_audio import whole_clip_logits, window_starts
from ..metrics import load_metric

# Windows of long clips forwarded at once in evaluation (bounds memory: each is a full model input).
MAX_WINDOWS_PER_FORWARD = 256


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
def batch_logits(model, batch: dict, window: int) -> torch.Tensor:
    """Logits `(B, num_labels)` of an evaluation batch of whole clips (`SpectrogramCollator` without augmenter).

    Clips longer than the model's `window` frames are judged on all of their windows (logits averaged,
    `audio_vit.inference.long_audio.whole_clip_logits`); shorter ones are one window with the padding masked.
    """
    values, num_frames = batch["input_values"], batch.get("num_frames")
    if num_frames is not None and values.shape[-1] > window and int(num_frames.max()) > window:
        # A batch of long recordings is hundreds of windows: forward them a bounded number of windows at a time.
        return torch.cat([whole_clip_logits(model, values[group], num_frames[group], window)
                          for group in clip_groups(num_frames, window)])
    values, mask = values[..., :window], batch.get("attention_mask")
    mask = mask[..., :window] if mask is not None else None
    return model(input_values=values, attention_mask=mask).logits


def clip_groups(num_frames: torch.Tensor, window: int, max_windows: int | None = None) -> list[slice]:
    """Consecutive groups of clips whose half-overlapping windows (as `whole_clip_logits` cuts them) number at most
    `max_windows` (default `MAX_WINDOWS_PER_FORWARD`) per group (a single longer clip is a group of its own)."""
    max_windows = MAX_WINDOWS_PER_FORWARD if max_windows is None else max_windows
    counts = [len(window_starts(max(1, int(n)), window, max(1, window // 2))) for n in num_frames.tolist()]
    groups, start, total = [], 0, 0
    for index, count in enumerate(counts):
        if index > start and total + count > max_windows:
            groups.append(slice(start, index))
            start, total = index, 0
        total += count
    groups.append(slice(start, len(counts)))
    return groups


def gathered_outputs(model, dataloader, accelerator, desc: str = "eval", disable_tqdm: bool = False):
    """Put `model` in eval mode and yield `(logits, labels)` of every batch (whole clips, see `batch_logits`),
    gathered over processes (`gather_for_metrics`: every example exactly once); the logits as float32."""
    from tqdm.auto import tqdm

    window = accelerator.unwrap_model(model).config.max_length
    model.eval()
    with torch.no_grad():
        for batch in tqdm(dataloader, desc=desc, leave=False,
                          disable=disable_tqdm or not accelerator.is_local_main_process):
            logits = batch_logits(model, batch, window)
            yield accelerator.gather_for_metrics((logits.float(), batch["labels"]))


@torch.no_grad()
def evaluate_model(model, dataloader, accelerator, metrics: ClassificationMetrics, desc: str = "eval",
                   disable_tqdm: bool = False) -> dict:
    """Run `model` over `dataloader`; returns {"loss", "accuracy", "f1"[, "confusion_matrix"], "num_samples"}.

    The loss is the model's loss (`compute_loss`) over the gathered examples (not a mean of per-process means).
    """
    compute_loss = accelerator.unwrap_model(model).compute_loss
    predictions, references = [], []
    loss_sum, count = 0.0, 0
    for logits, labels in gathered_outputs(model, dataloader, accelerator, desc, disable_tqdm):
        if labels.ndim == 2:  # soft / multi-hot targets: score against the arg-max class
            labels = labels.argmax(dim=-1)
        loss_sum += compute_loss(logits, labels).item() * labels.numel()  # a batch mean -> a sum
        count += labels.numel()
        predictions += logits.argmax(dim=-1).tolist()
        references += labels.tolist()
    if count == 0:
        raise ValueError(f"{desc}: the evaluation dataloader is empty")
    results = {"loss": loss_sum / count, **metrics.compute(predictions, references), "num_samples": count}
    return results
