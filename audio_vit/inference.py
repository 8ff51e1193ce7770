"""Long-audio inference: one log-mel pass over the whole recording, then overlapping windows in batches.

A model trained on short clips sees windows of its training length (`feature_extractor.max_length`
frames by default); window probabilities are averaged (or max-pooled) into a recording-level score,
and each window's own prediction is kept with its start and end time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

AGGREGATIONS = ("mean", "max")


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
    if features.shape[-1] < window:  # short recording: pad with silence to one full window
        features = feature_extractor(
            waveform, sampling_rate=sampling_rate, resample=True, padding="max_length", max_length=window,
            truncation=True, return_tensors="pt",
        )["input_values"][0]
    starts = window_starts(features.shape[-1], window, hop)
    device = next(model.parameters()).device
    probabilities = []
    for first in range(0, len(starts), batch_size):
        batch = torch.stack([features[:, s : s + window] for s in starts[first : first + batch_size]])
        logits = model(input_values=batch.to(device)).logits.float()
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
