"""Audio -> cached log-mel "images" with `datasets.map`, and the training-set mean/std.

The cache stores raw log-mel dB (`do_normalize=False`) as float16 `Array2D((num_mel_bins, max_length))`:
normalization is applied on the fly from `feature_extractor.mean/std`, so recomputing the statistics never
invalidates the cache. The map's fingerprint (and cache file name) is a hash of the source manifest (files,
sizes, mtimes, labels), the feature extractor's parameters (except mean/std/do_normalize) and
`CACHE_VERSION`; the same inputs reuse the cache, a changed feature parameter recomputes it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import datasets
import numpy as np
from datasets.fingerprint import Hasher

from ..models.audio_vit.audio_utils import resample, to_mono
from .audio_decoding import AudioDecodeError, check_waveform, decode_audio, describe_source
from .report import DataError

logger = logging.getLogger(__name__)

# Bump when the stored columns or the decoding change meaning, so old caches are not reused.
CACHE_VERSION = "2"  # 2: the "warning" column (what the decoder printed)
# Parameters that do not change the stored raw dB values.
NOT_IN_FINGERPRINT = ("mean", "std", "do_normalize", "return_attention_mask", "processor_class", "feature_extractor_type",
                       "auto_map")


def feature_fingerprint(feature_extractor) -> str:
    """Hash of everything in the feature extractor that changes the stored spectrograms."""
    params = {k: v for k, v in feature_extractor.to_dict().items() if k not in NOT_IN_FINGERPRINT}
    return Hasher.hash({"params": params, "cache_version": CACHE_VERSION})


def spectrogram_features(feature_extractor, label_names: list[str], multi_label: bool = False) -> datasets.Features:
    """The cached columns; `labels` is a ClassLabel id, or (multi-label) a multi-hot float32 vector."""
    labels = (datasets.Sequence(datasets.Value("float32"), length=len(label_names)) if multi_label
              else datasets.ClassLabel(names=list(label_names)))
    return datasets.Features({
        "input_values": datasets.Array2D(shape=(feature_extractor.num_mel_bins, feature_extractor.max_length),
                                         dtype="float16"),
        "labels": labels,
        "num_frames": datasets.Value("int32"),  # frames holding real audio (the rest is padding)
        "duration": datasets.Value("float32"),  # seconds, before truncation
        "sampling_rate": datasets.Value("int32"),  # of the original file
        "file": datasets.Value("string"),
        "error": datasets.Value("string"),  # None, or why the clip was skipped (filtered out after the map)
        "warning": datasets.Value("string"),  # None, or what the decoder printed for a clip it did decode
    })


class SpectrogramMapper:
    """Batched `datasets.map` function: {"audio", "labels", "file"} -> spectrogram columns.

    Unusable clips keep their row with a zero spectrogram and an `error` message (so skips are cached and
    reported too); `strict=True` raises on the first one instead.
    """

    def __init__(self, feature_extractor, strict: bool = False):
        self.feature_extractor = feature_extractor
        self.strict = strict
        self._parent_pid = os.getpid()

    def __call__(self, batch: dict) -> dict:
        if os.getpid() != self._parent_pid:
            # A forked datasets worker inherits the parent's OpenMP state; torch ops there can hang once the
            # parent has used its thread pool. One thread per worker avoids that (the workers are the parallelism).
            import torch

            if torch.get_num_threads() != 1:
                torch.set_num_threads(1)
        fe = self.feature_extractor
        size = len(batch["audio"])
        values = np.zeros((size, fe.num_mel_bins, fe.max_length), dtype=np.float16)
        num_frames = np.zeros(size, dtype=np.int32)
        durations = np.zeros(size, dtype=np.float32)
        rates = np.zeros(size, dtype=np.int32)
        errors: list[Optional[str]] = [None] * size
        warnings: list[Optional[str]] = [None] * size
        waveforms, rows = [], []
        for i, source in enumerate(batch["audio"]):
            try:
                decoded = decode_audio(source)
                waveform = to_mono(check_waveform(decoded.waveform, describe_source(source)))
                waveform = resample(waveform, decoded.sampling_rate, fe.sampling_rate)
            except AudioDecodeError as error:
                if self.strict:
                    raise DataError(f"{batch['file'][i]}: {error.reason} (--strict)") from error
                errors[i] = error.reason
                continue
            rates[i] = decoded.sampling_rate
            if decoded.warnings:  # captured (libsndfile/mpg123 print to the terminal otherwise), reported later
                warnings[i] = " | ".join(decoded.warnings)
            durations[i] = decoded.duration
            waveforms.append(waveform)
            rows.append(i)
        if waveforms:
            features = fe(waveforms, sampling_rate=fe.sampling_rate, padding="max_length", truncation=True,
                          max_length=fe.max_length, do_normalize=False, return_attention_mask=True,
                          return_tensors="np")
            values[rows] = features["input_values"].astype(np.float16)  # (b, num_mel_bins, max_length)
            num_frames[rows] = features["attention_mask"].sum(axis=1)
        return {
            "input_values": values,
            "labels": batch["labels"],
            "num_frames": num_frames,
            "duration": durations,
            "sampling_rate": rates,
            "file": batch["file"],
            "error": errors,
            "warning": warnings,
        }


def default_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / "audio_vit"


def compute_spectrograms(
    audio: datasets.Dataset,
    label_ids: list,
    files: list[str],
    label_names: list[str],
    feature_extractor,
    source_fingerprint: str,
    cache_dir: Optional[str] = None,
    num_proc: Optional[int] = None,
    batch_size: int = 128,
    strict: bool = False,
    multi_label: bool = False,
) -> datasets.Dataset:
    """Run `SpectrogramMapper` over `audio` (column "audio") with a fingerprint-keyed cache file.

    `label_ids`: a class id per clip, or with `multi_label=True` a multi-hot list (num_labels floats) per clip.
    """
    fingerprint = Hasher.hash({"source": source_fingerprint, "features": feature_fingerprint(feature_extractor),
                               "labels": label_names, "multi_label": multi_label})
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_root.mkdir(parents=True, exist_ok=True)
    cache_file = cache_root / f"spectrograms-{fingerprint}.arrow"
    table = audio.select_columns(["audio"])
    table = table.add_column("labels", list(label_ids)).add_column("file", list(files))
    num_proc = num_proc if num_proc and num_proc > 1 and len(table) >= 2 * num_proc else None
    return table.map(
        SpectrogramMapper(feature_extractor, strict=strict),
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        remove_columns=table.column_names,
        features=spectrogram_features(feature_extractor, label_names, multi_label),
        new_fingerprint=fingerprint,
        cache_file_name=str(cache_file),
        load_from_cache_file=True,
        writer_batch_size=500,
        desc="log-mel spectrograms",
    )


def dataset_statistics(dataset: datasets.Dataset, valid_frames_only: bool = True, batch_size: int = 512) -> tuple[float, float]:
    """Mean and std of the stored dB values: over the frames holding real audio (`num_frames`), or all frames.

    Valid frames only (the default) keeps the statistics independent of how much padding `max_length` adds.
    """
    total, total_sq, count = 0.0, 0.0, 0
    view = dataset.select_columns(["input_values", "num_frames"]).with_format("numpy")
    for start in range(0, len(view), batch_size):
        batch = view[start:start + batch_size]
        values = batch["input_values"].astype(np.float64)  # (b, num_mel_bins, max_length)
        if valid_frames_only:
            mask = np.arange(values.shape[2])[None, :] < batch["num_frames"][:, None]  # (b, max_length)
            mask = np.broadcast_to(mask[:, None, :], values.shape)
            selected = values[mask]
        else:
            selected = values.reshape(-1)
        total += selected.sum()
        total_sq += np.square(selected).sum()
        count += selected.size
    if count == 0:
        raise DataError("cannot compute normalization statistics: the training split has no audio frames")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return float(mean), max(std, 1e-5)


def remove_cache_files(cache_dir: Optional[str] = None) -> int:
    """Delete cached spectrogram files; returns how many were removed."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    removed = 0
    for path in root.glob("spectrograms-*.arrow"):
        os.remove(path)
        removed += 1
    return removed
