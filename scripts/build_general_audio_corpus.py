"""Build the pretraining corpus of the small general-audio ViT (issue 32) from audio that installs offline under free
licences: Debian's recorded speech prompts (Asterisk: English, French, Spanish), desktop event sounds (freedesktop,
KDE Oxygen), game sound effects and music (SuperTux, Battle for Wesnoth), and espeak-ng speech in many languages.

    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav \
        sound-theme-freedesktop oxygen-sounds supertux-data wesnoth-1.16-music espeak-ng
    python scripts/build_general_audio_corpus.py --output-dir outputs/general-corpus
    audio-vit pretrain --data-dir outputs/general-corpus/audio --output-dir outputs/audio-vit-general ...

Writes OUTPUT/audio/SOURCE/*.flac (mono, the native rate up to 16 kHz, recordings longer than `--max-seconds` cut
into pieces), OUTPUT/sources.csv (one row per file: source, Debian package, licence, original file, seconds) and
OUTPUT/README.md (files, hours and the licence of every source). A source whose package is not installed is left
out and said so; the same inputs build the same corpus.

Shares no source with what the package is evaluated on: no FSDD clip (the `small`, `speakers-small`,
`noisy5s-small` and `mixed` variants are FSDD), no General MIDI SoundFont (`instruments-small` renders four), and
none of the evaluation sets' recordings; Asterisk's spoken digits are left out too, so the FSDD-based benchmarks
(spoken digits) measure what pretraining on general audio gives, not the same words.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".flac")
MAX_RATE = 16000


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    folder: str
    kind: str
    licence: str  # as the package's /usr/share/doc/PACKAGE/copyright states it for these files
    exclude: tuple[str, ...] = ()


SOURCES = (
    Source("asterisk-en", "asterisk-core-sounds-en-wav", "/usr/share/asterisk/sounds/en_US_f_Allison", "speech",
           "CC-BY-SA-3.0", exclude=("digits/",)),
    Source("asterisk-fr", "asterisk-core-sounds-fr-wav", "/usr/share/asterisk/sounds/fr_CA_f_June", "speech",
           "CC-BY-SA-3.0", exclude=("digits/",)),
    Source("asterisk-es", "asterisk-core-sounds-es-wav", "/usr/share/asterisk/sounds/es_MX_f_Allison", "speech",
           "CC-BY-SA-3.0", exclude=("digits/",)),
    Source("freedesktop-sounds", "sound-theme-freedesktop", "/usr/share/sounds/freedesktop", "event sounds",
           "CC-BY-SA-3.0 / GPL-2+ (per file, see the package's copyright)"),
    Source("oxygen-sounds", "oxygen-sounds", "/usr/share/sounds", "event sounds", "LGPL-3.0-or-later"),
    Source("supertux", "supertux-data", "/usr/share/games/supertux2", "game effects and music",
           "GPL-3+ / CC-BY-SA / CC0-1.0 (per file, see the package's copyright)"),
    Source("wesnoth-music", "wesnoth-1.16-music", "/usr/share/games/wesnoth/1.16/data/core/music", "music",
           "GPL-2+"),
)
# espeak-ng: these sentences in these voices (no digits), each at two speeds.
ESPEAK_LICENCE = "GPL-3+ (espeak-ng; the text is this script's)"
ESPEAK_VOICES = ("en", "en-us", "fr", "es", "de", "it", "pt", "nl", "sv", "pl", "ru", "tr", "hi", "sw", "fi", "cs",
                 "el", "hu", "ro", "id", "vi", "cmn", "ja", "ko", "ar")
ESPEAK_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please leave your message after the tone and we will call you back.",
    "Open the window, the morning air is cold and fresh today.",
    "Where is the station? I think we missed the last train home.",
    "Turn left at the market, then walk straight past the old church.",
    "Music and laughter filled the small room until late at night.",
)


def package_files(package: str) -> list[Path]:
    """The audio files the Debian package installed (`dpkg -L`), sorted; empty when it is not installed."""
    result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if result.returncode != 0:
        return []
    return sorted(Path(line) for line in result.stdout.splitlines()
                  if line.lower().endswith(AUDIO_SUFFIXES) and Path(line).is_file())


def mono_at_most_16k(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate > MAX_RATE:
        audio, rate = soxr.resample(audio, rate, MAX_RATE), MAX_RATE
    return audio, rate


def write_pieces(audio: np.ndarray, rate: int, stem: Path, max_seconds: float) -> list[tuple[Path, float]]:
    """`audio` as FLAC pieces of at most `max_seconds` (a last piece under 1 s joins the one before)."""
    piece = int(max_seconds * rate)
    starts = list(range(0, len(audio), piece))
    if len(starts) > 1 and len(audio) - starts[-1] < rate:
        starts.pop()
    written = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(audio)
        path = stem.with_name(f"{stem.name}-{index:02d}.flac" if len(starts) > 1 else f"{stem.name}.flac")
        sf.write(str(path), audio[start:end], rate, subtype="PCM_16")
        written.append((path, (end - start) / rate))
    return written


def add_package_source(source: Source, out: Path, max_seconds: float, rows: list[dict]) -> int:
    files = [f for f in package_files(source.package)
             if str(f).startswith(source.folder) and not any(part in str(f) for part in source.exclude)]
    for file in files:
        try:
            audio, rate = mono_at_most_16k(file)
        except (RuntimeError, sf.LibsndfileError) as error:
            print(f"  skipped {file}: {error}")
            continue
        if len(audio) < rate // 10:
            continue  # under 0.1 s: nothing to learn from
        relative = file.relative_to(source.folder).with_suffix("")
        stem = out / source.name / "-".join(relative.parts)
        stem.parent.mkdir(parents=True, exist_ok=True)
        for path, seconds in write_pieces(audio, rate, stem, max_seconds):
            rows.append({"file": path.relative_to(out).as_posix(), "source": source.name, "kind": source.kind,
                         "package": source.package, "licence": source.licence, "original": str(file),
                         "seconds": round(seconds, 3)})
    return len(files)


def add_espeak(out: Path, rows: list[dict]) -> int:
    if shutil.which("espeak-ng") is None:
        return 0
    folder = out / "espeak-ng"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryDirectory() as scratch:
        for voice in ESPEAK_VOICES:
            for index, sentence in enumerate(ESPEAK_SENTENCES):
                for speed in (140, 190):
                    wav = Path(scratch) / "speech.wav"
                    done = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), sentence],
                                          capture_output=True)
                    if done.returncode != 0 or not wav.is_file():
                        continue
                    audio, rate = mono_at_most_16k(wav)
                    path = folder / f"{voice}-{index}-{speed}.flac"
                    sf.write(str(path), audio, rate, subtype="PCM_16")
                    rows.append({"file": path.relative_to(out).as_posix(), "source": "espeak-ng", "kind": "speech",
                                 "package": "espeak-ng", "licence": ESPEAK_LICENCE,
                                 "original": f"espeak-ng -v {voice} -s {speed} sentence {index}",
                                 "seconds": round(len(audio) / rate, 3)})
                    count += 1
    return count


def write_readme(output_dir: Path, rows: list[dict], missing: list[str]) -> None:
    lines = ["# General-audio pretraining corpus", "",
             "Built by `scripts/build_general_audio_corpus.py` from Debian packages (see that script for what is "
             "left out and why).", "",
             "| source | kind | Debian package | licence | files | hours |", "|---|---|---|---|---|---|"]
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    for name, group in by_source.items():
        first = group[0]
        hours = sum(row["seconds"] for row in group) / 3600
        lines.append(f"| {name} | {first['kind']} | {first['package']} | {first['licence']} | {len(group)} | "
                     f"{hours:.2f} |")
    total = sum(row["seconds"] for row in rows) / 3600
    lines += ["", f"Total: {len(rows)} files, {total:.2f} hours."]
    if missing:
        lines += ["", "Not installed, left out: " + ", ".join(missing) + "."]
    (output_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/general-corpus")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="longer recordings are cut into pieces")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    audio_dir = output_dir / "audio"
    if audio_dir.exists():
        shutil.rmtree(audio_dir)  # the same inputs build the same corpus: start clean
    audio_dir.mkdir(parents=True)
    rows: list[dict] = []
    missing = []
    for source in SOURCES:
        found = add_package_source(source, audio_dir, args.max_seconds, rows)
        print(f"{source.name}: {found} files from {source.package}")
        if not found:
            missing.append(source.package)
    spoken = add_espeak(audio_dir, rows)
    print(f"espeak-ng: {spoken} utterances")
    if not spoken:
        missing.append("espeak-ng")
    with open(output_dir / "sources.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["file"])
        writer.writeheader()
        writer.writerows(rows)
    write_readme(output_dir, rows, missing)
    print((output_dir / "README.md").read_text(encoding="utf-8"))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
