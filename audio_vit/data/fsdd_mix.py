"""A multi-label dataset built from FSDD: two spoken digits mixed in one clip, labelled with both.

    from audio_vit.data.fsdd_mix import build_fsdd_mixtures
    build_fsdd_mixtures("../shared/data/fsdd", "data/fsdd_mix", clips_per_split={"train": 2000, "test": 400})
    # -> data/fsdd_mix/metadata.csv (file_name,labels,split,speakers) + data/fsdd_mix/clips/*.flac

Each mixture takes two FSDD recordings of different digits from the same official split (so no test
recording is ever heard in training), scales both to the same peak, delays the second by up to `max_offset_s`
and writes the sum (peak 0.9) as FLAC. The `labels` cell holds both digits, e.g. "3,7", which
`audio_vit.data` reads as multi-label data (BCE training, mAP). The same arguments give the same files.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

import numpy as np

from .audio_decoding import load_audio
from .report import DataError

METADATA_COLUMNS = ("file_name", "labels", "split", "speakers")
DEFAULT_CLIPS_PER_SPLIT = {"train": 2000, "test": 400}


def _read_fsdd_metadata(fsdd_dir: Path) -> list[dict]:
    path = fsdd_dir / "metadata.csv"
    if not path.is_file():
        raise DataError(f"{path} not found: pass the FSDD folder (with metadata.csv and recordings/)")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"file_name", "label", "speaker", "split"}
    if not rows or not needed <= set(rows[0]):
        raise DataError(f"{path} must have the columns {sorted(needed)} (FSDD metadata); found {list(rows[0]) if rows else []}")
    return rows


def mix_pair(first: np.ndarray, second: np.ndarray, offset: int) -> np.ndarray:
    """`first + second` delayed by `offset` samples, both scaled to peak 1 first, the sum to peak 0.9."""
    first = first / max(float(np.abs(first).max()), 1e-6)
    second = second / max(float(np.abs(second).max()), 1e-6)
    mixture = np.zeros(max(len(first), offset + len(second)), dtype=np.float32)
    mixture[: len(first)] += first
    mixture[offset : offset + len(second)] += second
    return (0.9 * mixture / max(float(np.abs(mixture).max()), 1e-6)).astype(np.float32)


def build_fsdd_mixtures(fsdd_dir: str | os.PathLike, output_dir: str | os.PathLike,
                        clips_per_split: Optional[dict[str, int]] = None, max_offset_s: float = 0.25,
                        seed: int = 0) -> Path:
    """Write two-digit mixtures of FSDD and their `metadata.csv` into `output_dir`; returns the CSV path.

    Args:
        fsdd_dir (`str` or `os.PathLike`): the FSDD folder (`metadata.csv` with file_name,label,speaker,split).
        output_dir (`str` or `os.PathLike`): created; existing mixtures of the same name are overwritten.
        clips_per_split (`dict[str, int]`, *optional*): mixtures per official split, default 2000 train, 400 test.
        max_offset_s (`float`, defaults to 0.25): the second digit starts up to this many seconds later.
        seed (`int`, defaults to 0): picks the pairs and offsets.
    """
    fsdd_dir, output_dir = Path(fsdd_dir), Path(output_dir)
    clips_per_split = dict(DEFAULT_CLIPS_PER_SPLIT if clips_per_split is None else clips_per_split)
    rows = _read_fsdd_metadata(fsdd_dir)
    by_split: dict[str, list[dict]] = {}
    for row in rows:
        by_split.setdefault(row["split"], []).append(row)
    unknown = sorted(set(clips_per_split) - set(by_split))
    if unknown:
        raise DataError(f"clips_per_split names splits {unknown} that FSDD's metadata does not have ({sorted(by_split)})")
    if max_offset_s < 0:
        raise ValueError(f"max_offset_s={max_offset_s} must be >= 0")
    rng = np.random.default_rng(seed)
    (output_dir / "clips").mkdir(parents=True, exist_ok=True)
    import soundfile

    records = []
    for split, count in clips_per_split.items():
        pool = by_split[split]
        for n in range(count):
            first = pool[rng.integers(len(pool))]
            others = [row for row in pool if row["label"] != first["label"]]
            second = others[rng.integers(len(others))]
            wave_a, rate = load_audio(fsdd_dir / first["file_name"])
            wave_b, _ = load_audio(fsdd_dir / second["file_name"], sampling_rate=rate)
            offset = int(rng.integers(0, int(max_offset_s * rate) + 1))
            name = f"clips/{split}_{n:05d}.flac"
            soundfile.write(output_dir / name, mix_pair(wave_a, wave_b, offset), rate)
            digits = sorted({first["label"], second["label"]}, key=int)
            speakers = "+".join(sorted({first["speaker"], second["speaker"]}))
            records.append({"file_name": name, "labels": ",".join(digits), "split": split, "speakers": speakers})
    csv_path = output_dir / "metadata.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return csv_path
