"""Long-audio inference: overlapping windows of the model's length over a recording of any length.

A model trained on short clips sees windows of its training length (`feature_extractor.max_length`
frames by default); window probabilities are averaged (or max-pooled) into a recording-level score,
and each window's own prediction is kept with its start and end time. The log-mel features are computed
chunk by chunk (`audio_vit.inference.chunked_features`) and files are decoded block by block
(`audio_vit.data.audio_decoding.iter_audio_blocks`), so the working memory stays bounded for recordings of hours; what
grows with the length is the result itself, one small record per window (about 2 MB per hour at a 0.5 s hop,
BENCHMARKS.md). The results equal one extractor pass over the whole recording (to float32 rounding), and a
recording shorter than one chunk takes exactly that pass.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..models.audio_vit.audio_utils import pcm_to_float32, to_mono
from .options import AGGREGATIONS  # noqa: F401  (re-exported; `predict --help` reads it without torch)
from .chunked_features import DEFAULT_CHUNK_FRAMES, iter_feature_chunks

# (windows (B, num_mel_bins, window), attention_mask (B, window)) -> probabilities (B, num_labels) on the CPU
WindowClassifier = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    duration_s: float | None = None  # length of the recording that was classified

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
def window_probabilities(model, windows: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Probabilities (B, num_labels) on the CPU of a batch of windows: softmax, or sigmoid for multi-label models."""
    device = next(model.parameters()).device
    logits = model(input_values=windows.to(device), attention_mask=attention_mask.to(device)).logits.float()
    if model.config.problem_type == "multi_label_classification":
        return logits.sigmoid().cpu()
    return logits.softmax(-1).cpu()


def iter_windows(
    feature_chunks: Iterable[torch.Tensor], window: int, hop: int, pad_short: Callable[[], torch.Tensor]
) -> Iterator[tuple[int, torch.Tensor, int]]:
    """`(start, frames (num_mel_bins, window), valid frames)` at `window_starts(total, window, hop)`, chunk by chunk.

    Only the frames the next windows need are held. A recording shorter than one window is the single window
    `pad_short()` (its features padded with silence to `window` frames), with its real frames valid.
    """
    held, held_from, next_start, total = None, 0, 0, 0
    for chunk in feature_chunks:
        held = chunk if held is None else torch.cat([held, chunk], dim=1)
        total += chunk.shape[1]
        while next_start + window <= total:
            yield next_start, held[:, next_start - held_from : next_start - held_from + window], window
            next_start += hop
        keep_from = max(held_from, min(next_start, total - window))  # the last window may start before next_start
        held, held_from = held[:, keep_from - held_from :], keep_from
    if total < window:
        yield 0, pad_short(), max(1, total)
    elif next_start - hop + window < total:  # the last window ends at the end of the recording
        yield total - window, held[:, total - window - held_from :], window


def _window_batches(windows: Iterator[tuple[int, torch.Tensor, int]], window: int, batch_size: int):
    """Group `iter_windows` into (starts, windows (B, M, window), attention_mask (B, window))."""
    batch = []
    for item in windows:
        batch.append(item)
        if len(batch) == batch_size:
            yield _stack(batch, window)
            batch = []
    if batch:
        yield _stack(batch, window)


def _stack(batch: list, window: int):
    starts = [start for start, _, _ in batch]
    mask = torch.stack([(torch.arange(window) < valid).long() for _, _, valid in batch])
    return starts, torch.stack([frames for _, frames, _ in batch]), mask


class _WindowTally:
    """Window probabilities as they come -> the recording's pooled scores and each window's best label.

    Keeps a running sum and maximum per label and, per window, only its start, best label and score in flat
    arrays: a recording of hours would otherwise hold one small tensor per batch, and those long-lived small
    allocations between the large transient ones fragmented the heap (peak RSS grew by ~35 MB per hour).
    """

    def __init__(self):
        self.starts, self.best_ids, self.best_scores = array("q"), array("q"), array("d")
        self.total: torch.Tensor | None = None  # (num_labels,) float64
        self.maximum: torch.Tensor | None = None  # (num_labels,)

    def add(self, starts: list[int], probabilities: torch.Tensor) -> None:
        """`probabilities` (B, num_labels) of the windows starting at `starts` (B frames)."""
        summed, best = probabilities.double().sum(0), probabilities.amax(0)
        self.total = summed if self.total is None else self.total + summed
        self.maximum = best if self.maximum is None else torch.maximum(self.maximum, best)
        scores, ids = probabilities.max(-1)
        self.starts.extend(starts)
        self.best_ids.extend(ids.tolist())
        self.best_scores.extend(scores.tolist())

    def summary(self, window: int, seconds_per_frame: float, id2label: dict, aggregate: str, top_k: int | None,
                duration_s: float) -> LongAudioPrediction:
        """Recording scores (mean or max, best first) and each window's best label."""
        pooled = (self.total / len(self.starts)).float() if aggregate == "mean" else self.maximum
        k = len(pooled) if top_k is None else min(top_k, len(pooled))
        best_scores, best_ids = pooled.topk(k)
        scores = [{"label": id2label[int(i)], "score": float(s)} for s, i in zip(best_scores, best_ids)]
        windows = [
            WindowPrediction(
                start_s=round(s * seconds_per_frame, 3),
                end_s=round((s + window) * seconds_per_frame, 3),
                label=id2label[i],
                score=p,
            )
            for s, p, i in zip(self.starts, self.best_scores, self.best_ids)
        ]
        return LongAudioPrediction(scores=scores, windows=windows, duration_s=duration_s)


def classify_blocks(
    model,
    feature_extractor,
    open_blocks: Callable[[], Iterable[np.ndarray]],
    window_s: float | None = None,
    hop_s: float | None = None,
    aggregate: str = "mean",
    batch_size: int = 32,
    top_k: int | None = 5,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    window_classifier: WindowClassifier | None = None,
    feature_observer: Callable[[torch.Tensor], None] | None = None,
) -> LongAudioPrediction:
    """Classify a recording given as blocks of samples; `classify_long_audio` and `classify_audio_file` call it.

    Args:
        open_blocks (`Callable`): returns a fresh iterator of mono float32 blocks at the extractor's rate (called
            twice for recordings longer than one chunk: see `audio_vit.inference.chunked_features`).
        chunk_frames (`int`, defaults to 16384): feature frames computed at a time (at least one window).
        window_classifier (`Callable`, *optional*): `(windows, attention_mask) -> probabilities` replacing
            `window_probabilities(model, ...)`, e.g. a server's batcher shared by concurrent requests.
        feature_observer (`Callable`, *optional*): called with each normalised `(num_mel_bins, n)` feature chunk
            in order (e.g. to draw a spectrogram overview).
        Other arguments: as `classify_long_audio`.
    """
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate={aggregate!r} is not supported; use one of {AGGREGATIONS}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    seconds_per_frame = feature_extractor.hop_length / feature_extractor.sampling_rate
    window = feature_extractor.max_length if window_s is None else max(1, round(window_s / seconds_per_frame))
    hop = max(1, window // 2) if hop_s is None else max(1, round(hop_s / seconds_per_frame))
    classify = window_classifier or (lambda windows, mask: window_probabilities(model, windows, mask))

    samples, whole = [0], {}

    def counted_blocks():  # counts the samples of the latest pass (every pass reads the whole recording)
        samples[0] = 0
        for block in open_blocks():
            samples[0] += len(block)
            yield block

    def observed(chunks):
        for chunk in chunks:
            if feature_observer is not None:
                feature_observer(chunk)
            yield chunk

    def pad_short():  # as the whole-recording path always did: the waveform padded with silence, then features
        return feature_extractor(
            whole["waveform"], sampling_rate=feature_extractor.sampling_rate, padding="max_length",
            max_length=window, truncation=True, return_tensors="pt",
        )["input_values"][0]

    chunks = iter_feature_chunks(feature_extractor, counted_blocks, max(chunk_frames, window),
                                 short_recording=lambda waveform: whole.update(waveform=waveform))
    tally = _WindowTally()
    for batch_starts, windows, mask in _window_batches(iter_windows(observed(chunks), window, hop, pad_short),
                                                       window, batch_size):
        tally.add(batch_starts, classify(windows, mask).float())
    return tally.summary(window, seconds_per_frame, model.config.id2label, aggregate, top_k,
                         duration_s=samples[0] / feature_extractor.sampling_rate)


def _mono_float32(waveform) -> np.ndarray:
    """A (samples,) or (channels, samples) numpy array / torch tensor -> mono float32 numpy (PCM scaled)."""
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().float().cpu().numpy()
    waveform = np.asarray(waveform)
    if waveform.ndim not in (1, 2):
        raise ValueError(f"waveform has shape {waveform.shape}; expected (samples,) or (channels, samples)")
    return to_mono(pcm_to_float32(waveform))


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
    **kwargs,
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
        **kwargs: `chunk_frames`, `window_classifier`, `feature_observer` (see `classify_blocks`).
    """
    from ..data.audio_decoding import iter_waveform_blocks

    mono = _mono_float32(waveform)
    return classify_blocks(
        model, feature_extractor,
        lambda: iter_waveform_blocks(mono, sampling_rate, feature_extractor.sampling_rate),
        window_s, hop_s, aggregate, batch_size, top_k, **kwargs,
    )


def classify_audio_file(
    model,
    feature_extractor,
    source,
    window_s: float | None = None,
    hop_s: float | None = None,
    aggregate: str = "mean",
    batch_size: int = 32,
    top_k: int | None = 5,
    max_seconds: float | None = None,
    **kwargs,
) -> LongAudioPrediction:
    """`classify_long_audio` on an audio file of any length, decoded block by block (memory bounded by a chunk).

    Args:
        source: a path, bytes or file object (see `audio_vit.data.audio_decoding.iter_audio_blocks`).
        max_seconds (`float`, *optional*): refuse (`AudioDecodeError`) recordings longer than this.
        Other arguments: as `classify_long_audio`.

    Raises `audio_vit.data.audio_decoding.AudioDecodeError` (a `ValueError`) naming the file when it cannot be read.
    """
    from ..data.audio_decoding import iter_audio_blocks

    return classify_blocks(
        model, feature_extractor,
        lambda: iter_audio_blocks(source, feature_extractor.sampling_rate, max_seconds=max_seconds),
        window_s, hop_s, aggregate, batch_size, top_k, **kwargs,
    )
