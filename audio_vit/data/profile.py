"""What a dataset looks like before any spectrogram is computed: clip count, classes, native rates, durations.

The profile is read from file headers (no decoding, milliseconds per clip) and drives the data-derived
defaults of `audio_vit.training.auto_recipe`. A clip whose header cannot be read (MP3 inside WAV, a Hub
dataset's raw bytes in an odd container) is decoded once instead; one that cannot be decoded either is left
out of the profile (the data report lists it when the spectrograms are computed).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from .audio_decoding import AudioDecodeError, audio_info, decode_audio

# Headers of this many clips (spread over the dataset) are enough to describe rates and durations.
MAX_PROFILED_CLIPS = 2000


@dataclass
class DataProfile:
    """Summary of a dataset's clips.

    Attributes:
        num_clips (`int`): usable clips profiled (the training recipe leaves the test split out).
        class_counts (`dict[str, int]`): clips per label.
        sampling_rates (`dict[int, int]`): clips per native sampling rate (of the profiled clips).
        duration_percentiles (`dict[str, float]`): p10/p50/p90/p99/max duration in seconds (profiled clips).
        profiled_clips (`int`): how many clips the rates and durations were read from.
    """

    num_clips: int
    class_counts: dict[str, int]
    sampling_rates: dict[int, int]
    duration_percentiles: dict[str, float]
    profiled_clips: int

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    @property
    def median_sampling_rate(self) -> int:
        rates = sorted(rate for rate, count in self.sampling_rates.items() for _ in range(count))
        return int(rates[len(rates) // 2]) if rates else 16000

    @property
    def imbalance_ratio(self) -> float:
        """Largest class size / smallest class size (1.0 for a balanced dataset)."""
        counts = [count for count in self.class_counts.values() if count > 0]
        return max(counts) / min(counts) if counts else 1.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sampling_rates"] = {str(rate): count for rate, count in self.sampling_rates.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DataProfile":
        """The inverse of `to_dict` (JSON keys are strings: the rates become ints again)."""
        return cls(num_clips=int(data["num_clips"]), class_counts=dict(data["class_counts"]),
                   sampling_rates={int(rate): int(count) for rate, count in data["sampling_rates"].items()},
                   duration_percentiles={k: float(v) for k, v in data["duration_percentiles"].items()},
                   profiled_clips=int(data["profiled_clips"]))

    def format(self) -> str:
        p = self.duration_percentiles
        rates = ", ".join(f"{rate} Hz: {count}" for rate, count in sorted(self.sampling_rates.items()))
        return (f"{self.num_clips} clips, {self.num_classes} classes (largest/smallest {self.imbalance_ratio:.1f}x); "
                f"durations p10 {p['p10']:.2f} s, median {p['p50']:.2f} s, p90 {p['p90']:.2f} s, "
                f"max {p['max']:.2f} s; native rates {rates} (from {self.profiled_clips} clip headers)")


def _clip_rate_and_duration(source) -> tuple[int, float] | None:
    info = audio_info(source)
    if info.get("sampling_rate") and info.get("frames", -1) > 0:
        return info["sampling_rate"], info["duration"]
    try:
        decoded = decode_audio(source)
    except AudioDecodeError:
        return None
    return decoded.sampling_rate, decoded.duration


def profile_sources(audio_sources: list, labels: list[str], max_clips: int = MAX_PROFILED_CLIPS) -> DataProfile:
    """Profile clips given as audio sources (paths, `{"bytes", "path"}` dicts) with their labels.

    Rates and durations come from at most `max_clips` clips spread evenly over the list.
    """
    if not audio_sources:
        raise ValueError("cannot profile an empty dataset: no clips were found")
    picked = np.unique(np.linspace(0, len(audio_sources) - 1, min(max_clips, len(audio_sources))).astype(int))
    rates: Counter = Counter()
    durations = []
    for index in picked:
        found = _clip_rate_and_duration(audio_sources[int(index)])
        if found is None:
            continue
        rates[int(found[0])] += 1
        durations.append(found[1])
    if not durations:
        raise ValueError("no clip of the dataset could be read to profile it; check the files with `audio-vit prepare`")
    return DataProfile(
        num_clips=len(audio_sources),
        class_counts=dict(sorted(Counter(labels).items())),
        sampling_rates=dict(sorted(rates.items())),
        duration_percentiles=duration_percentiles(durations),
        profiled_clips=len(durations),
    )


def duration_percentiles(durations) -> dict[str, float]:
    """p10/p50/p90/p99/max of clip durations in seconds (the summary the data-derived window is chosen from)."""
    values = np.asarray(durations, dtype=np.float64)
    percentiles = {f"p{q}": float(np.percentile(values, q)) for q in (10, 50, 90, 99)}
    percentiles["max"] = float(values.max())
    return percentiles


def profile_manifest(manifest, rows=None) -> DataProfile:
    """Profile a `Manifest` (every usable clip of a source, see `audio_vit.data.sources`), or only its `rows`
    (indices; the training recipe passes every clip but the test split's)."""
    from .build import column_values

    audio, labels = column_values(manifest.audio, "audio"), manifest.labels
    if rows is not None:
        audio, labels = [audio[int(i)] for i in rows], [labels[int(i)] for i in rows]
    return profile_sources(audio, labels)


__all__ = ["DataProfile", "profile_sources", "profile_manifest", "duration_percentiles", "MAX_PROFILED_CLIPS"]
