"""Turn any of the three supported inputs into one `Manifest`: audio references + label/split/fold/group lists.

1. A folder with a metadata CSV (audiofolder convention `file_name,label[,split,fold,speaker,...]`; other
   column names map through `audio_column`/`label_column`/..., e.g. UrbanSound8K's
   `slice_file_name,classID,fold` with `audio_subdir_template="audio/fold{fold}"`).
2. A class-per-subfolder folder (label = folder name), optionally under `train/`, `validation/`, `test/` folders.
3. A Hugging Face dataset id or a `save_to_disk` folder; its `Audio` column is read with `decode=False`
   and decoded by `audio_vit.data.audio_decoding` (no torchcodec/FFmpeg needed).

Nothing is decoded here; inputs that are already known to be unusable (missing files, labels outside
`--labels`, empty labels) are listed in `Manifest.skipped` with a reason.

`build_manifest(args, unlabeled=True)` (what `audio-vit pretrain` reads) needs no labels: every clip gets the one
label `UNLABELED`, a CSV or Hub dataset may have no label column, and a folder without a CSV gives every audio file
below it, at any depth (a label column or class folders, when present, are not read).

Over 400 lines because it holds one reader per input kind above (and the unlabeled folder reader) and their shared
column mapping; split further, each reader would import the others' helpers.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
from datasets.fingerprint import Hasher

from .audio_decoding import AUDIO_EXTENSIONS
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


def _pick_column(columns, requested: Optional[str], defaults, role: str, option: str, where: str, required=True):
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


def _finish(manifest_rows: dict, args: DataArguments, skipped: list[SkippedClip], source: str,
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


def _file_signature(paths: list[str]) -> list[tuple]:
    """(size, mtime) of every file: an edited file must not reuse a stale spectrogram."""
    signature = []
    for path in paths:
        stat = os.stat(path)
        signature.append((stat.st_size, stat.st_mtime_ns))
    return signature


class _BasenameIndex:
    """Finds `name` anywhere below `root` (built once, on the first miss), for CSVs that omit subfolders."""

    def __init__(self, root: Path):
        self.root = root
        self._index: Optional[dict[str, list[Path]]] = None

    def find(self, name: str) -> list[Path]:
        if self._index is None:
            self._index = {}
            for dirpath, _, filenames in os.walk(self.root):
                for filename in filenames:
                    self._index.setdefault(filename, []).append(Path(dirpath) / filename)
        return self._index.get(Path(name).name, [])


def read_metadata_csv(args: DataArguments, unlabeled: bool = False) -> Manifest:
    """Source 1: a folder + metadata CSV (`unlabeled`: no label column is read)."""
    data_dir = Path(args.data_dir).resolve()  # one spelling of the path -> one cache fingerprint
    csv_path = Path(args.metadata_file) if args.metadata_file else data_dir / "metadata.csv"
    if not csv_path.is_absolute() and not csv_path.exists():
        csv_path = data_dir / csv_path
    csv_path = csv_path.resolve()
    if not csv_path.exists():
        raise DataError(f"metadata file {csv_path} not found")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        rows = list(reader)
    where = str(csv_path)
    if not columns:
        raise DataError(f"{where} is empty (no header row)")
    audio_col = _pick_column(columns, args.audio_column, DEFAULT_AUDIO_COLUMNS, "audio file", "--audio-column", where)
    label_col = None if unlabeled else _pick_column(columns, args.label_column, DEFAULT_LABEL_COLUMNS, "label",
                                                    "--label-column", where)
    split_col = _pick_column(columns, args.split_column, ("split",), "split", "--split-column", where, required=False)
    fold_col = _pick_column(columns, args.fold_column, ("fold",), "fold", "--fold-column", where, required=False)
    group_col = _pick_column(columns, args.group_column, (), "group", "--group-column", where, required=False)
    if args.split_strategy == "kfold" and fold_col is None:
        raise DataError(f"split_strategy='kfold' needs a fold column; {where} has {', '.join(columns)}: pass --fold-column")
    if args.split_strategy == "group" and group_col is None:
        raise DataError(f"split_strategy='group' needs --group-column (one of {', '.join(columns)})")

    index = _BasenameIndex(data_dir)
    manifest_rows = {"audio": [], "files": [], "labels": [], "splits": [] if split_col else None,
                     "folds": [] if fold_col else None, "groups": [] if group_col else None}
    skipped: list[SkippedClip] = []
    for line, row in enumerate(rows, start=2):
        name = (row.get(audio_col) or "").strip()
        if not name:
            skipped.append(SkippedClip(f"{csv_path.name}:{line}", f"empty {audio_col!r} value", "metadata"))
            continue
        if args.audio_subdir_template:
            try:
                subdir = args.audio_subdir_template.format(**row)
            except (KeyError, IndexError, ValueError) as error:
                raise DataError(
                    f"audio_subdir_template={args.audio_subdir_template!r} cannot be filled from the CSV row "
                    f"({error!r}); available fields: {', '.join('{' + c + '}' for c in columns)}"
                ) from error
            candidates = [data_dir / subdir / name]
        else:
            candidates = [Path(name)] if Path(name).is_absolute() else [data_dir / name, csv_path.parent / name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None and not args.audio_subdir_template and not Path(name).is_absolute():
            found = index.find(name)
            if len(found) == 1:
                path = found[0]
            elif len(found) > 1:
                skipped.append(SkippedClip(name, f"ambiguous: {len(found)} files named {Path(name).name} under "
                                                 f"{data_dir} (use --audio-subdir-template)", "metadata"))
                continue
        if path is None:
            skipped.append(SkippedClip(name, f"file listed in {csv_path.name} not found (looked at "
                                             f"{', '.join(str(c) for c in candidates)})", "metadata"))
            continue
        split = normalize_split_name(row[split_col], f"{where} line {line}") if split_col else None
        manifest_rows["audio"].append(str(path))
        manifest_rows["files"].append(name)
        manifest_rows["labels"].append((row.get(label_col) or "").strip() if label_col else UNLABELED)
        if split_col:
            manifest_rows["splits"].append(split)
        if fold_col:
            manifest_rows["folds"].append(str(row[fold_col]).strip())
        if group_col:
            manifest_rows["groups"].append(str(row[group_col]).strip())
    if not manifest_rows["audio"]:
        raise DataError(f"none of the {len(rows)} files listed in {where} were found ("
                        + "; ".join(f"{clip.file}: {clip.reason}" for clip in skipped[:3]) + ")")
    return _finish(
        manifest_rows, args, skipped, source=str(csv_path),
        fingerprint_parts=(manifest_rows["audio"], _file_signature(manifest_rows["audio"]),
                           manifest_rows["splits"], manifest_rows["folds"], manifest_rows["groups"]),
        unlabeled=unlabeled,
    )


def _is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def read_class_folders(args: DataArguments) -> Manifest:
    """Source 2: `DATA_DIR/<label>/*.wav`, or `DATA_DIR/<split>/<label>/*.wav`."""
    data_dir = Path(args.data_dir).resolve()
    subdirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DataError(
            f"{data_dir} has neither a metadata.csv nor class subfolders; expected DATA_DIR/metadata.csv "
            f"(file_name,label,...) or DATA_DIR/<label>/<clip>.wav"
        )
    split_layout = all(p.name.lower() in SPLIT_ALIASES for p in subdirs)
    manifest_rows = {"audio": [], "files": [], "labels": [], "splits": [] if split_layout else None}
    skipped: list[SkippedClip] = []
    for stray in sorted(p for p in data_dir.iterdir() if p.is_file() and _is_audio_file(p)):
        skipped.append(SkippedClip(stray.name, "audio file outside any class folder (label unknown)", "metadata"))
    roots = [(p, normalize_split_name(p.name, str(p))) for p in subdirs] if split_layout else [(data_dir, None)]
    for root, split in roots:
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for path in sorted(class_dir.rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                relative = str(path.relative_to(data_dir))
                if not _is_audio_file(path):
                    skipped.append(SkippedClip(relative, f"not an audio file extension ({', '.join(AUDIO_EXTENSIONS)})",
                                               "metadata"))
                    continue
                manifest_rows["audio"].append(str(path))
                manifest_rows["files"].append(relative)
                manifest_rows["labels"].append(class_dir.name)
                if split_layout:
                    manifest_rows["splits"].append(split)
    if not manifest_rows["audio"]:
        raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in the class folders of {data_dir}")
    return _finish(manifest_rows, args, skipped, source=str(data_dir),
                   fingerprint_parts=(manifest_rows["audio"], _file_signature(manifest_rows["audio"]),
                                      manifest_rows["splits"]))


def read_audio_folder(args: DataArguments) -> Manifest:
    """Source 2 without labels: every audio file below `DATA_DIR`, at any depth, in path order; top-level
    `train/`, `validation/`, `test/` folders (all of them split names) give the split column."""
    data_dir = Path(args.data_dir).resolve()
    subdirs = [p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    split_layout = bool(subdirs) and all(p.name.lower() in SPLIT_ALIASES for p in subdirs)
    manifest_rows = {"audio": [], "files": [], "labels": [], "splits": [] if split_layout else None}
    skipped: list[SkippedClip] = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if not _is_audio_file(path):
            skipped.append(SkippedClip(str(relative), f"not an audio file extension ({', '.join(AUDIO_EXTENSIONS)})",
                                       "metadata"))
            continue
        if split_layout and len(relative.parts) == 1:
            skipped.append(SkippedClip(str(relative), "audio file outside the train/validation/test folders",
                                       "metadata"))
            continue
        manifest_rows["audio"].append(str(path))
        manifest_rows["files"].append(str(relative))
        manifest_rows["labels"].append(UNLABELED)
        if split_layout:
            manifest_rows["splits"].append(normalize_split_name(relative.parts[0], str(data_dir / relative.parts[0])))
    if not manifest_rows["audio"]:
        raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found below {data_dir}")
    return _finish(manifest_rows, args, skipped, source=str(data_dir),
                   fingerprint_parts=(manifest_rows["audio"], _file_signature(manifest_rows["audio"]),
                                      manifest_rows["splits"]), unlabeled=True)


def load_hf_dataset(args: DataArguments, streaming: bool = False):
    """A `DatasetDict`/`Dataset` from a save_to_disk folder, or `load_dataset(id)` (downloads when online)."""
    path = Path(args.dataset)
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        return datasets.load_from_disk(str(path)), f"save_to_disk folder {path}"
    if path.exists() and path.is_dir():
        # a plain folder: let load_dataset pick the builder (audiofolder, csv, parquet, ...)
        return datasets.load_dataset(str(path), name=args.dataset_config, cache_dir=args.cache_dir,
                                     streaming=streaming), f"folder {path}"
    try:
        loaded = datasets.load_dataset(args.dataset, name=args.dataset_config, cache_dir=args.cache_dir,
                                       streaming=streaming)
    except Exception as error:
        raise DataError(
            f"could not load dataset {args.dataset!r} (a Hub id, or a folder written by save_to_disk): {error}"
        ) from error
    return loaded, f"Hub dataset {args.dataset}" + (f" ({args.dataset_config})" if args.dataset_config else "")


def find_audio_column(features: datasets.Features, requested: Optional[str], where: str) -> str:
    columns = list(features)
    if requested:
        return _pick_column(columns, requested, (), "audio", "--audio-column", where)
    for name, feature in features.items():
        if isinstance(feature, datasets.Audio):
            return name
    return _pick_column(columns, None, ("audio", *DEFAULT_AUDIO_COLUMNS), "audio", "--audio-column", where)


def read_hf_dataset(args: DataArguments, unlabeled: bool = False) -> Manifest:
    """Source 3: a Hub dataset or save_to_disk folder, all of its splits concatenated (`unlabeled`: no label
    column is read)."""
    loaded, source = load_hf_dataset(args)
    parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {None: loaded}
    first = next(iter(parts.values()))
    where = source
    audio_col = find_audio_column(first.features, args.audio_column, where)
    label_col, label_names = None, None
    if not unlabeled:
        label_col = _pick_column(list(first.features), args.label_column,
                                 [*DEFAULT_LABEL_COLUMNS, *(n for n, f in first.features.items()
                                                            if isinstance(f, datasets.ClassLabel))],
                                 "label", "--label-column", where)
        label_feature = first.features[label_col]
        # a list of class labels (multi-label) is a Sequence/List of ClassLabel
        label_feature = getattr(label_feature, "feature", label_feature)
        label_names = list(label_feature.names) if isinstance(label_feature, datasets.ClassLabel) else None

    pieces, split_values = [], []
    extra = {"folds": args.fold_column, "groups": args.group_column, "splits_column": args.split_column}
    extra_values = {key: [] for key, column in extra.items() if column}
    for split_name, part in parts.items():
        for key, column in extra.items():
            if column and column not in part.column_names:
                raise DataError(f"{where} has no column {column!r} (columns found: {', '.join(part.column_names)})")
        if isinstance(part.features[audio_col], datasets.Audio):
            part = part.cast_column(audio_col, datasets.Audio(decode=False))
        keep_columns = [audio_col]
        pieces.append(part.select_columns(keep_columns).rename_column(audio_col, "audio")
                      if audio_col != "audio" else part.select_columns(keep_columns))
        labels = part[label_col][:] if label_col else [UNLABELED] * len(part)
        if label_names is not None:
            labels = [_class_names(value, label_names) for value in labels]
        split_values.append((split_name, labels, {key: [str(v) for v in part[column][:]]
                                                  for key, column in extra.items() if column}))
    audio = datasets.concatenate_datasets(pieces) if len(pieces) > 1 else pieces[0]
    if isinstance(audio.features["audio"], datasets.Value):
        base = Path(args.dataset) if Path(args.dataset).is_dir() else None
        resolved = [str(base / p) if base is not None and not Path(p).is_absolute() else p for p in audio["audio"][:]]
        audio = datasets.Dataset.from_dict({"audio": resolved})
    all_labels, splits = [], []
    for split_name, labels, extras in split_values:
        all_labels.extend(label if label is None or isinstance(label, list) else str(label) for label in labels)
        splits.extend([split_name] * len(labels))
        for key, values in extras.items():
            extra_values[key].extend(values)
    if "splits_column" in extra_values:
        splits = [normalize_split_name(v, f"{where} column {args.split_column!r}") for v in extra_values.pop("splits_column")]
    elif all(s is None for s in splits):
        splits = None
    else:
        splits = [normalize_split_name(s, f"{where} split names") for s in splits]
    files = []
    for i, entry in enumerate(_audio_names(audio)):
        files.append(entry or f"{args.dataset}[{i}]")
    rows = {"audio": None, "files": files, "labels": all_labels, "splits": splits,
            "folds": extra_values.get("folds"), "groups": extra_values.get("groups")}
    return _finish(rows, args, [], source=source, audio=audio, label_names=label_names,
                   fingerprint_parts=(audio._fingerprint, splits, rows["folds"], rows["groups"]), unlabeled=unlabeled)


def _class_names(value, label_names: list[str]):
    """ClassLabel id(s) -> name(s); a missing label (None or -1) -> None."""
    if isinstance(value, (list, tuple)):
        return [label_names[i] for i in value if i is not None and i >= 0]
    return label_names[value] if value is not None and value >= 0 else None


def _audio_names(audio: datasets.Dataset) -> list[Optional[str]]:
    """The `path` of every audio entry (without reading the bytes column into Python)."""
    table = audio.data.table if audio._indices is None else audio.flatten_indices().data.table
    column = table.column("audio")
    if str(column.type) == "string" or str(column.type) == "large_string":
        return column.to_pylist()
    # chunk by chunk: combine_chunks would copy every audio byte into one buffer
    return [name for chunk in column.chunks for name in chunk.field("path").to_pylist()]


DATA_FILE_SUFFIXES = (".parquet", ".arrow", ".jsonl")


def is_plain_audio_folder(dataset: Optional[str]) -> bool:
    """A `--dataset` folder that is not a datasets export (no save_to_disk files, no parquet/arrow/jsonl): it is
    read like `--data-dir` (metadata CSV or class folders) instead of through datasets' audiofolder builder,
    which would need torchcodec to encode the audio."""
    if not dataset or not Path(dataset).is_dir():
        return False
    path = Path(dataset)
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return False
    nearby = [*path.iterdir(), *(child for sub in path.iterdir() if sub.is_dir() for child in sub.iterdir())]
    return not any(item.suffix.lower() in DATA_FILE_SUFFIXES for item in nearby)


def build_manifest(args: DataArguments, unlabeled: bool = False) -> Manifest:
    """Dispatch on the source arguments; `unlabeled=True` reads no labels (see the module docstring)."""
    if bool(args.data_dir) == bool(args.dataset):
        raise DataError("give exactly one source: --data-dir DIR (local folder) or --dataset ID_OR_PATH "
                        f"(got data_dir={args.data_dir!r}, dataset={args.dataset!r})")
    if is_plain_audio_folder(args.dataset):
        args = dataclasses.replace(args, data_dir=args.dataset, dataset=None)
    if args.data_dir:
        data_dir = Path(args.data_dir)
        if not data_dir.is_dir():
            raise DataError(f"data_dir {data_dir} is not a folder")
        if args.metadata_file or (data_dir / "metadata.csv").exists():
            return read_metadata_csv(args, unlabeled=unlabeled)
        return read_audio_folder(args) if unlabeled else read_class_folders(args)
    return read_hf_dataset(args, unlabeled=unlabeled)
