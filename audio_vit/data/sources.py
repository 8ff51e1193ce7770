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

The manifest and the column mapping the readers share are in `manifest.py`; the Hub / `save_to_disk` reader in
`hub_source.py`; the CSV and folder readers and `build_manifest`, which picks one, here.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path
from typing import Optional

from .arguments import DataArguments
from .audio_decoding import AUDIO_EXTENSIONS
from .hub_source import read_hf_dataset
from .manifest import (DEFAULT_AUDIO_COLUMNS, DEFAULT_LABEL_COLUMNS, SPLIT_ALIASES, UNLABELED, Manifest,
                       finish_manifest, normalize_split_name, pick_column)
from .report import DataError, SkippedClip


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
    audio_col = pick_column(columns, args.audio_column, DEFAULT_AUDIO_COLUMNS, "audio file", "--audio-column", where)
    label_col = None if unlabeled else pick_column(columns, args.label_column, DEFAULT_LABEL_COLUMNS, "label",
                                                    "--label-column", where)
    split_col = pick_column(columns, args.split_column, ("split",), "split", "--split-column", where, required=False)
    fold_col = pick_column(columns, args.fold_column, ("fold",), "fold", "--fold-column", where, required=False)
    group_col = pick_column(columns, args.group_column, (), "group", "--group-column", where, required=False)
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
    return finish_manifest(
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
    return finish_manifest(manifest_rows, args, skipped, source=str(data_dir),
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
    return finish_manifest(manifest_rows, args, skipped, source=str(data_dir),
                   fingerprint_parts=(manifest_rows["audio"], _file_signature(manifest_rows["audio"]),
                                      manifest_rows["splits"]), unlabeled=True)


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
