"""Is an `audio-vit prepare` output folder up to date? Answered with the standard library only.

A re-run with the same inputs should not pay for importing torch, transformers and datasets (several seconds)
to find out that nothing changed. `prepare` stores `prepare_fingerprint.json` in its output folder: a hash of
the options that change the output, of every file under the local sources (relative path, size, mtime), and
of the audio_vit code that decodes and turns audio into spectrograms. The next run compares before any heavy
import. Hub datasets (not local folders) have no cheap fingerprint, so they are always prepared again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FINGERPRINT_NAME = "prepare_fingerprint.json"
FORMAT_VERSION = 1
# Options that do not change what is written (where the datasets cache lives, how many processes, printing).
IGNORED_OPTIONS = frozenset({"output_dir", "overwrite", "force", "quiet", "cache_dir", "num_proc"})
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The code that decides what ends up in the output, relative to the package: the feature extractor and what it
# imports (spectrograms, raw-audio checks, resampling), and the data layer (decoding, manifest, splits, the feature
# recipe, the report, and `data/prepare.py`, which writes the folder).
CODE_FILES = ("models/audio_vit/audio_utils.py", "models/audio_vit/feature_extraction_audio_vit.py",
              "models/audio_vit/raw_audio_input.py", "models/audio_vit/log_mel_frontends.py", "data")


def _hash_tree(digest, root: Path, label: str) -> int:
    """Feed (relative path, size, mtime_ns) of every file under `root` (or of `root` itself) into `digest`."""
    if root.is_file():
        stat = root.stat()
        digest.update(f"{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return 1
    count = 0
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            path = Path(folder) / name
            stat = path.stat()
            digest.update(f"{label}/{path.relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            count += 1
    return count


def _hash_code(digest) -> None:
    for name in CODE_FILES:
        path = PACKAGE_DIR / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + file.read_bytes())


def compute_fingerprint(options: dict) -> str | None:
    """Hash of `options` (the parsed prepare options), the local sources they name and the preparing code.

    Returns `None` when a source is not a local path (a Hub dataset id): then there is no cheap fingerprint.
    """
    digest = hashlib.sha256()
    kept = {key: value for key, value in sorted(options.items()) if key not in IGNORED_OPTIONS}
    digest.update(json.dumps({"format": FORMAT_VERSION, "options": kept}, sort_keys=True, default=str).encode())
    if options.get("dataset") and not Path(options["dataset"]).exists():
        return None
    for key in ("data_dir", "dataset", "metadata_file", "feature_extractor"):
        value = options.get(key)
        if value:
            path = Path(value)
            if not path.exists():
                return None  # let the real run report the missing path
            _hash_tree(digest, path.resolve(), key)
    _hash_code(digest)
    return digest.hexdigest()


def is_up_to_date(output_dir: str | os.PathLike, fingerprint: str | None) -> bool:
    """True when `output_dir` holds a complete prepared dataset written with this `fingerprint`."""
    output_dir = Path(output_dir)
    if fingerprint is None or not (output_dir / "dataset_dict.json").is_file():
        return False
    try:
        stored = json.loads((output_dir / FINGERPRINT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored.get("fingerprint") == fingerprint


def write_fingerprint(output_dir: str | os.PathLike, fingerprint: str | None) -> None:
    """Record `fingerprint` in `output_dir` (last step of a successful prepare); `None` removes a stale record."""
    path = Path(output_dir) / FINGERPRINT_NAME
    if fingerprint is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"fingerprint": fingerprint, "format": FORMAT_VERSION}) + "\n", encoding="utf-8")


__all__ = ["FINGERPRINT_NAME", "compute_fingerprint", "is_up_to_date", "write_fingerprint"]
