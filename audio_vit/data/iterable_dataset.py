"""Streaming mode: decode on the fly into `datasets.IterableDataset`s (no spectrogram cache on disk).

For data larger than memory or the disk cache. Each split is sharded (`num_shards`, a multiple of the number of
processes) and `split_dataset_by_node` gives every training process its own shards, so the processes together
read each example exactly once per epoch. Clips that fail to decode are dropped on the fly and logged (the
summary of a streaming run can only list metadata-stage skips up front).
"""
from __future__ import annotations

import logging
import zlib
from typing import Optional

import datasets
import numpy as np
from datasets.distributed import split_dataset_by_node

from .preprocess import SpectrogramMapper, dataset_statistics, spectrogram_features

logger = logging.getLogger(__name__)


def _drop_errors(error: Optional[str], file: str) -> bool:
    if error is not None:
        logger.warning("skipping %s: %s", file, error)
        return False
    return True


def streaming_split(
    audio: datasets.Dataset,
    label_ids: list[int],
    files: list[str],
    label_names: list[str],
    feature_extractor,
    batch_size: int = 64,
    num_shards: int = 8,
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 1000,
    process_index: int = 0,
    num_processes: int = 1,
    strict: bool = False,
) -> datasets.IterableDataset:
    """One split as an IterableDataset of {"input_values", "labels", "num_frames", ...}, this process's share."""
    table = audio.select_columns(["audio"]).add_column("labels", list(label_ids)).add_column("file", list(files))
    num_shards = max(1, min(len(table), num_shards))
    stream = table.to_iterable_dataset(num_shards=num_shards)
    return spectrogram_stream(stream, label_names, feature_extractor, batch_size, shuffle_seed, shuffle_buffer,
                              process_index, num_processes, strict)


def spectrogram_stream(
    stream: datasets.IterableDataset,
    label_names: list[str],
    feature_extractor,
    batch_size: int = 64,
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 1000,
    process_index: int = 0,
    num_processes: int = 1,
    strict: bool = False,
) -> datasets.IterableDataset:
    """{"audio", "labels", "file"} stream -> spectrogram stream (bad clips dropped), shuffled, this process's share."""
    stream = stream.map(
        SpectrogramMapper(feature_extractor, strict=strict),
        batched=True,
        batch_size=batch_size,
        remove_columns=["audio"],
        features=spectrogram_features(feature_extractor, label_names),
    )
    stream = stream.filter(_drop_errors, input_columns=["error", "file"])
    stream = stream.remove_columns(["error", "warning"])
    if shuffle_seed is not None:
        stream = stream.shuffle(seed=shuffle_seed, buffer_size=shuffle_buffer)
    if num_processes > 1:
        stream = shard_for_process(stream, process_index, num_processes)
    return stream.with_format("numpy")


def shard_for_process(stream: datasets.IterableDataset, process_index: int, num_processes: int) -> datasets.IterableDataset:
    """This process's part of `stream` (`datasets.distributed.split_dataset_by_node`): whole shards when
    `num_shards % num_processes == 0`, else every `num_processes`-th example."""
    if not 0 <= process_index < num_processes:
        raise ValueError(f"process_index={process_index} must be in [0, {num_processes})")
    return split_dataset_by_node(stream, rank=process_index, world_size=num_processes)


class _HashSplit:
    """Filter keeping the clips whose path hashes into (inside=True) or out of a `fraction` of 1000 buckets:
    the same clip lands on the same side in every process and every epoch."""

    def __init__(self, salt: str, fraction: float, inside: bool):
        self.salt, self.limit, self.inside = salt, int(round(fraction * 1000)), inside

    def __call__(self, example) -> bool:
        bucket = zlib.crc32(f"{self.salt}:{example['file']}".encode("utf-8")) % 1000
        return (bucket < self.limit) == self.inside


def hub_streaming_splits(args, feature_extractor, process_index: int = 0, num_processes: int = 1):
    """Stream a Hub dataset (or a local parquet/csv folder) with `load_dataset(..., streaming=True)`: nothing is
    downloaded up front. Uses the dataset's own splits; a missing validation (or test) split is carved by a hash
    of each clip's path (`validation_fraction` / `test_fraction` of the clips, not stratified).

    Returns (IterableDatasetDict of spectrogram streams, label_names, source description, statistics stream).
    """
    from .report import DataError
    from .hub_source import find_audio_column, load_hf_dataset
    from .manifest import DEFAULT_LABEL_COLUMNS, normalize_split_name, pick_column

    loaded, source = load_hf_dataset(args, streaming=True)
    parts = dict(loaded) if isinstance(loaded, datasets.IterableDatasetDict) else {"train": loaded}
    first = next(iter(parts.values()))
    features = first.features
    if features is not None:
        audio_col = find_audio_column(features, args.audio_column, source)
        label_col = pick_column(list(features), args.label_column, DEFAULT_LABEL_COLUMNS, "label", "--label-column",
                                 source)
        label_feature = features[label_col]
    else:
        audio_col, label_col, label_feature = args.audio_column or "audio", args.label_column or "label", None
    if isinstance(label_feature, datasets.ClassLabel):
        label_names = list(label_feature.names)
    elif args.label_set:
        label_names = sorted(args.label_set)
    else:
        raise DataError(f"streaming {source}: its label column {label_col!r} is not a ClassLabel, so the label set is "
                        "unknown before reading everything; pass --labels a,b,c")
    label2id = {name: i for i, name in enumerate(label_names)}
    class_label = isinstance(label_feature, datasets.ClassLabel)

    def standardize(example):
        audio = example[audio_col]
        name = audio.get("path") if isinstance(audio, dict) else str(audio)
        label = example[label_col]
        label_id = int(label) if class_label else label2id.get(str(label), -1)
        return {"audio": audio, "labels": label_id, "file": name or ""}

    def known_label(example):
        if example["labels"] < 0:
            logger.warning("skipping %s: label not in --labels", example["file"])
            return False
        return True

    raw = {}
    for split_name, part in parts.items():
        name = normalize_split_name(split_name, f"{source} split names")
        if part.features is not None and isinstance(part.features.get(audio_col), datasets.Audio):
            part = part.cast_column(audio_col, datasets.Audio(decode=False))  # decoded by audio_vit.data.audio_decoding
        columns = list(part.features) if part.features is not None else None
        raw[name] = part.map(standardize, remove_columns=columns).filter(known_label)
    if "train" not in raw:
        raise DataError(f"{source} has no training split (splits: {', '.join(parts)})")
    for carved, fraction, salt in (("test", args.test_fraction, "test"), ("validation", args.validation_fraction, "validation")):
        if carved in raw or fraction <= 0:
            continue
        pool = raw["train"]
        raw[carved] = pool.filter(_HashSplit(salt, fraction, inside=True))
        raw["train"] = pool.filter(_HashSplit(salt, fraction, inside=False))
    splits = datasets.IterableDatasetDict()
    for name in ("train", "validation", "test"):
        if name in raw:
            splits[name] = spectrogram_stream(raw[name], label_names, feature_extractor,
                                              batch_size=min(args.batch_size, 64),
                                              shuffle_seed=args.seed if name == "train" else None,
                                              process_index=process_index, num_processes=num_processes,
                                              strict=args.strict)
    statistics_stream = spectrogram_stream(raw["train"], label_names, feature_extractor,
                                           batch_size=min(args.batch_size, 64))
    return splits, label_names, source, statistics_stream


def streaming_statistics(stream: datasets.IterableDataset, max_clips: int = 1000) -> tuple[float, float]:
    """mean/std (valid frames) from the first `max_clips` clips of a (training) stream."""
    taken = list(stream.take(max_clips))
    if not taken:
        raise ValueError("the training stream is empty; cannot compute normalization statistics")
    table = datasets.Dataset.from_dict({
        "input_values": [np.asarray(example["input_values"], dtype=np.float32) for example in taken],
        "num_frames": [int(example["num_frames"]) for example in taken],
    })
    return dataset_statistics(table)
