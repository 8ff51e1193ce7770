"""Streaming mode: decode on the fly into `datasets.IterableDataset`s (no spectrogram cache on disk).

For data larger than memory or the disk cache. Each split is sharded (`num_shards`, a multiple of the number of
processes) and `split_dataset_by_node` gives every training process its own shards, so the processes together
read each example exactly once per epoch. Clips that fail to decode are dropped on the fly and logged (the
summary of a streaming run can only list metadata-stage skips up front).
"""
from __future__ import annotations

import logging
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
    stream = stream.map(
        SpectrogramMapper(feature_extractor, strict=strict),
        batched=True,
        batch_size=batch_size,
        remove_columns=["audio"],
        features=spectrogram_features(feature_extractor, label_names),
    )
    stream = stream.filter(_drop_errors, input_columns=["error", "file"])
    stream = stream.remove_columns(["error"])
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
