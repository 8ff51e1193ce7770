"""Cross-validation folds of a dataset: taken from a fold column, or made (stratified, group-disjoint).

    manifest = build_manifest(data_args)
    folds = assign_folds(manifest, num_folds=5, seed=42)        # list of fold ids, one per manifest row
    write_folds_csv(manifest, folds, "out/folds.csv")            # what every model of a run trains on

The folds CSV (file_name = absolute audio path, label, fold[, group]) is the single record of which clip is in
which fold: `cross-validate` and `compare` train every model on it, so all models see the same folds, and a
re-run reuses it instead of drawing new folds.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

FOLDS_CSV_NAME = "folds.csv"
FOLDS_COLUMNS = ("file_name", "label", "fold", "group")


def sort_folds(folds: Sequence[str]) -> list[str]:
    """Distinct fold ids in a stable order ("2" before "10")."""
    return sorted(set(folds), key=lambda f: (len(f), f))


def make_folds(labels: Sequence[str], num_folds: int, groups: Optional[Sequence[str]] = None, seed: int = 42,
               stratify: bool = True) -> list[str]:
    """Fold id ("1".."k") of every row: stratified by label, and group-disjoint when `groups` is given.

    Args:
        labels (sequence of str): class of each row.
        num_folds (int): k, at least 2.
        groups (sequence of str, optional, default None): rows sharing a value (e.g. a speaker) land in one fold.
        seed (int, default 42): shuffling seed.
        stratify (bool, default True): keep class proportions per fold (StratifiedKFold / StratifiedGroupKFold);
            False uses KFold / GroupKFold.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    if num_folds < 2:
        raise ValueError(f"num_folds={num_folds}: cross-validation needs at least 2 folds")
    labels = np.array([str(label) for label in labels])
    if len(labels) < num_folds:
        raise ValueError(f"num_folds={num_folds} is more than the {len(labels)} clips of the dataset")
    if groups is not None:
        groups = np.array([str(group) for group in groups])
        distinct = np.unique(groups)
        if len(distinct) < num_folds:
            raise ValueError(f"num_folds={num_folds} group-disjoint folds need at least {num_folds} groups; the "
                             f"group column has {len(distinct)} ({', '.join(distinct[:10])})")
        splitter = (StratifiedGroupKFold(num_folds, shuffle=True, random_state=seed) if stratify
                    else GroupKFold(num_folds))
    else:
        smallest = min(np.unique(labels, return_counts=True)[1])
        if stratify and smallest < num_folds:
            raise ValueError(f"num_folds={num_folds} stratified folds need every class to have at least "
                             f"{num_folds} clips; the smallest class has {smallest} (lower --num-folds)")
        splitter = (StratifiedKFold(num_folds, shuffle=True, random_state=seed) if stratify
                    else KFold(num_folds, shuffle=True, random_state=seed))
    folds = np.empty(len(labels), dtype=object)
    for index, (_, test_rows) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        folds[test_rows] = str(index + 1)
    return folds.tolist()


def assign_folds(manifest, num_folds: Optional[int] = None, seed: int = 42, stratify: bool = True) -> list[str]:
    """The manifest's own fold column when it has one (and `num_folds` is None), else `make_folds` (grouped by
    the manifest's group column when it has one)."""
    if manifest.folds is not None and num_folds is None:
        folds = [str(fold) for fold in manifest.folds]
        if len(set(folds)) < 2:
            raise ValueError(f"the fold column of {manifest.source} has {len(set(folds))} distinct value(s) "
                             f"({', '.join(sorted(set(folds)))}); cross-validation needs at least 2")
        return folds
    if num_folds is None:
        raise ValueError(f"{manifest.source} has no fold column: pass --fold-column NAME or --num-folds K")
    return make_folds(manifest.labels, num_folds, manifest.groups, seed, stratify)


def check_folds(folds: Sequence[str], groups: Optional[Sequence[str]] = None) -> None:
    """Raise if a group (e.g. a speaker) appears in two folds: its clips would leak from training into test."""
    if groups is None:
        return
    fold_of: dict[str, str] = {}
    for fold, group in zip(folds, groups):
        if fold_of.setdefault(group, fold) != fold:
            raise ValueError(f"group {group!r} is in folds {fold_of[group]!r} and {fold!r}: the given folds are not "
                             "group-disjoint (drop --group-column or fix the fold column)")


def write_folds_csv(manifest, folds: Sequence[str], path) -> Path:
    """Write file_name (absolute path), label, fold and group of every manifest row to `path`."""
    audio = manifest.audio.with_format(None)["audio"][:]
    if any(not isinstance(entry, str) for entry in audio):
        raise ValueError(f"{manifest.source} holds its audio in memory (no file paths); cross-validation of such a "
                         "dataset is not supported: export it to a folder with a metadata CSV first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = manifest.groups or [""] * len(folds)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FOLDS_COLUMNS)
        for row in zip(audio, manifest.labels, folds, groups):
            writer.writerow([str(Path(row[0]).resolve()), *row[1:]])
    return path


def read_folds_csv(path) -> dict[str, list[str]]:
    """The columns of a folds CSV written by `write_folds_csv`."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != FOLDS_COLUMNS:
            raise ValueError(f"{path} is not a folds CSV: header {reader.fieldnames}, expected {list(FOLDS_COLUMNS)}")
        rows = list(reader)
    return {column: [row[column] for row in rows] for column in FOLDS_COLUMNS}
