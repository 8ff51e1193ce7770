"""Batches of cached spectrograms -> model inputs: stack, (augment), normalize."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.numpy()
    return np.asarray(values)


class SpectrogramCollator:
    """`collate_fn` for a DataLoader over `PreparedData.splits[...]`.

    Turns examples `{"input_values": (num_mel_bins, frames) raw dB (float16 numpy from the cache), "labels": int}`
    into `{"input_values": float32 (B, num_mel_bins, frames) normalized with feature_extractor.mean/std,
    "labels": int64 (B,)}`. With an `augmenter` (training only) augmentation runs on the raw dB batch before
    normalization (gain is then literally "+ x dB", masks are filled with the dataset mean so they become 0 after
    normalization), and mixup turns labels into float soft targets (B, num_labels).

    Args:
        feature_extractor: an `AudioViTFeatureExtractor` whose `mean`/`std` were set from the training split.
        augmenter (`SpectrogramAugmenter`, optional, default None): applied to every batch when given.
    """

    def __init__(self, feature_extractor, augmenter=None):
        self.feature_extractor = feature_extractor
        self.augmenter = augmenter

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        values = np.stack([_as_array(example["input_values"]) for example in examples])  # (B, M, T) float16
        batch_values = torch.from_numpy(values).float()
        labels = _stack_labels([example["labels"] for example in examples])
        if self.augmenter is not None:
            batch_values, labels = self.augmenter(batch_values, labels, fill_value=float(self.feature_extractor.mean))
        batch_values = self.feature_extractor.normalize(batch_values)
        return {"input_values": batch_values, "labels": labels}


def _stack_labels(labels: list) -> torch.Tensor:
    first = labels[0]
    if isinstance(first, (list, tuple, np.ndarray, torch.Tensor)) and np.ndim(first) > 0:
        return torch.as_tensor(np.stack([_as_array(label) for label in labels]), dtype=torch.float32)  # multi-hot
    return torch.as_tensor(np.asarray(labels), dtype=torch.long)


def collate_eval(feature_extractor) -> SpectrogramCollator:
    """The collator for validation/test: no augmentation."""
    return SpectrogramCollator(feature_extractor, augmenter=None)


__all__ = ["SpectrogramCollator", "collate_eval"]
