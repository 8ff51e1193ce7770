"""Cross-validation folds: made stratified, made group-disjoint, taken from a column; the split each fold's
training gets (validation never from the test fold, never sharing a group with training)."""
import csv
from collections import Counter

import numpy as np
import pytest

from audio_vit.data import DataArguments, build_manifest
from audio_vit.data.splits import assign_splits, check_disjoint
from audio_vit.comparison.folds import assign_folds, check_folds, make_folds, read_folds_csv, write_folds_csv
from audio_vit.comparison.models import FoldContext, training_argv
from audio_vit.training import parse_training_args


def test_stratified_folds_keep_class_proportions():
    labels = [str(i % 3) for i in range(60)]  # 20 clips per class
    folds = make_folds(labels, 5, seed=1)
    assert sorted(Counter(folds).values()) == [12] * 5
    for fold in set(folds):
        assert Counter(label for label, f in zip(labels, folds) if f == fold) == {"0": 4, "1": 4, "2": 4}
    assert folds == make_folds(labels, 5, seed=1)  # deterministic
    assert folds != make_folds(labels, 5, seed=2)


def test_group_folds_are_group_disjoint_and_cover_every_row():
    labels = [str(i % 4) for i in range(120)]
    groups = [f"speaker{i % 7}" for i in range(120)]
    folds = make_folds(labels, 3, groups=groups, seed=0)
    assert set(folds) == {"1", "2", "3"} and len(folds) == 120
    check_folds(folds, groups)  # raises on a shared group
    for group in set(groups):
        assert len({f for f, g in zip(folds, groups) if g == group}) == 1


def test_fold_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 5 groups; the group column has 2"):
        make_folds(["a", "b"] * 10, 5, groups=["x", "y"] * 10)
    with pytest.raises(ValueError, match="smallest class has 2"):
        make_folds(["a"] * 10 + ["b"] * 2, 3)
    with pytest.raises(ValueError, match="at least 2 folds"):
        make_folds(["a", "b"], 1)
    with pytest.raises(ValueError, match="group 'x' is in folds '1' and '2'"):
        check_folds(["1", "2"], ["x", "x"])


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def small_fsdd(fsdd_dir, tmp_path_factory):
    """48 real FSDD clips: digits 0-3, speakers george/jackson/lucas/theo, takes 0-2, fold = take + 1."""
    out = tmp_path_factory.mktemp("small_fsdd")
    rows = [{"file_name": str(fsdd_dir / "recordings" / f"{digit}_{speaker}_{take}.flac"), "label": str(digit),
             "speaker": speaker, "fold": str(take + 1)}
            for digit in range(4) for speaker in ("george", "jackson", "lucas", "theo") for take in range(3)]
    write_csv(out / "metadata.csv", rows)
    return out


def test_given_fold_column_is_used(small_fsdd):
    manifest = build_manifest(DataArguments(data_dir=str(small_fsdd), fold_column="fold"))
    folds = assign_folds(manifest)
    assert folds == manifest.folds and Counter(folds) == {"1": 16, "2": 16, "3": 16}
    with open(small_fsdd / "metadata.csv", newline="") as handle:
        rows = [{k: v for k, v in row.items() if k != "fold"} for row in csv.DictReader(handle)]
    write_csv(small_fsdd / "no_folds.csv", rows)
    no_column = build_manifest(DataArguments(data_dir=str(small_fsdd), metadata_file="no_folds.csv"))
    with pytest.raises(ValueError, match="no fold column: pass --fold-column NAME or --num-folds K"):
        assign_folds(no_column)


def test_each_fold_trains_with_validation_outside_test_and_group_disjoint(small_fsdd, tmp_path):
    """The splits the package's training builds from the folds CSV: test = the fold, validation carved from
    the other folds, no speaker in two of train / validation / test."""
    manifest = build_manifest(DataArguments(data_dir=str(small_fsdd), group_column="speaker"))
    folds = assign_folds(manifest, num_folds=4, seed=0)
    folds_csv = write_folds_csv(manifest, folds, tmp_path / "folds.csv")
    table = read_folds_csv(folds_csv)
    assert table["fold"] == folds and table["group"] == manifest.groups
    context = FoldContext(folds_csv=folds_csv, label_names=["0", "1", "2", "3"], has_groups=True)
    for test_fold in sorted(set(folds)):
        _, data_args, _, _ = parse_training_args(training_argv("vit", context, test_fold, 42, tmp_path / "m"))
        fold_manifest = build_manifest(data_args)
        splits, strategy = assign_splits(fold_manifest, data_args)
        assert strategy == "kfold" and set(splits) == {"train", "validation", "test"}
        check_disjoint(splits, fold_manifest.groups)
        assert {fold_manifest.folds[i] for i in splits["test"]} == {test_fold}
        assert test_fold not in {fold_manifest.folds[i] for i in splits["validation"]}
        assert sum(len(rows) for rows in splits.values()) == 48


def test_vit_plain_is_the_package_training_with_the_plain_defaults(tmp_path):
    """`vit-plain` (the recipe before data-derived defaults) trains like `vit` on the same folds, with --recipe none."""
    context = FoldContext(folds_csv=tmp_path / "folds.csv", label_names=["a", "b"], has_groups=False)
    plain = training_argv("vit-plain", context, "2", 42, tmp_path / "m")
    assert plain[:-2] == training_argv("vit", context, "2", 42, tmp_path / "m")[:-2]  # the same but the last flags
    assert training_argv("vit", context, "2", 42, tmp_path / "m")[-2:] == ["--route", "scratch"]
    assert plain[-2:] == ["--recipe", "none"]
    assert parse_training_args(plain)[3].recipe == "none"
    assert parse_training_args(training_argv("vit", context, "2", 42, tmp_path / "m"))[3].recipe == "auto"


def test_fold_training_keeps_a_flag_whose_value_is_the_plain_default(tmp_path, monkeypatch):
    """`cross-validate ... --stem patch` must train the patch stem: the derived recipe (conv stem) may not
    replace a flag the user gave only because its value equals the dataclass default."""
    import audio_vit.training as training
    from audio_vit.comparison.models import _run_package_training

    seen = {}

    def fake_train(*arguments, explicit=None):
        seen["explicit"] = explicit
        return {"finished": False}

    monkeypatch.setattr(training, "train_with_route", fake_train)
    context = FoldContext(folds_csv=tmp_path / "folds.csv", label_names=["a", "b"], has_groups=False,
                          train_flags=["--stem", "patch", "--patch-size", "64", "2"])
    with pytest.raises(RuntimeError, match="without test results"):
        _run_package_training("vit", context, "2", 42, tmp_path / "run")
    assert {"stem", "patch_size"} <= seen["explicit"]
