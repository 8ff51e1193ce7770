"""Build harder development datasets from real FSDD recordings (for benchmarks; never committed as data).

Each variant is a folder with WAV files and a `metadata.csv` (`file_name`, `label`, `fold`, `speaker`,
`source`) that `audio-vit train --data-dir DIR --split-strategy kfold --test-fold K` and
`audio-vit compare --data-dir DIR` read as they are. The variants mimic the datasets audio_vit is judged on:

- `noisy5s` (environmental-sound-like): 800 clips (80 per digit), each FSDD clip resampled to 44.1 kHz and
  placed at a random offset in a 5 s recording of coloured background noise with a random hum, at a random SNR
  of 0-20 dB; 5 stratified folds, one clip per source recording (like ESC-50: short events in long clips).
- `speakers` (keyword-speech-like): 900 clips (15 takes of each digit per speaker), every clip stored at a
  random one of 8, 16 and 22.05 kHz (mixed rates, as in messy real collections) with its natural 0.1-2.3 s
  length; the fold is the speaker (6 speaker-disjoint folds).

    python benchmarks/fsdd_variants.py --fsdd ../shared/data/fsdd --output-dir outputs/variants [--variants noisy5s speakers]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

VARIANTS = ("noisy5s", "speakers")


def read_fsdd(fsdd_dir: Path) -> list[dict]:
    with open(fsdd_dir / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{fsdd_dir / 'metadata.csv'} lists no clips")
    return rows


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.fft.rfftfreq(num_samples)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def place_in_noise(clip: np.ndarray, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """`clip` at a random offset in `seconds` of background (coloured noise + hum) at an SNR of 0-20 dB."""
    length = int(seconds * rate)
    clip = clip[:length]
    background = coloured_noise(length, rng.uniform(0.5, 2.0), rng)
    hum_hz = rng.choice([50.0, 60.0]) * rng.integers(1, 4)
    background += 0.3 * np.sin(2 * np.pi * hum_hz * np.arange(length) / rate + rng.uniform(0, 2 * np.pi))
    clip_rms = np.sqrt(np.mean(clip**2)) + 1e-12
    snr_db = rng.uniform(0.0, 20.0)
    background *= clip_rms / (np.sqrt(np.mean(background**2)) + 1e-12) / 10 ** (snr_db / 20)
    offset = int(rng.integers(0, length - len(clip) + 1))
    mixed = background
    mixed[offset : offset + len(clip)] += clip
    return (0.9 * mixed / max(1e-6, np.abs(mixed).max())).astype(np.float32)


def take_per_class(rows: list[dict], per_class: int, rng: np.random.Generator) -> list[dict]:
    chosen = []
    for label in sorted({row["label"] for row in rows}):
        members = [row for row in rows if row["label"] == label]
        chosen += [members[i] for i in rng.permutation(len(members))[:per_class]]
    return chosen


def build_noisy5s(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    rate = 44100
    chosen = take_per_class(rows, 80, rng)
    entries = []
    by_label: dict[str, int] = {}
    for row in chosen:
        audio, source_rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
        clip = soxr.resample(audio, source_rate, rate)
        name = f"audio/{Path(row['file_name']).stem}.wav"
        sf.write(out / name, place_in_noise(clip, rate, 5.0, rng), rate, subtype="PCM_16")
        # Stratified folds: the k-th clip of each class goes to fold k % 5 + 1.
        index = by_label.get(row["label"], 0)
        by_label[row["label"]] = index + 1
        entries.append({"file_name": name, "label": row["label"], "fold": index % 5 + 1,
                        "speaker": row["speaker"], "source": Path(row["file_name"]).stem})
    return entries


def build_speakers(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    speakers = sorted({row["speaker"] for row in rows})
    entries = []
    for row in rows:
        if int(row["index"]) >= 15:
            continue
        audio, source_rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
        rate = int(rng.choice([8000, 16000, 22050]))
        name = f"audio/{Path(row['file_name']).stem}.wav"
        sf.write(out / name, soxr.resample(audio, source_rate, rate), rate, subtype="PCM_16")
        entries.append({"file_name": name, "label": row["label"], "fold": speakers.index(row["speaker"]) + 1,
                        "speaker": row["speaker"], "source": Path(row["file_name"]).stem})
    return entries


BUILDERS = {"noisy5s": build_noisy5s, "speakers": build_speakers}


def build_variant(name: str, fsdd_dir: Path, output_dir: Path, seed: int = 0) -> Path:
    out = output_dir / name
    (out / "audio").mkdir(parents=True, exist_ok=True)
    entries = BUILDERS[name](read_fsdd(fsdd_dir), fsdd_dir, out, np.random.default_rng(seed))
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsdd", default="../shared/data/fsdd", help="FSDD folder with metadata.csv")
    parser.add_argument("--output-dir", default="outputs/variants")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.variants:
        out = build_variant(name, Path(args.fsdd), Path(args.output_dir), args.seed)
        print(f"{name}: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
