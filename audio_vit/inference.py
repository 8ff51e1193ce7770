"""Long-audio inference: one log-mel pass over the whole recording, then overlapping windows in batches.

A model trained on short clips sees windows of its training length (`feature_extractor.max_length`
frames by default); window probabilities are averaged (or max-pooled) into a recording-level score,
and each window's own prediction is kept with its start and end time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .inference_options import AGGREGATIONS  # noqa: F401  (re-exported; `predict --help` reads it without torch)


@dataclass
class WindowPrediction:
    start_s: float
    end_s: float
    label: str
    score: float


@dataclass
class LongAudioPrediction:
    """Recording-level scores per label (sorted, best first) and one prediction per window."""

    scores: list[dict]
    windows: list[WindowPrediction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.scores[0]["label"]


def window_starts(num_frames: int, window: int, hop: int) -> list[int]:
    """Start frames of windows covering all `num_frames`; the last window is aligned to the end."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window={window} and hop={hop} frames must be positive")
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, hop))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def clip_windows(input_values: torch.Tensor, num_frames: torch.Tensor, window: int, hop: int | None = None):
    """Cut a batch of clips into model windows: every clip is covered whole, short clips are one masked window.

    Args:
        input_values (`torch.Tensor`): (B, num_mel_bins, T) spectrograms, zero-padded past each clip's end.
        num_frames (`torch.Tensor`): (B,) real frames per clip.
        window (`int`): frames per model window (the model's `max_length`).
        hop (`int`, *optional*): frames between window starts; defaults to half a window.

    Returns:
        (windows (N, num_mel_bins, window), attention_mask (N, window) long, clip_index (N,) long): the windows
        of clip b are the rows where `clip_index == b`.
    """
    hop = max(1, window // 2) if hop is None else hop
    if input_values.shape[-1] < window:  # storage shorter than a window: pad (masked below)
        input_values = torch.nn.functional.pad(input_values, (0, window - input_values.shape[-1]))
    windows, masks, owners = [], [], []
    for b, length in enumerate(num_frames.tolist()):
        for start in window_starts(max(1, int(length)), window, hop):
            windows.append(input_values[b, :, start : start + window])
            mask = torch.zeros(window, dtype=torch.long)
            mask[: max(1, min(window, int(length) - start))] = 1
            masks.append(mask)
            owners.append(b)
    return torch.stack(windows), torch.stack(masks), torch.tensor(owners, dtype=torch.long)


def average_window_logits(logits: torch.Tensor, clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """Mean of the window logits (N, C) of each clip -> (num_clips, C)."""
    totals = logits.new_zeros(num_clips, logits.shape[-1]).index_add_(0, clip_index.to(logits.device), logits)
    counts = torch.bincount(clip_index, minlength=num_clips).clamp_min(1).to(logits.device, logits.dtype)
    return totals / counts[:, None]


def whole_clip_logits(model, input_values: torch.Tensor, num_frames: torch.Tensor, window: int, **model_kwargs):
    """Logits (B, C) of clips of any length: the model's window logits averaged over each whole clip."""
    windows, masks, owners = clip_windows(input_values, num_frames, window)
    outputs = model(input_values=windows, attention_mask=masks.to(windows.device), **model_kwargs)
    return average_window_logits(outputs.logits.float(), owners, input_values.shape[0])


@torch.no_grad()
def classify_long_audio(
    model,
    feature_extractor,
    waveform: np.ndarray,
    sampling_rate: int,
    window_s: float | None = None,
    hop_s: float | None = None,
    aggregate: str = "mean",
    batch_size: int = 32,
    top_k: int | None = 5,
) -> LongAudioPrediction:
    """Classify a recording of any length with sliding windows.

    Args:
        model: an `AudioViTForAudioClassification` (or any audio classifier taking `input_values`).
        feature_extractor: its `AudioViTFeatureExtractor`.
        waveform (`np.ndarray`): mono or (channels, samples) audio.
        sampling_rate (`int`): rate of `waveform`; resampled to the extractor's if different.
        window_s (`float`, *optional*): window length in seconds; defaults to the extractor's `max_length`.
        hop_s (`float`, *optional*): step between windows in seconds; defaults to half a window.
        aggregate (`str`, defaults to `"mean"`): `"mean"` or `"max"` of window probabilities.
        batch_size (`int`, defaults to 32): windows per forward pass.
        top_k (`int`, *optional*, defaults to 5): labels kept in `scores` (all when `None`).
    """
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate={aggregate!r} is not supported; use one of {AGGREGATIONS}")
    seconds_per_frame = feature_extractor.hop_length / feature_extractor.sampling_rate
    window = feature_extractor.max_length if window_s is None else max(1, round(window_s / seconds_per_frame))
    hop = max(1, window // 2) if hop_s is None else max(1, round(hop_s / seconds_per_frame))

    features = feature_extractor(
        waveform, sampling_rate=sampling_rate, resample=True, padding="longest", truncation=False,
        return_tensors="pt",
    )["input_values"][0]  # (M, T) for the whole recording
    num_frames = features.shape[-1]
    if num_frames < window:  # short recording: pad with silence to one full window, masked for the model
        features = feature_extractor(
            waveform, sampling_rate=sampling_rate, resample=True, padding="max_length", max_length=window,
            truncation=True, return_tensors="pt",
        )["input_values"][0]
    starts = window_starts(num_frames, window, hop)
    device = next(model.parameters()).device
    probabilities = []
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        batch = torch.stack([features[:, s : s + window] for s in batch_starts])
        mask = torch.stack([(torch.arange(window) < num_frames - s).long() for s in batch_starts])
        logits = model(input_values=batch.to(device), attention_mask=mask.to(device)).logits.float()
        if model.config.problem_type == "multi_label_classification":
            probabilities.append(logits.sigmoid().cpu())
        else:
            probabilities.append(logits.softmax(-1).cpu())
    probs = torch.cat(probabilities)  # (num_windows, num_labels)

    id2label = model.config.id2label
    pooled = probs.mean(0) if aggregate == "mean" else probs.amax(0)
    k = len(pooled) if top_k is None else min(top_k, len(pooled))
    best_scores, best_ids = pooled.topk(k)
    scores = [{"label": id2label[int(i)], "score": float(s)} for s, i in zip(best_scores, best_ids)]
    window_scores, window_ids = probs.max(-1)
    windows = [
        WindowPrediction(
            start_s=round(s * seconds_per_frame, 3),
            end_s=round((s + window) * seconds_per_frame, 3),
            label=id2label[int(i)],
            score=float(p),
        )
        for s, p, i in zip(starts, window_scores, window_ids)
    ]
    return LongAudioPrediction(scores=scores, windows=windows)
