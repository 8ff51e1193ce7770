"""Multi-label data: a `labels` column with several labels per clip -> multi-hot targets; the FSDD mixture builder."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from audio_vit import AudioViTFeatureExtractor
from audio_vit.data import DataArguments, DataError, SpectrogramCollator, build_datasets, build_manifest, load_prepared
from audio_vit.data.fsdd_mix import build_fsdd_mixtures, mix_pair
from audio_vit.data.splits import assign_splits, check_disjoint
from test_data_sources import write_tone


def write_multilabel_csv(root, rows, header=("file_name", "labels", "split")):
    for row in rows:
        write_tone(root / row[0], freq=300.0 + 100 * len(row[1]))
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return root


ROWS = [("a.wav", "dog,bark", "train"), ("b.wav", "cat", "train"), ("c.wav", " bark , cat ,bark", "train"),
        ("d.wav", "dog", "test"), ("e.wav", "", "train")]


def test_labels_column_with_separator_is_multi_label(tmp_path):
    write_multilabel_csv(tmp_path, ROWS)
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path)))
    assert manifest.multi_label
    assert manifest.label_names == ["bark", "cat", "dog"]
    assert manifest.label_sets == [["bark", "dog"], ["cat"], ["bark", "cat"], ["dog"]]  # stripped, deduplicated
    assert manifest.label_ids[0] == [1.0, 0.0, 1.0]
    assert [clip.file for clip in manifest.skipped] == ["e.wav"] and "empty label" in manifest.skipped[0].reason


def test_other_column_and_separator_and_explicit_flag(tmp_path):
    rows = [(name, labels.replace(",", ";"), split) for name, labels, split in ROWS[:4]]
    write_multilabel_csv(tmp_path, rows, header=("path", "tags", "split"))
    args = DataArguments(data_dir=str(tmp_path), audio_column="path", label_column="tags", label_separator=";")
    assert build_manifest(args).label_sets[0] == ["bark", "dog"]
    # --multi-label false: the cell is one label, separator or not
    single = build_manifest(DataArguments(data_dir=str(tmp_path), audio_column="path", label_column="tags",
                                          multi_label=False))
    assert not single.multi_label and "dog;bark" in single.label_names
    # --multi-label on data where no cell has two labels still gives multi-hot targets
    forced = build_manifest(DataArguments(data_dir=str(tmp_path), audio_column="path", label_column="tags",
                                          multi_label=True, label_separator="|"))
    assert forced.multi_label and forced.label_sets[0] == ["dog;bark"]
    with pytest.raises(ValueError, match="label_separator"):
        DataArguments(data_dir=str(tmp_path), label_separator="")


def test_label_filter_skips_clips_with_a_label_outside_labels(tmp_path):
    write_multilabel_csv(tmp_path, ROWS[:4])
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path), labels="dog,cat"))
    assert manifest.label_names == ["cat", "dog"]
    assert {clip.file: clip.reason for clip in manifest.skipped}.keys() == {"a.wav", "c.wav"}
    assert "'bark' is not in --labels" in manifest.skipped[0].reason


def test_multi_hot_targets_reach_the_collator_and_survive_prepare(tmp_path):
    write_multilabel_csv(tmp_path / "data", ROWS[:4])
    fe = AudioViTFeatureExtractor(num_mel_bins=16, max_length=32)
    prepared = build_datasets(DataArguments(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                                            validation_fraction=0.0), fe)
    assert prepared.multi_label and prepared.num_labels == 3
    assert prepared.report.counts["train"] == {"bark": 2, "cat": 2, "dog": 1}
    batch = SpectrogramCollator(fe)([prepared.splits["train"][i] for i in range(3)])
    assert batch["labels"].dtype.is_floating_point and batch["labels"].tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    prepared.save(tmp_path / "prepared")
    loaded = load_prepared(tmp_path / "prepared")
    assert loaded.multi_label and loaded.id2label == {0: "bark", 1: "cat", 2: "dog"}
    assert np.asarray(loaded.splits["test"][0]["labels"]).tolist() == [0, 0, 1]


def test_single_label_data_is_unchanged(tmp_path):
    write_multilabel_csv(tmp_path, [("a.wav", "dog", "train"), ("b.wav", "cat", "test")], header=("file_name", "label", "split"))
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path)))
    assert not manifest.multi_label and manifest.label_sets is None and manifest.label_ids == [1, 0]


def test_multi_label_refuses_streaming(tmp_path):
    write_multilabel_csv(tmp_path, ROWS[:4])
    with pytest.raises(DataError, match="multi-label data cannot be streamed"):
        build_datasets(DataArguments(data_dir=str(tmp_path), streaming=True), AudioViTFeatureExtractor())


def test_mix_pair_peaks_and_offset():
    first, second = np.ones(100, np.float32) * 0.5, -np.ones(50, np.float32) * 0.1
    mixture = mix_pair(first, second, offset=80)
    assert len(mixture) == 130 and np.abs(mixture).max() == pytest.approx(0.9)
    assert mixture[0] == pytest.approx(0.9) and mixture[85] == pytest.approx(0.0)  # 1 - 1 where both play


def test_fsdd_mixtures_keep_the_official_split_and_two_labels(fsdd_dir, tmp_path):
    csv_path = build_fsdd_mixtures(fsdd_dir, tmp_path / "mix", {"train": 24, "test": 8}, seed=1)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 32 and {row["split"] for row in rows} == {"train", "test"}
    assert all(len(row["labels"].split(",")) == 2 for row in rows)
    assert build_fsdd_mixtures(fsdd_dir, tmp_path / "again", {"train": 24, "test": 8}, seed=1).read_text() == csv_path.read_text()
    args = DataArguments(data_dir=str(tmp_path / "mix"), group_column="speakers", split_column="split")
    manifest = build_manifest(args)
    assert manifest.multi_label and manifest.label_names == [str(d) for d in range(10)] and not manifest.skipped
    splits, strategy = assign_splits(manifest, args)
    assert strategy == "column" and len(splits["test"]) == 8 and len(splits["validation"]) > 0
    check_disjoint(splits)
    with pytest.raises(DataError, match="does not have"):
        build_fsdd_mixtures(fsdd_dir, tmp_path / "bad", {"dev": 3})
