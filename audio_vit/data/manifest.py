"""The manifest every source becomes (`Manifest`: audio references + label/split/fold/group lists) and what the
readers of `sources.py` and `hub_source.py` share: default column names, picking a column, split names, multi-label
cells, and `finish_manifest` (the label filter, the label order, the fingerprint)."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Optional

import datasets
from datasets.fingerprint import Hasher

from .arguments import DataArguments
from .report import DataError, SkippedClip

SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "development": "validation",
    "test": "test", "testing": "test", "eval": "test", "evaluation": "test",
}
DEFAULT_AUDIO_COLUMNS = ("file_name", "filename", "file", "path", "audio")
DEFAULT_LABEL_COLUMNS = ("label", "labels", "class", "category")
# The one label of every clip of an unlabeled manifest (`build_manifest(args, unlabeled=True)`).
UNLABELED = "unlabeled"


@dataclass
class Manifest:
    """Every usable clip of a source, in a fixed order (row i of each list belongs to `audio[i]`)."""

    audio: datasets.Dataset  # column "audio": a path string or an {"bytes", "path"} dict
    files: list[str]  # how a clip is named in reports
    labels: list[str]  # multi-label: the clip's labels in id order joined by "," (a key for stratified splits)
    label_names: list[str]  # id order: id2label = dict(enumerate(label_names))
    label_sets: Optional[list[list[str]]] = None  # multi-label only: the labels of every clip
    splits: Optional[list[str]] = None  # normalized to train/validation/test
    folds: Optional[list[str]] = None
    groups: Optional[list[str]] = None
    skipped: list[SkippedClip] = field(default_factory=list)
    source: str = ""
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multi_label(self) -> bool:
        return self.label_sets is not None

    @property
    def label_ids(self) -> list:
        """Class id of every clip; multi-label: a multi-hot float list (num_labels) per clip."""
        index = {name: i for i, name in enumerate(self.label_names)}
        if self.label_sets is None:
            return [index[label] for label in self.labels]
        hot = []
        for labels in self.label_sets:
            row = [0.0] * len(self.label_names)
            for label in labels:
                row[index[label]] = 1.0
            hot.append(row)
        return hot

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))


def sort_labels(labels) -> list[str]:
    """Sorted label names; all-integer names sort numerically ("2" before "10")."""
    unique = set(labels)
    if unique and all(re.fullmatch(r"-?\d+", label) for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def normalize_split_name(value: str, where: str) -> str:
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataError(
            f"split value {value!r} in {where} is not a known split name; accepted: "
            + ", ".join(sorted(SPLIT_ALIASES))
        )
    return SPLIT_ALIASES[key]


def pick_column(columns, requested: Optional[str], defaults, role: str, option: str, where: str, required=True):
    if requested:
        if requested not in columns:
            raise DataError(
                f"{where} has no {role} column {requested!r} (columns found: {', '.join(columns)}); "
                f"pass {option} with one of them"
            )
        return requested
    for name in defaults:
        if name in columns:
            return name
    if required:
        raise DataError(
            f"{where} has no {role} column (looked for {', '.join(defaults)}; columns found: {', '.join(columns)}); "
            f"pass {option} NAME to say which column holds it"
        )
    return None


def is_multi_label(labels: list, args: DataArguments) -> bool:
    """`--multi-label` when given, else whether some label cell is a list or contains `--label-separator`."""
    lists = any(isinstance(label, (list, tuple)) for label in labels)
    if args.multi_label is False and lists:
        raise DataError("the label column holds lists of labels (multi-label data) but --multi-label false was given")
    if args.multi_label is not None:
        return args.multi_label
    return lists or any(isinstance(label, str) and args.label_separator in label for label in labels)


def split_label_cell(cell, separator: str) -> list[str]:
    """One clip's labels: a list, or a string like "dog,bark"; stripped, empty parts and repeats dropped."""
    parts = cell if isinstance(cell, (list, tuple)) else ("" if cell is None else str(cell)).split(separator)
    return list(dict.fromkeys(str(part).strip() for part in parts if str(part).strip()))


def finish_manifest(manifest_rows: dict, args: DataArguments, skipped: list[SkippedClip], source: str,
            audio: datasets.Dataset | None = None, label_names: Optional[list[str]] = None,
            fingerprint_parts=(), unlabeled: bool = False) -> Manifest:
    """Apply the label filter, fix the label order and fingerprint the manifest (`unlabeled`: every clip gets the
    label `UNLABELED`, nothing is filtered)."""
    if unlabeled:
        manifest_rows = dict(manifest_rows, labels=[UNLABELED] * len(manifest_rows["files"]))
        args, label_names = dataclasses.replace(args, labels=None, multi_label=False), None
    allowed = args.label_set
    multi_label = is_multi_label(manifest_rows["labels"], args)
    label_sets = [split_label_cell(cell, args.label_separator) for cell in manifest_rows["labels"]] if multi_label else None
    keep = []
    for i, label in enumerate(manifest_rows["labels"]):
        clip_labels = label_sets[i] if multi_label else [label]
        outside = [x for x in clip_labels if allowed is not None and x not in allowed]
        if label is None or not clip_labels or str(clip_labels[0]).strip() == "":
            skipped.append(SkippedClip(manifest_rows["files"][i], "empty label", "metadata"))
        elif outside:
            skipped.append(SkippedClip(
                manifest_rows["files"][i], f"label {outside[0]!r} is not in --labels ({','.join(allowed)})", "metadata"
            ))
        else:
            keep.append(i)
    rows = {key: ([values[i] for i in keep] if values is not None else None) for key, values in manifest_rows.items()}
    if multi_label:
        label_sets = [label_sets[i] for i in keep]
    if not keep:
        raise DataError(f"no usable clips in {source} ({len(skipped)} skipped: "
                        + "; ".join(f"{clip.file}: {clip.reason}" for clip in skipped[:5]) + ")")
    if audio is None:
        audio = datasets.Dataset.from_dict({"audio": rows["audio"]})
    elif len(keep) != len(audio):
        audio = audio.select(keep)
    every_label = [x for labels in label_sets for x in labels] if multi_label else rows["labels"]
    if label_names is None:
        label_names = sort_labels([*every_label, *(allowed or [])])
    else:
        missing = sorted(set(every_label) - set(label_names))
        if missing:
            raise DataError(f"labels {missing} are not among the dataset's label names {label_names}")
    if multi_label:
        order = {name: i for i, name in enumerate(label_names)}
        label_sets = [sorted(labels, key=order.__getitem__) for labels in label_sets]
        rows["labels"] = [",".join(labels) for labels in label_sets]
    hasher = Hasher()
    hasher.update(source)
    for part in fingerprint_parts:
        hasher.update(part)
    hasher.update(rows["files"])
    hasher.update(rows["labels"])
    hasher.update(label_names)
    hasher.update(multi_label)
    return Manifest(
        audio=audio,
        files=rows["files"],
        labels=rows["labels"],
        label_names=label_names,
        label_sets=label_sets,
        splits=rows.get("splits"),
        folds=rows.get("folds"),
        groups=rows.get("groups"),
        skipped=skipped,
        source=source,
        fingerprint=hasher.hexdigest(),
    )
