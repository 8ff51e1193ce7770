"""A Hugging Face dataset id or a `save_to_disk` folder as a `Manifest`: its `Audio` column is read with
`decode=False` and decoded later by `audio_vit.data.audio_decoding` (no torchcodec/FFmpeg needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import datasets

from .arguments import DataArguments
from .manifest import (DEFAULT_AUDIO_COLUMNS, DEFAULT_LABEL_COLUMNS, UNLABELED, Manifest, finish_manifest,
                       normalize_split_name, pick_column)
from .report import DataError

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
        return pick_column(columns, requested, (), "audio", "--audio-column", where)
    for name, feature in features.items():
        if isinstance(feature, datasets.Audio):
            return name
    return pick_column(columns, None, ("audio", *DEFAULT_AUDIO_COLUMNS), "audio", "--audio-column", where)


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
        label_col = pick_column(list(first.features), args.label_column,
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
    return finish_manifest(rows, args, [], source=source, audio=audio, label_names=label_names,
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
