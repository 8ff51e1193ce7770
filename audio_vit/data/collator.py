"""Batches of cached spectrograms -> model inputs: (crop,) stack, (augment), normalize, padding masks."""
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

    Turns examples `{"input_values": (num_mel_bins, frames) raw dB (float16 numpy from the cache), "labels": int,
    "num_frames": int}` into model inputs normalized with feature_extractor.mean/std:

    - training (an `augmenter` is given): every clip becomes one window of `window` frames (the model's
      `max_length`): a random window of a longer clip (a new one each epoch), the start of a shorter one;
      returns `input_values (B, M, window)`, `attention_mask (B, window)` (1 = real audio) and `labels`.
      Augmentation runs on the raw dB batch before normalization (gain is then literally "+ x dB", masks are
      filled with the dataset mean so they become 0 after normalization), moves the padding mask with time
      shifts, and mixup turns labels into float soft targets (B, num_labels).
    - evaluation (no augmenter): whole clips, `input_values (B, M, frames)`, `attention_mask (B, frames)` and
      `num_frames (B,)`, so evaluation can average the model's windows over each whole clip
      (`audio_vit.inference.long_audio.whole_clip_logits`).

    Both add `file` (the clips' names) when the examples carry it, for error messages.

    Args:
        feature_extractor: an `AudioViTFeatureExtractor` whose `mean`/`std` were set from the training split.
        augmenter (`SpectrogramAugmenter`, optional, default None): applied to every batch when given.
        window (`int`, optional): frames per training window; defaults to `feature_extractor.max_length`.
    """

    def __init__(self, feature_extractor, augmenter=None, window: int | None = None):
        self.feature_extractor = feature_extractor
        self.augmenter = augmenter
        self.window = int(window or feature_extractor.max_length)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        values = torch.from_numpy(np.stack([_as_array(example["input_values"]) for example in examples])).float()
        frames = values.shape[-1]
        num_frames = torch.as_tensor(
            [int(example.get("num_frames", frames)) or frames for example in examples], dtype=torch.long
        ).clamp(1, frames)
        labels = _stack_labels([example["labels"] for example in examples])
        normalize = self.feature_extractor.normalize
        if self.augmenter is None:
            mask = (torch.arange(frames)[None, :] < num_frames[:, None]).long()
            batch = {"input_values": normalize(values), "attention_mask": mask, "num_frames": num_frames,
                     "labels": labels}
        else:
            values, mask = self._random_windows(values, num_frames)
            values, labels, mask = self.augmenter(values, labels, fill_value=float(self.feature_extractor.mean),
                                                  attention_mask=mask)
            batch = {"input_values": normalize(values), "attention_mask": mask, "labels": labels}
        if "file" in examples[0]:  # named in the trainer's error when a batch's loss will not stay finite
            batch["file"] = [example["file"] for example in examples]
        return batch

    def _random_windows(self, values: torch.Tensor, num_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One `window`-frame window per clip: random within clips longer than it (training crops)."""
        window = self.window
        if values.shape[-1] < window:
            values = torch.nn.functional.pad(values, (0, window - values.shape[-1]))
        slack = (num_frames - window).clamp_min(0)
        start = (torch.rand(len(num_frames), generator=self.augmenter.generator) * (slack + 1).float()).long()
        index = start[:, None] + torch.arange(window)[None, :]  # (B, window)
        values = torch.gather(values, 2, index[:, None, :].expand(-1, values.shape[1], -1))
        mask = (index < num_frames[:, None]).long()
        return values, mask


def _stack_labels(labels: list) -> torch.Tensor:
    first = labels[0]
    if isinstance(first, (list, tuple, np.ndarray, torch.Tensor)) and np.ndim(first) > 0:
        return torch.as_tensor(np.stack([_as_array(label) for label in labels]), dtype=torch.float32)  # multi-hot
    return torch.as_tensor(np.asarray(labels), dtype=torch.long)


def collate_eval(feature_extractor) -> SpectrogramCollator:
    """The collator for validation/test: no augmentation, whole clips."""
    return SpectrogramCollator(feature_extractor, augmenter=None)


__all__ = ["SpectrogramCollator", "collate_eval"]
