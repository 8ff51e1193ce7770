"""Train / validation / test assignment of manifest rows: the source's own split column, stratified random
fractions, k-fold from a fold column, or group-disjoint (no speaker in two splits).

Every function returns `{"train": indices, "validation": indices, "test": indices}` (sorted int arrays, absent
splits omitted) and is deterministic for a given seed. When the source has no validation split, one is carved
from train (stratified by label, group-disjoint when a group column is given), so validation is never the test set.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import numpy as np

from .arguments import DataArguments
from .report import DataError
from .manifest import Manifest

SPLIT_ORDER = ("train", "validation", "test")


def _sorted(indices) -> np.ndarray:
    return np.sort(np.asarray(list(indices), dtype=np.int64))


def stratified_fraction(indices: np.ndarray, labels: Sequence, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (rest, taken) where `taken` holds round(fraction * n_c) clips of every class c."""
    rng = np.random.default_rng(seed)
    by_class: dict = defaultdict(list)
    for index in indices:
        by_class[labels[index]].append(index)
    taken = []
    for label in sorted(by_class, key=str):
        members = np.array(by_class[label])
        count = int(round(fraction * len(members)))
        taken.extend(rng.permutation(members)[:count].tolist())
    taken_set = set(taken)
    rest = [i for i in indices if i not in taken_set]
    return _sorted(rest), _sorted(taken)


def random_fraction(indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (rest, taken), `taken` being round(fraction * n) clips drawn at random."""
    shuffled = np.random.default_rng(seed).permutation(np.asarray(indices))
    count = int(round(fraction * len(shuffled)))
    return _sorted(shuffled[count:]), _sorted(shuffled[:count])


def stratified_subset(indices: np.ndarray, labels: Sequence, size: int, seed: int) -> np.ndarray:
    """At most `size` of `indices`, class proportions kept (largest-remainder allocation), deterministic."""
    if len(indices) <= size:
        return _sorted(indices)
    rng = np.random.default_rng(seed)
    by_class: dict = defaultdict(list)
    for index in indices:
        by_class[labels[index]].append(index)
    classes = sorted(by_class, key=str)
    exact = np.array([size * len(by_class[c]) / len(indices) for c in classes])
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]:
        quota[i] += 1
    chosen = []
    for label, count in zip(classes, quota):
        chosen.extend(rng.permutation(np.array(by_class[label]))[:count].tolist())
    return _sorted(chosen)


def group_fraction(indices: np.ndarray, labels: Sequence, groups: Sequence, fraction: float, seed: int,
                   stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (rest, taken) with no group on both sides; `taken` is about `fraction` of the clips.

    stratify=True uses sklearn's StratifiedGroupKFold (class proportions kept as far as groups allow) and takes
    one fold; otherwise GroupShuffleSplit.
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    indices = np.asarray(indices)
    group_values = np.array([groups[i] for i in indices])
    label_values = np.array([str(labels[i]) for i in indices])
    unique_groups = np.unique(group_values)
    if len(unique_groups) < 2:
        raise DataError(f"a group-disjoint split needs at least 2 groups, found {len(unique_groups)} "
                        f"({', '.join(map(str, unique_groups))})")
    if stratify:
        n_splits = int(min(max(2, round(1 / fraction)), len(unique_groups)))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, taken = next(iter(folds.split(indices, label_values, group_values)))
    else:
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, taken = next(iter(splitter.split(indices, label_values, group_values)))
    return _sorted(indices[rest]), _sorted(indices[taken])


def _stratify(manifest: Manifest, args: DataArguments) -> bool:
    # Multi-label clips have a label *combination* each; most combinations are too rare to stratify on.
    return args.stratify and not manifest.multi_label


def _carve_validation(splits: dict, manifest: Manifest, args: DataArguments) -> dict:
    """Validation from train when the source has none (stratified; group-disjoint with a group column)."""
    if "validation" in splits or args.validation_fraction <= 0 or "train" not in splits:
        return splits
    if manifest.groups is not None:
        train, validation = group_fraction(splits["train"], manifest.labels, manifest.groups,
                                           args.validation_fraction, args.seed + 1, _stratify(manifest, args))
    elif _stratify(manifest, args):
        train, validation = stratified_fraction(splits["train"], manifest.labels, args.validation_fraction, args.seed + 1)
    else:
        train, validation = random_fraction(splits["train"], args.validation_fraction, args.seed + 1)
    splits = dict(splits, train=train)
    if len(validation):
        splits["validation"] = validation
    return splits


def resolve_strategy(manifest: Manifest, args: DataArguments) -> str:
    """"auto": what the user asked for explicitly wins over what the data happens to contain: --test-fold ->
    kfold, --group-column (without --split-column) -> group, else the source's split column, else random."""
    if args.split_strategy != "auto":
        return args.split_strategy
    if manifest.folds is not None and args.test_fold is not None:
        return "kfold"
    if manifest.groups is not None and args.group_column and not args.split_column:
        return "group"
    if manifest.splits is not None:
        return "column"
    return "random"


def assign_splits(manifest: Manifest, args: DataArguments) -> tuple[dict[str, np.ndarray], str]:
    """Manifest rows per split and the strategy used (see module docstring)."""
    strategy = resolve_strategy(manifest, args)
    everything = np.arange(len(manifest))
    if strategy == "column":
        if manifest.splits is None:
            raise DataError("split_strategy='column' but the source has no split column or named splits; "
                            "pass --split-column or choose random/kfold/group")
        splits = {name: _sorted(i for i, s in enumerate(manifest.splits) if s == name) for name in SPLIT_ORDER}
        splits = {name: rows for name, rows in splits.items() if len(rows)}
        if "train" not in splits:
            raise DataError(f"the split column has no training rows (found: {', '.join(splits)})")
        if "test" not in splits and args.test_fraction > 0:
            if manifest.groups is not None:
                train, test = group_fraction(splits["train"], manifest.labels, manifest.groups,
                                             args.test_fraction, args.seed, _stratify(manifest, args))
            elif _stratify(manifest, args):
                train, test = stratified_fraction(splits["train"], manifest.labels, args.test_fraction, args.seed)
            else:
                train, test = random_fraction(splits["train"], args.test_fraction, args.seed)
            splits.update(train=train, test=test)
    elif strategy == "random":
        if _stratify(manifest, args):
            train, test = stratified_fraction(everything, manifest.labels, args.test_fraction, args.seed)
        else:
            train, test = random_fraction(everything, args.test_fraction, args.seed)
        splits = {"train": train, "test": test} if len(test) else {"train": train}
    elif strategy == "kfold":
        if manifest.folds is None:
            raise DataError("split_strategy='kfold' needs a fold column (--fold-column)")
        folds = sorted(set(manifest.folds), key=lambda f: (len(f), f))
        if args.test_fold is None:
            raise DataError(f"split_strategy='kfold' needs --test-fold, one of: {', '.join(folds)}")
        for option, fold in (("test_fold", args.test_fold), ("validation_fold", args.validation_fold)):
            if fold is not None and str(fold) not in folds:
                raise DataError(f"{option}={fold!r} is not a fold of the data; folds found: {', '.join(folds)}")
        test_fold, validation_fold = str(args.test_fold), args.validation_fold
        if validation_fold is not None and str(validation_fold) == test_fold:
            raise DataError(f"validation_fold={validation_fold!r} must differ from test_fold={test_fold!r}")
        splits = {"test": _sorted(i for i, f in enumerate(manifest.folds) if f == test_fold)}
        if validation_fold is not None:
            splits["validation"] = _sorted(i for i, f in enumerate(manifest.folds) if f == str(validation_fold))
        used = set(splits["test"].tolist()) | set(splits.get("validation", np.array([])).tolist())
        splits["train"] = _sorted(i for i in everything if i not in used)
    elif strategy == "group":
        if manifest.groups is None:
            raise DataError("split_strategy='group' needs --group-column")
        train, test = group_fraction(everything, manifest.labels, manifest.groups, args.test_fraction, args.seed,
                                     _stratify(manifest, args))
        splits = {"train": train, "test": test}
    else:
        raise DataError(f"unknown split strategy {strategy!r}")
    splits = _carve_validation(splits, manifest, args)
    if args.max_clips is not None:
        splits = {name: stratified_subset(rows, manifest.labels, args.max_clips, args.seed)
                  for name, rows in splits.items()}
    return {name: splits[name] for name in SPLIT_ORDER if name in splits}, strategy


def check_disjoint(splits: dict[str, np.ndarray], groups: Optional[Sequence] = None) -> None:
    """Assert no row (and, with `groups`, no group) is in two splits."""
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not set(splits[a].tolist()) & set(splits[b].tolist()), f"{a} and {b} share rows"
            if groups is not None:
                shared = {groups[k] for k in splits[a]} & {groups[k] for k in splits[b]}
                assert not shared, f"{a} and {b} share groups {sorted(shared)[:5]}"
