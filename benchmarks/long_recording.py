"""Synthesise a long recording from real FSDD digits, and measure `audio-vit predict` on it (time, peak RSS).

The recording is 16 kHz mono FLAC: FSDD test-split clips (resampled from 8 kHz) every `--spacing-s` seconds
in quiet white noise (-50 dBFS), written block by block so that making a 10-hour file needs little memory.
A CSV beside it lists where each digit was placed (`start_s,end_s,label,file`).

    python benchmarks/long_recording.py make --hours 1 --output outputs/long/1h.flac
    python benchmarks/long_recording.py predict --model outputs/serve-model outputs/long/1h.flac
    python benchmarks/long_recording.py page --model outputs/serve-model outputs/long/1h.flac

`predict` runs `audio-vit predict --segments --json` in a child process per file, reads its peak RSS (`ru_maxrss`
from `wait4`) and wall time, and checks the window labels against the placed digits (the share of digits whose
centre window has the digit's label). `page` starts `audio-vit serve` on a loopback port, uploads each recording
in headless Chromium (Debian's chromium + chromium-driver, as tests/test_app_browser.py) and waits for the page's
answer: seconds to the status line, the spectrogram's width, the timeline plot, the top label, the server's peak
RSS and the browser's (all its processes, sampled). A browser above `--max-browser-gb` is stopped and reported.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

REPO_ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
NOISE_DBFS = -50.0
BLOCK_S = 60  # seconds written at a time


def read_test_clips(fsdd_dir: Path) -> list[tuple[str, str, np.ndarray]]:
    """(file, label, waveform at 16 kHz) of FSDD's test split."""
    with open(fsdd_dir / "metadata.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    if not rows:
        raise ValueError(f"{fsdd_dir / 'metadata.csv'} lists no test clips")
    clips = []
    for row in rows:
        waveform, rate = sf.read(fsdd_dir / row["file_name"], dtype="float32")
        clips.append((row["file_name"], row["label"], soxr.resample(waveform, rate, RATE).astype(np.float32)))
    return clips


def make_recording(output: Path, hours: float, fsdd_dir: Path, spacing_s: float = 2.0, seed: int = 0) -> int:
    """Write `hours` of digits in noise to `output` (FLAC, 16 kHz, PCM_16) and a `.csv` of the digits; returns their count."""
    rng = np.random.default_rng(seed)
    clips = read_test_clips(fsdd_dir)
    total = int(hours * 3600 * RATE)
    block = BLOCK_S * RATE
    spacing = int(spacing_s * RATE)
    noise_rms = 10 ** (NOISE_DBFS / 20)
    output.parent.mkdir(parents=True, exist_ok=True)
    placed = []
    with sf.SoundFile(output, "w", samplerate=RATE, channels=1, format="FLAC", subtype="PCM_16") as sink:
        carry = np.zeros(0, dtype=np.float32)  # the part of a digit that runs into the next block
        for block_start in range(0, total, block):
            length = min(block, total - block_start)
            audio = (rng.standard_normal(length) * noise_rms).astype(np.float32)
            audio[: min(len(carry), length)] += carry[:length]
            carry = np.zeros(0, dtype=np.float32)
            first = -(-block_start // spacing) * spacing
            for onset in range(first, block_start + length, spacing):
                name, label, clip = clips[int(rng.integers(len(clips)))]
                if onset + len(clip) > total:
                    break
                offset = onset - block_start
                inside = min(len(clip), length - offset)
                audio[offset : offset + inside] += clip[:inside]
                carry = clip[inside:].copy()
                placed.append((onset / RATE, (onset + len(clip)) / RATE, label, name))
            sink.write(np.clip(audio, -1.0, 1.0))
    with open(output.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start_s", "end_s", "label", "file"])
        writer.writerows(placed)
    return len(placed)


def digit_recall(windows: list[dict], truth_csv: Path) -> float:
    """Share of placed digits whose label is the label of the window centred nearest to the digit's centre."""
    with open(truth_csv, newline="") as handle:
        truth = list(csv.DictReader(handle))
    centres = np.array([(w["start_s"] + w["end_s"]) / 2 for w in windows])
    hits = 0
    for row in truth:
        middle = (float(row["start_s"]) + float(row["end_s"])) / 2
        hits += windows[int(np.abs(centres - middle).argmin())]["label"] == row["label"]
    return hits / max(1, len(truth))


def measure_predict(model: str, recording: Path) -> dict:
    """Run `audio-vit predict --segments --json` on `recording` in a child process: time, peak RSS, answer."""
    command = [sys.executable, "-m", "audio_vit.cli", "predict", "--model", model, "--segments", "--json", str(recording)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO_ROOT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (peak RSS in kilobytes on Linux)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({os.waitstatus_to_exitcode(status)}):\n{stderr[-3000:]}")
    record = json.loads(stdout.strip().splitlines()[-1])
    result = {
        "file": str(recording), "duration_h": round(sf.info(recording).duration / 3600, 3),
        "wall_s": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), "windows": len(record["windows"]),
        "top": record["scores"][0],
    }
    truth = recording.with_suffix(".csv")
    if truth.is_file():
        result["digit_recall"] = round(digit_recall(record["windows"], truth), 4)
    return result


def _tree_rss_mb(root_pid: int) -> int:
    """RSS of a process and all its descendants (Linux /proc), in MB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        children.setdefault(int(status["PPid"]), []).append(pid)
        rss[pid] = int(status.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total // 1024


def _peak_rss_mb(pid: int) -> int:
    """VmHWM (peak RSS) of a running process, in MB."""
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("VmHWM"))
    return int(line.split()[1]) // 1024


def measure_page(model: str, recordings: list[Path], timeout_s: float, max_browser_gb: float) -> None:
    """Upload each recording to `audio-vit serve` in headless Chromium; print one JSON line per recording."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from serve_load import Server

    server = Server(model, [], start_timeout_s=120)
    service = Service("/usr/bin/chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1300",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='long-page-chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        for recording in recordings:
            driver.get(server.url)
            deadline = time.monotonic() + 60
            while not (upload := driver.find_elements(By.CSS_SELECTOR, "#audio-input input[type=file]")):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the page at {server.url} showed no upload input within 60 s")
                time.sleep(0.3)
            started, browser_peak, status = time.perf_counter(), 0, ""
            upload[0].send_keys(str(recording.resolve()))
            while time.perf_counter() - started < timeout_s:
                browser_peak = max(browser_peak, _tree_rss_mb(service.process.pid))
                if browser_peak > max_browser_gb * 1024:
                    status = f"stopped: the browser passed {max_browser_gb:g} GB"
                    break
                status = driver.find_element(By.ID, "status").text
                if recording.name in status:
                    break
                time.sleep(1)
            seconds = time.perf_counter() - started
            image = driver.find_elements(By.CSS_SELECTOR, "#spectrogram img")
            labels = driver.find_elements(By.CSS_SELECTOR, "#labels [data-testid=label-output-value]")
            print(json.dumps({
                "file": str(recording), "seconds_to_answer": round(seconds, 1), "status": status,
                "spectrogram_width": driver.execute_script("return arguments[0].naturalWidth", image[0]) if image else None,
                "timeline_plot": bool(driver.find_elements(By.CSS_SELECTOR, "#timeline-plot canvas, #timeline-plot svg")),
                "window_table": "start (s)" in "".join(t.text for t in driver.find_elements(By.ID, "timeline")),
                "top_label": labels[0].text.strip() if labels else None,
                "server_peak_rss_mb": _peak_rss_mb(server.process.pid), "browser_peak_rss_mb": browser_peak,
            }), flush=True)
            (REPO_ROOT / "outputs").mkdir(exist_ok=True)
            driver.save_screenshot(str(REPO_ROOT / "outputs" / f"page_{recording.stem}.png"))
    finally:
        driver.quit()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="write a long FLAC of FSDD digits in noise (+ a CSV of the digits)")
    make.add_argument("--hours", type=float, required=True)
    make.add_argument("--output", type=Path, required=True)
    make.add_argument("--fsdd", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "fsdd")
    make.add_argument("--spacing-s", type=float, default=2.0, help="seconds between digit onsets (default: 2)")
    make.add_argument("--seed", type=int, default=0)
    predict = commands.add_parser("predict", help="time `audio-vit predict` on recordings and read its peak RSS")
    predict.add_argument("--model", required=True, help="model folder (e.g. outputs/serve-model)")
    predict.add_argument("recordings", type=Path, nargs="+")
    page = commands.add_parser("page", help="upload recordings to `audio-vit serve` in headless Chromium")
    page.add_argument("--model", required=True, help="model folder (e.g. outputs/serve-model)")
    page.add_argument("--timeout-s", type=float, default=900.0, help="per recording (default: 900)")
    page.add_argument("--max-browser-gb", type=float, default=8.0, help="stop a browser above this (default: 8)")
    page.add_argument("recordings", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "page":
        measure_page(args.model, args.recordings, args.timeout_s, args.max_browser_gb)
        return 0
    if args.command == "make":
        started = time.perf_counter()
        count = make_recording(args.output, args.hours, args.fsdd, args.spacing_s, args.seed)
        size_mb = args.output.stat().st_size / 1e6
        print(f"{args.output}: {args.hours:g} h, {count} digits, {size_mb:.0f} MB, {time.perf_counter() - started:.0f} s")
        return 0
    for recording in args.recordings:  # one child per file, so each peak RSS is that file's alone
        print(json.dumps(measure_predict(args.model, recording)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
