"""Streaming mode: IterableDatasets decoded on the fly, sharded so that processes read each clip once."""
from collections import Counter

import datasets
import numpy as np
import pytest
import soundfile

from audio_vit import AudioViTFeatureExtractor
from audio_vit.data import DataArguments, build_datasets, shard_for_process


def small_fe():
    return AudioViTFeatureExtractor(num_mel_bins=16, max_length=32)


def _files(stream):
    return [str(example["file"]) for example in stream]


def test_two_ranks_see_every_example_exactly_once(fsdd_dir, tmp_path):
    args = DataArguments(data_dir=str(fsdd_dir), streaming=True, max_clips=24, cache_dir=str(tmp_path / "cache"))
    single = build_datasets(args, small_fe())
    assert single.streaming and isinstance(single.splits["train"], datasets.IterableDataset)
    everything = _files(single.splits["train"])
    assert len(everything) == 24 == len(set(everything))

    seen = Counter()
    for rank in range(2):
        shard = build_datasets(args, small_fe(), process_index=rank, num_processes=2).splits["train"]
        rank_files = _files(shard)
        assert 0 < len(rank_files) < 24
        seen.update(rank_files)
    assert set(seen) == set(everything) and set(seen.values()) == {1}


def test_streamed_examples_match_the_cached_ones(fsdd_dir, tmp_path):
    common = dict(data_dir=str(fsdd_dir), max_clips=6, cache_dir=str(tmp_path / "cache"))
    streamed = build_datasets(DataArguments(streaming=True, **common), small_fe())
    cached = build_datasets(DataArguments(**common), small_fe())
    by_file = {str(example["file"]): example for example in streamed.splits["test"]}
    for example in cached.splits["test"]:
        other = by_file[example["file"]]
        np.testing.assert_array_equal(np.asarray(other["input_values"]), example["input_values"])
        assert int(other["labels"]) == int(example["labels"])
    assert streamed.feature_extractor.std > 0 and streamed.report.counts["test"]


def test_stream_drops_bad_files_and_shards_uneven_counts(tmp_path):
    for i in range(5):
        t = np.arange(2400) / 8000
        soundfile.write(tmp_path / f"c{i}.wav", (0.2 * np.sin(2 * np.pi * (300 + 50 * i) * t)).astype(np.float32), 8000)
    (tmp_path / "c5.wav").write_bytes(b"broken" * 30)
    (tmp_path / "metadata.csv").write_text(
        "file_name,label,split\n" + "".join(f"c{i}.wav,{'ab'[i % 2]},train\n" for i in range(6))
    )
    prepared = build_datasets(DataArguments(data_dir=str(tmp_path), streaming=True, validation_fraction=0.0,
                                            test_fraction=0.0), small_fe())
    assert sorted(_files(prepared.splits["train"])) == [f"c{i}.wav" for i in range(5)]
    stream = datasets.Dataset.from_dict({"i": list(range(7))}).to_iterable_dataset(num_shards=3)
    parts = [[e["i"] for e in shard_for_process(stream, rank, 2)] for rank in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(7))
    with pytest.raises(ValueError, match="process_index=2"):
        shard_for_process(stream, 2, 2)


def test_streaming_a_parquet_dataset_without_downloading_it_first(tmp_path):
    """`--dataset` + `--streaming` goes through load_dataset(streaming=True) (Hub ids too); Audio read with decode=False."""
    import io

    audio_column = []
    for i in range(8):
        buffer = io.BytesIO()
        t = np.arange(3200) / 16000
        soundfile.write(buffer, (0.2 * np.sin(2 * np.pi * (200 + 300 * (i % 2)) * t)).astype(np.float32), 16000,
                        format="WAV")
        audio_column.append({"bytes": buffer.getvalue(), "path": f"clip{i}.wav"})
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=["low", "high"])})
    data = datasets.Dataset.from_dict({"audio": audio_column, "label": [i % 2 for i in range(8)]}, features=features)
    data = data.cast_column("audio", datasets.Audio())
    (tmp_path / "hub").mkdir()
    data.select(range(6)).to_parquet(str(tmp_path / "hub" / "train-00000-of-00001.parquet"))
    data.select(range(6, 8)).to_parquet(str(tmp_path / "hub" / "test-00000-of-00001.parquet"))

    prepared = build_datasets(DataArguments(dataset=str(tmp_path / "hub"), streaming=True, validation_fraction=0.5),
                              small_fe())
    assert prepared.streaming and prepared.id2label == {0: "low", 1: "high"}
    files = {name: _files(split) for name, split in prepared.splits.items()}
    assert sorted(files["test"]) == ["clip6.wav", "clip7.wav"]
    assert sorted(files["train"] + files["validation"]) == [f"clip{i}.wav" for i in range(6)]
    assert not set(files["train"]) & set(files["validation"])
    example = next(iter(prepared.splits["test"]))
    assert example["input_values"].shape == (16, 32) and int(example["labels"]) == 0
    assert "clip counts unknown" in prepared.report.format_table()
