"""Build harder development datasets from real FSDD recordings (for benchmarks; never committed as data).

Each variant is a folder of audio files (WAV; FLAC too in `mixed`) and a `metadata.csv` (`file_name`, `label`,
`fold`, `speaker`, `source`) that `audio-vit train --data-dir DIR --split-strategy kfold --test-fold K` and
`audio-vit compare --data-dir DIR` read as they are. The variants mimic the datasets audio_vit is judged on:

- `noisy5s` (environmental-sound-like): 800 clips (80 per digit), each FSDD clip resampled to 44.1 kHz and
  placed at a random offset in a 5 s recording of coloured background noise with a random hum, at a random SNR
  of 0-20 dB; 5 stratified folds, one clip per source recording (like ESC-50: short events in long clips).
- `speakers` (keyword-speech-like): 900 clips (15 takes of each digit per speaker), every clip stored at a
  random one of 8, 16 and 22.05 kHz (mixed rates, as in messy real collections) with its natural 0.1-2.3 s
  length; the fold is the speaker (6 speaker-disjoint folds).
- `mixed` (a messy real collection, like an animal-sound set of 0.2-40 s recordings): 777 clips, class counts
  geometric from 190 down to 19 (10:1; which digit is largest depends on --seed). Four kinds of clip in one set:
  fragments of 0.1-0.5 s cut around an utterance's energy peak (15%), natural single utterances of 0.14-2.3 s
  (30%), an utterance in 2-8 s of quiet background at 10-30 dB SNR (43%), and recordings of 10-40 s (12%): 2-5
  takes of the digit by the same speaker separated by pauses in quiet background, or one take in a long stretch
  of noise at 0-20 dB. With seed 0: median 2.69 s, p90 11.25 s, 0.10-38.9 s. Each clip at a native rate drawn
  from 8 / 11.025 / 16 / 22.05 / 32 / 44.1 / 48 kHz (soxr), peak level 0.2-0.95, 15% stereo (a delayed, quieter
  second channel); files are 16-bit WAV (60%), 8-bit unsigned WAV (10%), A-law WAV (10%) or 16-bit FLAC (20%),
  each read back with soundfile after writing. 5 speaker-disjoint folds (fold 1 = george + nicolas, as in the
  FSDD speaker folds; then jackson, lucas, theo, yweweler), so no speaker and no source take is in two folds.
- `small` (a small music-like set, 1-26 s recordings at 44.1 kHz): 300 clips (30 per digit), each 1-20 s
  (log-uniform; median 4.7 s) of one speaker saying the digit 1-6 times, separated by pauses, in background
  noise at 0-20 dB SNR; 44.1 kHz 16-bit WAV. 5 stratified folds (6 clips per class per fold), so 18 training
  clips per class once a test and a validation fold are held out. Each clip's takes come from one speaker, but
  every speaker has clips in every fold: the folds are not speaker-disjoint.
- `speakers-small` (a small keyword set on unseen speakers): `speakers` cut to takes 0-4 of every digit and
  speaker, 300 clips in the same 6 speaker folds, so 20 training clips per class (4 speakers x 5 takes) once a
  test and a validation speaker are held out.
- `noisy5s-small` (a small environmental-sound-like set): `noisy5s` built with 30 clips per digit, 300 clips in 5
  stratified folds (6 per class per fold), so 18 training clips per class once a test and a validation fold are
  held out. One FSDD take per clip; a speaker's takes cross folds, as in `noisy5s`.
- `speaker-id-small` (a small timbre task, like instrument recognition): the label is the SPEAKER (6 classes),
  from takes 0-2 of every digit (180 clips at a random one of 8, 16 and 22.05 kHz, natural lengths). The fold is
  the digit pair (fold 1 = digits 0-1, ..., fold 5 = 8-9), so a test fold holds words never heard in training,
  as a music test fold holds pieces not in training: 18 training clips per class once a test and a validation
  fold are held out.

In every variant each FSDD take is used at most once (`source` lists the take(s) of a clip, joined by `+`), and
the same --seed builds byte-identical files.

    python benchmarks/fsdd_variants.py --fsdd ../shared/data/fsdd --output-dir outputs/variants [--variants small noisy5s-small speaker-id-small]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

VARIANTS = ("noisy5s", "speakers", "mixed", "small", "speakers-small", "noisy5s-small", "speaker-id-small")
# Takes of each digit per speaker in `speakers` and in its small cut.
SPEAKERS_TAKES, SPEAKERS_SMALL_TAKES = 15, 5
# Clips per digit in `noisy5s` and in its small cut (5 stratified folds either way).
NOISY5S_CLIPS_PER_CLASS, NOISY5S_SMALL_CLIPS_PER_CLASS = 80, 30


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


def background_noise(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise (random exponent 0.5-2) plus a 50/60 Hz hum or one of its first harmonics."""
    background = coloured_noise(length, rng.uniform(0.5, 2.0), rng)
    hum_hz = rng.choice([50.0, 60.0]) * rng.integers(1, 4)
    background += 0.3 * np.sin(2 * np.pi * hum_hz * np.arange(length) / rate + rng.uniform(0, 2 * np.pi))
    return background


def place_in_noise(clip: np.ndarray, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """`clip` at a random offset in `seconds` of background (coloured noise + hum) at an SNR of 0-20 dB."""
    length = int(seconds * rate)
    clip = clip[:length]
    background = background_noise(length, rate, rng)
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


def build_noisy5s(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator,
                  per_class: int = NOISY5S_CLIPS_PER_CLASS) -> list[dict]:
    rate = 44100
    chosen = take_per_class(rows, per_class, rng)
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


def build_noisy5s_small(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    return build_noisy5s(rows, fsdd_dir, out, rng, per_class=NOISY5S_SMALL_CLIPS_PER_CLASS)


def build_speakers(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator,
                   takes: int = SPEAKERS_TAKES) -> list[dict]:
    speakers = sorted({row["speaker"] for row in rows})
    entries = []
    for row in rows:
        if int(row["index"]) >= takes:
            continue
        audio, source_rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
        rate = int(rng.choice([8000, 16000, 22050]))
        name = f"audio/{Path(row['file_name']).stem}.wav"
        sf.write(out / name, soxr.resample(audio, source_rate, rate), rate, subtype="PCM_16")
        entries.append({"file_name": name, "label": row["label"], "fold": speakers.index(row["speaker"]) + 1,
                        "speaker": row["speaker"], "source": Path(row["file_name"]).stem})
    return entries


# --- helpers shared by `mixed` and `small` -------------------------------------------------------------------

NATIVE_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
# (soundfile format, subtype, file extension, probability): mostly 16-bit WAV, as in real collections.
FILE_FORMATS = (("WAV", "PCM_16", "wav", 0.60), ("WAV", "PCM_U8", "wav", 0.10), ("WAV", "ALAW", "wav", 0.10),
                ("FLAC", "PCM_16", "flac", 0.20))
STEREO_PROBABILITY = 0.15
# Speaker folds as the FSDD speaker folds of `audio-vit compare --group-column speaker --num-folds 5`.
SPEAKER_FOLDS = {"george": 1, "nicolas": 1, "jackson": 2, "lucas": 3, "theo": 4, "yweweler": 5}
MIN_PAUSE_SECONDS = 0.3


def takes_by_speaker_and_label(rows: list[dict], rng: np.random.Generator) -> dict[tuple[str, str], list[dict]]:
    """(speaker, label) -> that speaker's takes of the digit, shuffled; builders pop from the end (each take once)."""
    pools: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        pools.setdefault((row["speaker"], row["label"]), []).append(row)
    return {key: [takes[i] for i in rng.permutation(len(takes))] for key, takes in sorted(pools.items())}


def read_take(fsdd_dir: Path, row: dict, rate: int) -> np.ndarray:
    audio, source_rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
    return soxr.resample(audio, source_rate, rate) if source_rate != rate else audio


def takes_in_background(takes: list[np.ndarray], rate: int, seconds: float, snr_db: float,
                        rng: np.random.Generator) -> np.ndarray:
    """The takes in order, at random offsets separated by pauses of at least MIN_PAUSE_SECONDS, in `seconds` of
    background (coloured noise + hum) whose level is `snr_db` below the takes' mean RMS."""
    content = sum(len(take) for take in takes) + (len(takes) - 1) * int(MIN_PAUSE_SECONDS * rate)
    length = max(int(seconds * rate), content)
    background = background_noise(length, rate, rng)
    take_rms = np.mean([np.sqrt(np.mean(take**2)) for take in takes]) + 1e-12
    mixed = background * take_rms / (np.sqrt(np.mean(background**2)) + 1e-12) / 10 ** (snr_db / 20)
    # Distribute the free time at random between the gaps: sorted uniform draws are the starts minus what precedes.
    gaps = np.sort(rng.integers(0, length - content + 1, size=len(takes)))
    start = 0
    for gap, take in zip(gaps, takes):
        offset = int(gap) + start
        mixed[offset : offset + len(take)] += take
        start += len(take) + int(MIN_PAUSE_SECONDS * rate)
    return mixed.astype(np.float32)


def fragment_around_peak(clip: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """`seconds` of `clip` centred on its loudest 20 ms frame (the whole clip when shorter), 5 ms fades."""
    frame = max(1, int(0.02 * rate))
    energy = np.convolve(clip**2, np.ones(frame), mode="same")
    length = min(len(clip), int(seconds * rate))
    start = int(np.clip(int(np.argmax(energy)) - length // 2, 0, len(clip) - length))
    piece = clip[start : start + length].copy()
    fade = min(length // 2, int(0.005 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
    return piece


def write_checked(path: Path, audio: np.ndarray, rate: int, file_format: str, subtype: str) -> None:
    """Write `audio` ((T,) or (T, C)) and read it back with soundfile, so every listed file is known to decode."""
    sf.write(path, audio, rate, format=file_format, subtype=subtype)
    decoded, decoded_rate = sf.read(path, dtype="float32", always_2d=True)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    if decoded_rate != rate or decoded.shape != (len(audio), channels) or not np.isfinite(decoded).all():
        raise RuntimeError(f"{path} ({file_format}/{subtype}) reads back as {decoded.shape} at {decoded_rate} Hz; "
                           f"wrote {(len(audio), channels)} at {rate} Hz")


def print_summary(name: str, details: list[dict]) -> None:
    """Clip count, duration percentiles, and the counts per value of every other column of `details`."""
    p = np.percentile([detail["seconds"] for detail in details], [0, 10, 50, 90, 100])
    print(f"{name}: {len(details)} clips; duration min {p[0]:.2f} s, p10 {p[1]:.2f}, median {p[2]:.2f}, "
          f"p90 {p[3]:.2f}, max {p[4]:.2f} s")
    for column in (key for key in details[0] if key != "seconds"):
        values = [str(detail[column]) for detail in details]
        counts = {value: values.count(value) for value in sorted(set(values), key=lambda v: (len(v), v))}
        print(f"  per {column}: " + ", ".join(f"{value} {count}" for value, count in counts.items()), flush=True)


def log_uniform(low: float, high: float, rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def entry(name: str, label: str, fold: int, speaker: str, takes: list[dict]) -> dict:
    return {"file_name": name, "label": label, "fold": fold, "speaker": speaker,
            "source": "+".join(Path(take["file_name"]).stem for take in takes)}


# --- mixed: the shape of a messy real collection ------------------------------------------------------------

MIXED_LARGEST_CLASS = 190  # geometric class counts from 190 down to 19 (10:1), 777 clips in all
MIXED_KINDS = {"fragment": 0.15, "natural": 0.30, "background": 0.43, "long": 0.12}
MULTI_TAKE_PROBABILITY = 0.6  # of a long recording: 2-5 takes separated by pauses, else one take in noise


def plan_mixed(rows: list[dict], rng: np.random.Generator) -> list[dict]:
    """Per clip: label, speaker, kind and the FSDD takes it uses (each take at most once in the whole set)."""
    labels = sorted({row["label"] for row in rows}, key=int)
    speakers = sorted(SPEAKER_FOLDS)
    ratios = 0.1 ** (np.arange(len(labels)) / (len(labels) - 1))
    counts = dict(zip(map(str, rng.permutation(labels)), np.round(MIXED_LARGEST_CLASS * ratios).astype(int)))
    pools = takes_by_speaker_and_label(rows, rng)
    plan = []
    for label in labels:
        order = [str(speaker) for speaker in rng.permutation(speakers)]
        clip_speakers = [order[i % len(order)] for i in range(counts[label])]
        kinds = rng.choice(list(MIXED_KINDS), size=len(clip_speakers), p=list(MIXED_KINDS.values()))
        for index, (speaker, kind) in enumerate(zip(clip_speakers, kinds)):
            wanted = int(rng.integers(2, 6)) if kind == "long" and rng.random() < MULTI_TAKE_PROBABILITY else 1
            pool = pools[(speaker, label)]
            clips_still_to_come = clip_speakers[index + 1 :].count(speaker)
            count = max(1, min(wanted, len(pool) - clips_still_to_come))
            plan.append({"label": label, "speaker": speaker, "kind": str(kind),
                         "takes": [pool.pop() for _ in range(count)]})
    return plan


def render_mixed(clip: dict, fsdd_dir: Path, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The clip's audio at a random native rate, peak level 0.2-0.95, 15% of clips stereo: (T,) or (T, 2)."""
    rate = int(rng.choice(NATIVE_RATES))
    takes = [read_take(fsdd_dir, take, rate) for take in clip["takes"]]
    kind = clip["kind"]
    if kind == "fragment":
        audio = fragment_around_peak(takes[0], rate, rng.uniform(0.1, 0.5))
    elif kind == "natural":
        audio = takes[0]
    elif kind == "background":  # quiet: 10-30 dB below the utterance
        audio = takes_in_background(takes, rate, rng.uniform(2.0, 8.0), rng.uniform(10.0, 30.0), rng)
    else:  # long: several takes in quiet background, or one take in a long stretch of louder noise
        snr_db = rng.uniform(10.0, 30.0) if len(takes) > 1 else rng.uniform(0.0, 20.0)
        audio = takes_in_background(takes, rate, log_uniform(10.0, 40.0, rng), snr_db, rng)
    audio = audio * (rng.uniform(0.2, 0.95) / max(1e-6, float(np.abs(audio).max())))
    if rng.random() < STEREO_PROBABILITY:  # a second microphone: delayed by up to 2 ms and quieter
        delay = int(rng.integers(1, int(0.002 * rate) + 2))
        audio = np.stack([audio, 0.8 * np.roll(audio, delay)], axis=1)
    return audio.astype(np.float32), rate


def build_mixed(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    entries, details = [], []
    per_label: dict[str, int] = {}
    probabilities = [fmt[3] for fmt in FILE_FORMATS]
    for clip in plan_mixed(rows, rng):
        audio, rate = render_mixed(clip, fsdd_dir, rng)
        file_format, subtype, extension, _ = FILE_FORMATS[int(rng.choice(len(FILE_FORMATS), p=probabilities))]
        number = per_label.get(clip["label"], 0)
        per_label[clip["label"]] = number + 1
        name = f"audio/{clip['label']}_{clip['speaker']}_{number:03d}.{extension}"
        write_checked(out / name, audio, rate, file_format, subtype)
        fold = SPEAKER_FOLDS[clip["speaker"]]
        entries.append(entry(name, clip["label"], fold, clip["speaker"], clip["takes"]))
        details.append({"seconds": len(audio) / rate, "label": clip["label"], "fold": fold, "kind": clip["kind"],
                        "takes": len(clip["takes"]), "rate": rate,
                        "format": f"{file_format}-{subtype}{'-stereo' if audio.ndim == 2 else ''}"})
    print_summary("mixed", details)
    return entries


# --- small: a tiny set of long noisy recordings -------------------------------------------------------------

SMALL_CLIPS_PER_CLASS = 30
SMALL_FOLDS = 5


def build_small(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    rate = 44100
    pools = takes_by_speaker_and_label(rows, rng)
    speakers = sorted(SPEAKER_FOLDS)
    entries, details = [], []
    for label in sorted({row["label"] for row in rows}, key=int):
        order = [str(speaker) for speaker in rng.permutation(speakers)]
        for index in range(SMALL_CLIPS_PER_CLASS):
            speaker, pool = order[index % len(order)], pools[(order[index % len(order)], label)]
            seconds = log_uniform(1.0, 20.0, rng)
            chosen = pool[-int(rng.integers(1, 7)) :]  # 1-6 takes; fewer when they do not fit in `seconds`
            takes = [read_take(fsdd_dir, take, rate) for take in chosen]
            while len(takes) > 1 and sum(map(len, takes)) / rate + (len(takes) - 1) * MIN_PAUSE_SECONDS > seconds:
                chosen, takes = chosen[1:], takes[1:]
            del pool[-len(chosen) :]
            seconds = max(seconds, sum(map(len, takes)) / rate + (len(takes) - 1) * MIN_PAUSE_SECONDS + 0.2)
            audio = takes_in_background(takes, rate, seconds, rng.uniform(0.0, 20.0), rng)
            audio = 0.9 * audio / max(1e-6, float(np.abs(audio).max()))
            name = f"audio/{label}_{speaker}_{index:02d}.wav"
            write_checked(out / name, audio, rate, "WAV", "PCM_16")
            # Stratified folds: the k-th clip of each class goes to fold k % 5 + 1 (speakers cross folds).
            fold = index % SMALL_FOLDS + 1
            entries.append(entry(name, label, fold, speaker, chosen))
            details.append({"seconds": len(audio) / rate, "label": label, "fold": fold, "takes": len(chosen)})
    print_summary("small", details)
    return entries


def build_speakers_small(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    return build_speakers(rows, fsdd_dir, out, rng, takes=SPEAKERS_SMALL_TAKES)


# --- speaker-id-small: who speaks, on words not heard in training --------------------------------------------

SPEAKER_ID_TAKES = 3  # takes of each digit per speaker
DIGITS_PER_FOLD = 2


def build_speaker_id_small(rows, fsdd_dir: Path, out: Path, rng: np.random.Generator) -> list[dict]:
    entries = []
    for row in rows:
        if int(row["index"]) >= SPEAKER_ID_TAKES:
            continue
        audio, source_rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
        rate = int(rng.choice([8000, 16000, 22050]))
        name = f"audio/{Path(row['file_name']).stem}.wav"
        sf.write(out / name, soxr.resample(audio, source_rate, rate), rate, subtype="PCM_16")
        entries.append({"file_name": name, "label": row["speaker"], "fold": int(row["label"]) // DIGITS_PER_FOLD + 1,
                        "speaker": row["speaker"], "source": Path(row["file_name"]).stem, "digit": row["label"]})
    return entries


BUILDERS = {"noisy5s": build_noisy5s, "speakers": build_speakers, "mixed": build_mixed, "small": build_small,
            "speakers-small": build_speakers_small, "noisy5s-small": build_noisy5s_small,
            "speaker-id-small": build_speaker_id_small}


def write_metadata(out: Path, entries: list[dict]) -> None:
    """`out/metadata.csv`: one row per entry, the columns of the first."""
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)


def build_variant(name: str, fsdd_dir: Path, output_dir: Path, seed: int = 0) -> Path:
    out = output_dir / name
    (out / "audio").mkdir(parents=True, exist_ok=True)
    entries = BUILDERS[name](read_fsdd(fsdd_dir), fsdd_dir, out, np.random.default_rng(seed))
    write_metadata(out, entries)
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
