"""Split strategies on FSDD's metadata: stratified random, k-fold from a fold column, group-disjoint, max_clips."""
import csv
from collections import Counter

import numpy as np
import pytest

from audio_vit.data import DataArguments, DataError, build_manifest
from audio_vit.data.splits import assign_splits, check_disjoint, stratified_fraction, stratified_subset


@pytest.fixture(scope="module")
def fsdd_manifest(fsdd_dir):
    return build_manifest(DataArguments(data_dir=str(fsdd_dir)))


def _sizes(splits):
    return {name: len(rows) for name, rows in splits.items()}


def test_stratified_random_64_16_20(fsdd_manifest):
    args = DataArguments(data_dir="unused", split_strategy="random", test_fraction=0.2, validation_fraction=0.2, seed=3)
    splits, strategy = assign_splits(fsdd_manifest, args)
    assert strategy == "random"
    assert _sizes(splits) == {"train": 1920, "validation": 480, "test": 600}
    check_disjoint(splits)
    labels = np.array(fsdd_manifest.labels)
    for name, per_class in (("train", 192), ("validation", 48), ("test", 60)):
        assert set(Counter(labels[splits[name]]).values()) == {per_class}
    again, _ = assign_splits(fsdd_manifest, args)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)  # same seed, same split
    other, _ = assign_splits(fsdd_manifest, DataArguments(data_dir="unused", split_strategy="random", seed=4))
    assert not np.array_equal(splits["test"], other["test"])
    # 80/20, no validation
    eighty, _ = assign_splits(fsdd_manifest, DataArguments(data_dir="unused", split_strategy="random",
                                                           validation_fraction=0.0))
    assert _sizes(eighty) == {"train": 2400, "test": 600}


@pytest.fixture(scope="module")
def fsdd_with_folds(fsdd_dir, tmp_path_factory):
    """FSDD metadata with a `fold` column made from the take index (index % 5 + 1) and absolute paths."""
    out = tmp_path_factory.mktemp("folds")
    with open(fsdd_dir / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["fold"] = str(int(row["index"]) % 5 + 1)
        row["file_name"] = str(fsdd_dir / row["file_name"])
        del row["split"]
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_kfold_from_fold_column(fsdd_with_folds):
    args = DataArguments(data_dir=str(fsdd_with_folds), test_fold="2")
    manifest = build_manifest(args)
    splits, strategy = assign_splits(manifest, args)
    assert strategy == "kfold"
    assert _sizes(splits) == {"train": 2160, "validation": 240, "test": 600}
    assert {manifest.folds[i] for i in splits["test"]} == {"2"}
    assert "2" not in {manifest.folds[i] for i in splits["train"]} | {manifest.folds[i] for i in splits["validation"]}
    check_disjoint(splits)

    with_fold, _ = assign_splits(manifest, DataArguments(data_dir="x", split_strategy="kfold", test_fold="5",
                                                         validation_fold="1"))
    assert _sizes(with_fold) == {"train": 1800, "validation": 600, "test": 600}
    assert {manifest.folds[i] for i in with_fold["validation"]} == {"1"}
    with pytest.raises(DataError, match="needs --test-fold, one of: 1, 2, 3, 4, 5"):
        assign_splits(manifest, DataArguments(data_dir="x", split_strategy="kfold"))
    with pytest.raises(DataError, match="test_fold='9' is not a fold"):
        assign_splits(manifest, DataArguments(data_dir="x", split_strategy="kfold", test_fold="9"))


def test_group_disjoint_speakers(fsdd_with_folds):
    args = DataArguments(data_dir=str(fsdd_with_folds), group_column="speaker", test_fraction=0.2,
                         validation_fraction=0.25)
    manifest = build_manifest(args)
    splits, strategy = assign_splits(manifest, args)
    assert strategy == "group"
    check_disjoint(splits, groups=manifest.groups)
    speakers = {name: {manifest.groups[i] for i in rows} for name, rows in splits.items()}
    assert set().union(*speakers.values()) == set(manifest.groups)  # 6 speakers, each in exactly one split
    assert all(speakers.values())
    # stratified: every digit appears in every split (each speaker says every digit)
    labels = np.array(manifest.labels)
    assert all(len(set(labels[rows])) == 10 for rows in splits.values())


def test_group_column_on_fsdd_overrides_the_official_split(fsdd_dir):
    """FSDD's official split shares speakers between train and test; asking for --group-column gives a
    speaker-disjoint split unless --split-column (or --split-strategy column) says otherwise."""
    args = DataArguments(data_dir=str(fsdd_dir), group_column="speaker")
    manifest = build_manifest(args)
    splits, strategy = assign_splits(manifest, args)
    assert strategy == "group"
    check_disjoint(splits, groups=manifest.groups)
    official = DataArguments(data_dir=str(fsdd_dir), group_column="speaker", split_column="split")
    splits, strategy = assign_splits(manifest, official)
    assert strategy == "column" and len(splits["test"]) == 300
    # the validation carved from the official train split is still speaker-disjoint from the rest of train
    check_disjoint({"train": splits["train"], "validation": splits["validation"]}, groups=manifest.groups)


def test_max_clips_is_stratified_and_deterministic(fsdd_manifest):
    args = DataArguments(data_dir="x", max_clips=50)
    splits, _ = assign_splits(fsdd_manifest, args)
    assert _sizes(splits) == {"train": 50, "validation": 50, "test": 50}
    labels = np.array(fsdd_manifest.labels)
    assert set(Counter(labels[splits["test"]]).values()) == {5}
    again, _ = assign_splits(fsdd_manifest, args)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)


def test_split_helpers():
    labels = ["a"] * 10 + ["b"] * 20
    rest, taken = stratified_fraction(np.arange(30), labels, 0.1, seed=0)
    assert len(taken) == 3 and len(rest) == 27 and Counter(labels[i] for i in taken) == {"a": 1, "b": 2}
    subset = stratified_subset(np.arange(30), labels, 7, seed=0)
    assert len(subset) == 7 and Counter(labels[i] for i in subset) == {"a": 2, "b": 5}
