"""Throughput of AudioViTFeatureExtractor vs librosa and transformers' ASTFeatureExtractor.

All three turn the same clips (real FSDD speech, soxr-resampled from 8 kHz to 16 kHz and tiled to 5 s)
into 128-bin log-mel spectrograms with n_fft=400, hop=160 (AST's setting). AST computes Kaldi fbank
features, which differ numerically; only throughput is compared. librosa runs melspectrogram +
power_to_db clip by clip; ours runs the whole batch at once.

    python benchmarks/feature_extraction.py            # exits 1 if a target is missed
    python benchmarks/feature_extraction.py --no-check --repeats 7

Targets: ours >= 10x AST and >= 2x librosa (median over rounds of the per-round speed-up; the methods
take turns within a round so that each ratio compares runs under the same machine load).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SAMPLING_RATE = 16000
N_FFT, HOP_LENGTH, NUM_MEL_BINS = 400, 160, 128
TARGETS = {"ast": 10.0, "librosa": 2.0}  # minimum speed-up of ours over each


def find_fsdd_dir() -> Path:
    for candidate in (
        os.environ.get("FSDD_DIR"),
        os.environ.get("AUDIO_VIT_DATA_DIR") and str(Path(os.environ["AUDIO_VIT_DATA_DIR"]) / "fsdd"),
        str(REPO_ROOT.parent / "shared" / "data" / "fsdd"),
    ):
        if candidate and (Path(candidate) / "metadata.csv").is_file():
            return Path(candidate)
    raise SystemExit("FSDD not found: set FSDD_DIR or place it at ../shared/data/fsdd beside the checkout")


def load_clips(num_clips: int, seconds: float) -> list[np.ndarray]:
    """Real FSDD clips, resampled to 16 kHz and tiled to `seconds` each (float32)."""
    import soundfile as sf
    import soxr

    paths = sorted((find_fsdd_dir() / "recordings").glob("*.flac"))[:num_clips]
    if len(paths) < num_clips:
        raise SystemExit(f"only {len(paths)} FSDD clips found, {num_clips} requested")
    target = int(seconds * SAMPLING_RATE)
    clips = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float32")
        audio = soxr.resample(audio, rate, SAMPLING_RATE, quality="HQ").astype(np.float32)
        clips.append(np.resize(audio, target))  # np.resize repeats the clip to fill `target` samples
    return clips


def time_interleaved(methods: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per run of each method; the methods take turns so that they see the same machine load."""
    for fn in methods.values():
        fn()  # warm-up: filterbank construction, lazy imports, allocator
    timings = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-clips", type=int, default=64, help="clips per run (default 64)")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip duration in seconds (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (each method once per round, in turn); medians are reported (default 5)")
    parser.add_argument("--device", default=None, help="device for ours, e.g. cuda (default: CPU)")
    parser.add_argument("--skip-ast", action="store_true", help="do not time ASTFeatureExtractor (slowest)")
    parser.add_argument("--no-check", action="store_true", help="always exit 0, even if a target is missed")
    args = parser.parse_args(argv)

    import librosa
    import torch
    from transformers import ASTFeatureExtractor

    from audio_vit.models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

    clips = load_clips(args.num_clips, args.seconds)
    ours = AudioViTFeatureExtractor(
        sampling_rate=SAMPLING_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, num_mel_bins=NUM_MEL_BINS, max_length=None
    )
    frames = ours.frames_for(len(clips[0]))
    ast = ASTFeatureExtractor(num_mel_bins=NUM_MEL_BINS, max_length=frames, sampling_rate=SAMPLING_RATE, do_normalize=False)

    def run_ours():
        out = ours(clips, sampling_rate=SAMPLING_RATE, return_tensors="np", do_normalize=False, device=args.device)
        assert out["input_values"].shape == (len(clips), NUM_MEL_BINS, frames)

    def run_librosa():
        for clip in clips:
            mel = librosa.feature.melspectrogram(
                y=clip, sr=SAMPLING_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, window="hann", center=True,
                pad_mode="constant", power=2.0, n_mels=NUM_MEL_BINS,
            )
            librosa.power_to_db(mel, ref=1.0, top_db=80.0)

    def run_ast():
        ast(clips, sampling_rate=SAMPLING_RATE, return_tensors="np")

    methods = {"ours": run_ours, "librosa": run_librosa}
    if not args.skip_ast:
        methods["ast"] = run_ast

    print(f"{len(clips)} FSDD clips tiled to {args.seconds:g} s at {SAMPLING_RATE} Hz -> {NUM_MEL_BINS} mels x {frames} frames")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device or 'cpu'}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    timings = time_interleaved(methods, args.repeats)
    for name, seconds in timings.items():
        rates = [len(clips) / t for t in seconds]
        print(f"{name:>8}: {statistics.median(rates):8.1f} clips/s (median of {args.repeats}; runs: "
              f"{', '.join(f'{r:.0f}' for r in rates)})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    # Speed-ups are taken round by round (runs next to each other saw the same load), then the median.
    missed = []
    for name, target in TARGETS.items():
        if name not in timings:
            continue
        ratio = statistics.median(theirs / ours for theirs, ours in zip(timings[name], timings["ours"]))
        ok = ratio >= target
        print(f"ours / {name}: {ratio:.1f}x (median of per-round ratios; target >= {target:g}x) {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(name)
    if missed and not args.no_check:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
