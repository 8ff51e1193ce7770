"""`build_datasets`: sources -> splits -> cached log-mel spectrograms + the training split's mean/std.

Nothing passed in is modified: the statistics come back in `PreparedData.report.normalization` and in
`PreparedData.feature_extractor`, a copy of the given extractor with `mean`/`std` set
(`AudioViTFeatureExtractor.with_statistics`).
"""
from __future__ import annotations

import copy

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import datasets
import numpy as np
from datasets.fingerprint import Hasher

from .arguments import DataArguments
from .preprocess import NOT_IN_FINGERPRINT, compute_spectrograms, dataset_statistics, feature_fingerprint
from .report import SUMMARY_NAME, DataError, DataReport, DecodeWarning, SkippedClip, raise_if_strict
from .manifest import Manifest
from .sources import build_manifest, is_plain_audio_folder
from .splits import assign_splits
from .iterable_dataset import hub_streaming_splits, streaming_split, streaming_statistics

logger = logging.getLogger(__name__)

# Special --data-dir value: find FSDD (FSDD_DIR, AUDIO_VIT_DATA_DIR, ../shared/data/fsdd, cache) or download it.
FSDD_DATA_DIR = "fsdd"
STATISTICS_NOTE = "training split, frames holding real audio (padding excluded)"


@dataclass
class PreparedData:
    """What training needs: the splits, the label names, the report and the fitted feature extractor."""

    splits: Union[datasets.DatasetDict, datasets.IterableDatasetDict]
    id2label: dict[int, str]
    report: DataReport
    feature_extractor: object
    streaming: bool = False
    extra: dict = field(default_factory=dict)
    multi_label: bool = False  # labels are multi-hot float vectors (BCE, mAP) instead of class ids

    @property
    def label2id(self) -> dict[str, int]:
        return {label: index for index, label in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    def save(self, output_dir: Union[str, Path], num_shards: Optional[dict[str, int]] = None,
             max_shard_size: str = "200MB") -> Path:
        """Write `save_to_disk` splits, `preprocessor_config.json` and `summary.json` to `output_dir`."""
        return save_prepared(self, output_dir, num_shards=num_shards, max_shard_size=max_shard_size)


def column_values(dataset: datasets.Dataset, name: str) -> list:
    """One column as a Python list (datasets 5 returns a lazy `Column` for `dataset[name]`)."""
    return dataset.with_format(None)[name][:]


def _durations(split: datasets.Dataset) -> dict[str, float]:
    values = np.asarray(column_values(split, "duration"), dtype=np.float64)
    if values.size == 0:
        return {"min": 0.0, "mean": 0.0, "max": 0.0, "total": 0.0}
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max()),
            "total": float(values.sum())}


def _count_labels(labels, id2label: dict[int, str]) -> dict[str, int]:
    """Clips per class; multi-label (multi-hot rows): clips carrying each label."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        counts = labels.sum(axis=0).round().astype(np.int64)
    else:
        counts = np.bincount(labels.astype(np.int64), minlength=len(id2label))
    return {id2label[i]: int(counts[i]) for i in range(len(id2label))}


def build_datasets(data_args: DataArguments, feature_extractor, process_index: int = 0,
                   num_processes: int = 1, unlabeled: bool = False) -> PreparedData:
    """Build train/validation/test spectrogram datasets and compute the training split's mean/std.

    Args:
        data_args (`DataArguments`): source, columns, split strategy, processing options.
        feature_extractor (`AudioViTFeatureExtractor`): its parameters define the spectrograms; it is not
            modified (the returned `PreparedData.feature_extractor` is a copy with the fitted `mean`/`std`).
        process_index (`int`, default 0), num_processes (`int`, default 1): streaming mode only, which share
            of each split this process reads.
        unlabeled (`bool`, default False): read no labels (`sources.build_manifest(unlabeled=True)`): every clip
            gets the label `manifest.UNLABELED`, for pretraining without labels; not with streaming.

    Returns:
        `PreparedData`; its splits have columns `input_values` (float16 (num_mel_bins, max_length) raw dB),
        `labels` (int, a ClassLabel; multi-label: a multi-hot float32 vector), `num_frames`, `duration`, `sampling_rate`, `file`, formatted as numpy.
    """
    if unlabeled and data_args.streaming:
        raise DataError("unlabeled data cannot be streamed; drop --streaming (spectrograms are then cached)")
    if (data_args.streaming and data_args.dataset and not _is_saved_dataset(data_args.dataset)
            and not is_plain_audio_folder(data_args.dataset)):
        return _build_hub_streaming(data_args, feature_extractor, process_index, num_processes)
    manifest = build_manifest(data_args, unlabeled=unlabeled)
    raise_if_strict(data_args.strict, manifest.skipped)
    split_rows, strategy = assign_splits(manifest, data_args)
    if "train" not in split_rows or len(split_rows["train"]) == 0:
        raise DataError(f"the {strategy!r} split left no training clips")
    report = DataReport(source=manifest.source, split_strategy=strategy, id2label=manifest.id2label,
                        skipped=list(manifest.skipped))
    label_ids = manifest.label_ids
    if data_args.streaming and manifest.multi_label:
        raise DataError("multi-label data cannot be streamed yet; drop --streaming (spectrograms are then cached)")
    if data_args.streaming:
        return _build_streaming(manifest, split_rows, label_ids, report, data_args, feature_extractor,
                                process_index, num_processes)

    # Clips are stored up to `max_clip_windows` model windows long: training crops a window, evaluation
    # averages all of them. The extractor that is returned keeps the model's window (`max_length`).
    storage_extractor = feature_extractor
    if data_args.max_clip_windows > 1:
        storage_extractor = copy.deepcopy(feature_extractor)
        storage_extractor.max_length = feature_extractor.max_length * data_args.max_clip_windows
    # One map over every clip some split uses (all of them unless max_clips subsets), so changing the
    # split strategy or seed reuses the same cache.
    used = np.unique(np.concatenate(list(split_rows.values())))
    if len(used) == len(manifest):
        audio, fingerprint = manifest.audio, manifest.fingerprint
    else:
        audio = manifest.audio.select(used)
        fingerprint = Hasher.hash({"manifest": manifest.fingerprint, "rows": used.tolist()})
    processed = compute_spectrograms(
        audio,
        label_ids=[label_ids[i] for i in used],
        files=[manifest.files[i] for i in used],
        label_names=manifest.label_names,
        feature_extractor=storage_extractor,
        source_fingerprint=fingerprint,
        cache_dir=data_args.cache_dir,
        num_proc=data_args.num_proc,
        batch_size=data_args.batch_size,
        strict=data_args.strict,
        multi_label=manifest.multi_label,
    )
    errors = column_values(processed, "error")
    position = {int(row): i for i, row in enumerate(used)}
    split_of_row = {int(row): name for name, rows in split_rows.items() for row in rows}
    for i, error in enumerate(errors):
        if error is not None:
            report.skipped.append(SkippedClip(manifest.files[int(used[i])], error, "decode", split_of_row.get(int(used[i]))))
    raise_if_strict(data_args.strict, report.skipped)
    for i, warning in enumerate(column_values(processed, "warning")):
        if warning is not None:  # decoded and kept, but the decoder library printed something
            report.decode_warnings.append(
                DecodeWarning(manifest.files[int(used[i])], warning, split_of_row.get(int(used[i]))))
    processed = processed.remove_columns(["error", "warning"])

    splits = datasets.DatasetDict()
    for name, rows in split_rows.items():
        keep = [position[int(row)] for row in rows if errors[position[int(row)]] is None]
        splits[name] = processed.select(keep)
    if len(splits["train"]) == 0:
        raise DataError("every training clip failed to decode: " + "; ".join(
            f"{c.file}: {c.reason}" for c in report.skipped[:5]))

    mean, std = dataset_statistics(splits["train"], valid_frames_only=True)
    _fill_report(report, splits, storage_extractor, mean, std)
    splits.set_format("numpy", columns=["input_values", "labels"], output_all_columns=True)
    return PreparedData(splits=splits, id2label=manifest.id2label, report=report,
                        feature_extractor=feature_extractor.with_statistics(mean, std),
                        multi_label=manifest.multi_label)


def _fill_report(report: DataReport, splits, feature_extractor, mean: float, std: float) -> None:
    max_samples = feature_extractor.samples_for(feature_extractor.max_length)
    for name, split in splits.items():
        report.counts[name] = _count_labels(column_values(split, "labels"), report.id2label)
        report.durations[name] = _durations(split)
        durations = np.asarray(column_values(split, "duration"), dtype=np.float64)
        report.truncated[name] = int((durations * feature_extractor.sampling_rate > max_samples + 0.5).sum())
        for rate, count in zip(*np.unique(np.asarray(column_values(split, "sampling_rate")), return_counts=True)):
            report.sampling_rates[int(rate)] = report.sampling_rates.get(int(rate), 0) + int(count)
    report.normalization = {"mean": mean, "std": std, "computed_on": STATISTICS_NOTE,
                            "feature_fingerprint": feature_fingerprint(feature_extractor)}


def _build_streaming(manifest: Manifest, split_rows, label_ids, report: DataReport, data_args: DataArguments,
                     feature_extractor, process_index: int, num_processes: int) -> PreparedData:
    num_shards = max(1, num_processes) * 8
    splits = datasets.IterableDatasetDict()
    for name, rows in split_rows.items():
        splits[name] = streaming_split(
            manifest.audio.select(rows),
            label_ids=[label_ids[i] for i in rows],
            files=[manifest.files[i] for i in rows],
            label_names=manifest.label_names,
            feature_extractor=feature_extractor,
            batch_size=min(data_args.batch_size, 64),
            num_shards=num_shards,
            shuffle_seed=data_args.seed if name == "train" else None,
            process_index=process_index,
            num_processes=num_processes,
            strict=data_args.strict,
        )
        report.counts[name] = _count_labels([label_ids[i] for i in rows], report.id2label)
    # Statistics from the first clips of the (unsharded, unshuffled) training stream: the same in every process.
    stats_stream = streaming_split(manifest.audio.select(split_rows["train"]),
                                   label_ids=[label_ids[i] for i in split_rows["train"]],
                                   files=[manifest.files[i] for i in split_rows["train"]],
                                   label_names=manifest.label_names, feature_extractor=feature_extractor,
                                   batch_size=min(data_args.batch_size, 64), num_shards=1)
    mean, std = streaming_statistics(stats_stream, max_clips=1000)
    report.normalization = {"mean": mean, "std": std, "computed_on": STATISTICS_NOTE + ", first 1000 clips",
                            "feature_fingerprint": feature_fingerprint(feature_extractor)}
    report.notes.append("streaming: counts are before decoding; clips that fail to decode are dropped and logged "
                        "while iterating")
    return PreparedData(splits=splits, id2label=manifest.id2label, report=report,
                        feature_extractor=feature_extractor.with_statistics(mean, std), streaming=True)


def _is_saved_dataset(dataset: str) -> bool:
    path = Path(dataset)
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def _build_hub_streaming(data_args: DataArguments, feature_extractor, process_index: int,
                         num_processes: int) -> PreparedData:
    """Streaming straight from `load_dataset(..., streaming=True)`: nothing is downloaded or listed up front."""
    splits, label_names, source, statistics_stream = hub_streaming_splits(data_args, feature_extractor,
                                                                          process_index, num_processes)
    id2label = dict(enumerate(label_names))
    mean, std = streaming_statistics(statistics_stream, max_clips=1000)
    report = DataReport(source=source, split_strategy="column (streamed)", id2label=id2label)
    report.normalization = {"mean": mean, "std": std, "computed_on": STATISTICS_NOTE + ", first 1000 clips",
                            "feature_fingerprint": feature_fingerprint(feature_extractor)}
    report.notes.append("streamed from load_dataset(streaming=True): counts are unknown before a full pass; "
                        "missing validation/test splits are carved by a hash of each clip's path (not stratified); "
                        "clips that fail to decode or have labels outside --labels are dropped and logged")
    return PreparedData(splits=splits, id2label=id2label, report=report,
                        feature_extractor=feature_extractor.with_statistics(mean, std), streaming=True)


def save_prepared(prepared: PreparedData, output_dir: Union[str, Path], num_shards: Optional[dict[str, int]] = None,
                  max_shard_size: str = "200MB") -> Path:
    """`audio-vit prepare`'s output: the DatasetDict (save_to_disk), preprocessor_config.json, summary.json."""
    if prepared.streaming:
        raise DataError("streaming datasets are decoded on the fly and cannot be saved; drop --streaming")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    splits = datasets.DatasetDict({name: split.with_format(None) for name, split in prepared.splits.items()})
    if num_shards:
        splits.save_to_disk(str(output_dir), num_shards=num_shards)
    else:
        splits.save_to_disk(str(output_dir), max_shard_size=max_shard_size)
    prepared.feature_extractor.save_pretrained(str(output_dir))
    (output_dir / SUMMARY_NAME).write_text(json.dumps(prepared.report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return output_dir


def load_prepared(path: Union[str, Path], feature_extractor=None) -> PreparedData:
    """Load an `audio-vit prepare` output folder (splits as numpy-formatted Datasets, fe with mean/std)."""
    path = Path(path)
    if not (path / "dataset_dict.json").exists():
        raise DataError(f"{path} is not an `audio-vit prepare` output folder (no dataset_dict.json); "
                        "run `audio-vit prepare --output-dir` first")
    splits = datasets.load_from_disk(str(path))
    from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

    saved = AudioViTFeatureExtractor.from_pretrained(str(path))
    if feature_extractor is None:
        feature_extractor = saved
    elif feature_fingerprint(feature_extractor) != feature_fingerprint(saved):
        ours, theirs = feature_extractor.to_dict(), saved.to_dict()
        differences = {k: (ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs))
                       if k not in NOT_IN_FINGERPRINT and ours.get(k) != theirs.get(k)}
        raise DataError(
            f"the spectrograms in {path} were computed with other feature parameters than the given feature "
            f"extractor's (given vs stored: {differences}); prepare the data again with this feature extractor"
        )
    first = next(iter(splits.values()))
    label_feature = first.features["labels"]
    multi_label = not isinstance(label_feature, datasets.ClassLabel)  # multi-hot vectors
    summary = path / SUMMARY_NAME
    report = DataReport.from_dict(json.loads(summary.read_text(encoding="utf-8"))) if summary.exists() else None
    if multi_label:
        if report is None:
            raise DataError(f"{path} holds multi-label data but no {SUMMARY_NAME} with the label names")
        id2label = {int(k): v for k, v in report.id2label.items()}
    else:
        id2label = dict(enumerate(label_feature.names))
    report = report or DataReport(source=str(path), id2label=id2label)
    splits.set_format("numpy", columns=["input_values", "labels"], output_all_columns=True)
    return PreparedData(splits=splits, id2label=id2label, report=report, feature_extractor=feature_extractor,
                        multi_label=multi_label)


def resolve_data_dir(data_args: DataArguments) -> DataArguments:
    """Check the data options; `--data-dir fsdd` (with no ./fsdd folder) -> the located or downloaded FSDD folder.

    Returns a copy of `data_args`; raises `ValueError` when no data is given, `FileNotFoundError` for a
    `--data-dir` that does not exist.
    """
    if not data_args.data_dir and not data_args.dataset:
        raise ValueError(
            "no data: pass --data-dir DIR (metadata CSV or one folder per class; 'fsdd' finds FSDD), "
            "--dataset NAME, or --prepared-data-dir DIR"
        )
    if data_args.data_dir == FSDD_DATA_DIR and not Path(FSDD_DATA_DIR).is_dir():
        from .fsdd import ensure_fsdd

        return dataclasses.replace(data_args, data_dir=str(ensure_fsdd()))
    if data_args.data_dir and not Path(data_args.data_dir).exists():
        raise FileNotFoundError(f"--data-dir {data_args.data_dir!r} does not exist")
    return data_args
