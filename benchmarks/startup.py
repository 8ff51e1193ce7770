"""Start-up time of the `audio-vit` command line, and a cached `prepare` re-run against the cold run.

    python benchmarks/startup.py                      # FSDD beside the checkout, 5 repeats per command
    python benchmarks/startup.py --repeats 3 --skip-prepare

Every figure is the wall time of a fresh process (`python -m audio_vit.cli ...`, what the `audio-vit` script
runs), measured in the same run as `python -c pass`, so the interpreter's own start-up on this machine at this
load is in the table. Median of `--repeats` runs for the quick commands; the prepare pair runs once each:
cold = empty spectrogram cache and output folder, cached = the same command again (a second cached run is
reported too). The machine's load average is printed with the results.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["prepare", "train", "evaluate", "demo", "predict", "push", "export", "serve", "convert-ast"]


def run(argv: list[str], env: dict) -> float:
    """Wall seconds of one process; fails loudly when the command fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def median_time(argv: list[str], env: dict, repeats: int) -> float:
    return statistics.median(run(argv, env) for _ in range(repeats))


def find_fsdd() -> Path:
    for candidate in (os.environ.get("FSDD_DIR"), REPO.parent / "shared" / "data" / "fsdd"):
        if candidate and (Path(candidate) / "metadata.csv").is_file():
            return Path(candidate)
    raise SystemExit("FSDD not found: set FSDD_DIR or place it at ../shared/data/fsdd beside the checkout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs per quick command (median reported)")
    parser.add_argument("--skip-prepare", action="store_true", help="only the --help / import timings")
    parser.add_argument("--data-dir", default=None, help="FSDD folder (default: ../shared/data/fsdd)")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cli = [sys.executable, "-m", "audio_vit.cli"]
    rows = {"python -c pass": median_time([sys.executable, "-c", "pass"], env, args.repeats)}
    rows["audio-vit --help"] = median_time([*cli, "--help"], env, args.repeats)
    for command in COMMANDS:
        rows[f"audio-vit {command} --help"] = median_time([*cli, command, "--help"], env, args.repeats)
    rows["python -c 'import audio_vit'"] = median_time([sys.executable, "-c", "import audio_vit"], env, args.repeats)
    rows["python -c 'import audio_vit; audio_vit.AudioViTForAudioClassification'"] = median_time(
        [sys.executable, "-c", "import audio_vit; audio_vit.AudioViTForAudioClassification"], env, args.repeats)

    report = {"load_average_before": os.getloadavg(), "seconds": {k: round(v, 3) for k, v in rows.items()}}
    if not args.skip_prepare:
        data_dir = Path(args.data_dir) if args.data_dir else find_fsdd()
        work = Path(tempfile.mkdtemp(prefix="audio_vit_startup_bench_"))
        try:
            prepare = [*cli, "prepare", "--data-dir", str(data_dir), "--cache-dir", str(work / "cache"),
                       "--output-dir", str(work / "out"), "--quiet"]
            cold = run(prepare, env)
            cached = [run(prepare, env), run(prepare, env)]
            report["prepare"] = {
                "cold_s": round(cold, 2), "cached_s": [round(s, 3) for s in cached],
                "cold_over_cached": round(cold / statistics.median(cached), 1),
            }
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
