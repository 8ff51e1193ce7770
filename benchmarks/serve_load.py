"""Load benchmark of `audio-vit serve`: N concurrent requests of real clips against the same N sent one at a time.

Starts `audio-vit serve --model DIR` on a free loopback port, sends a few warm-up requests, then the clips one at
a time, then all of them at once (one `gradio_client` job each, as N users would), and prints p50 / p95 / max
latency, errors and clips/s of both, with the CPU seconds the server and this client used. Every request is
checked: the concurrent answer must equal the one-at-a-time answer for the same clip. It stops by itself
(`--max-seconds`, a per-request timeout) and always kills the server.

    # a model with a 5 s window (about 2 min on 2 cores; see BENCHMARKS.md "Serving under load")
    python benchmarks/fsdd_variants.py --variants noisy5s --output-dir outputs/variants
    audio-vit train --data-dir outputs/variants/noisy5s --split-strategy kfold --test-fold 1 \\
        --output-dir outputs/serve-model-5s --disable-tqdm
    python benchmarks/serve_load.py --model outputs/serve-model-5s --clips outputs/variants/noisy5s/audio \\
        --requests 50
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_clips(sources: list[Path], count: int) -> list[Path]:
    """`count` audio files from the given files / folders (sorted, every k-th so that all labels appear)."""
    files = []
    for source in sources:
        files += sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if source.is_dir() else [source]
    if not files:
        raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {[str(s) for s in sources]}")
    step = max(1, len(files) // count)
    return [files[(i * step) % len(files)] for i in range(count)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`audio-vit serve` in a child process on a free loopback port; `stop()` always kills it."""

    def __init__(self, model: str, extra: list[str], start_timeout_s: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "audio_vit.cli", "serve", "--model", model, "--port", str(self.port), *extra]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"audio-vit serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"audio-vit serve did not answer within {start_timeout_s} s:\n{self.output()}")
                time.sleep(0.3)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def summarise(name: str, latencies: list[float], errors: int, wall_s: float, server_cpu_s: float, client_cpu_s: float):
    done = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "mode": name, "requests": len(latencies) + errors, "errors": errors,
        "p50_s": round(float(np.percentile(done, 50)), 3), "p95_s": round(float(np.percentile(done, 95)), 3),
        "max_s": round(float(done.max()), 3), "wall_s": round(wall_s, 2),
        "clips_per_s": round(len(latencies) / wall_s, 2) if wall_s > 0 else None,
        "server_cpu_s": round(server_cpu_s, 2), "client_cpu_s": round(client_cpu_s, 2),
    }


def same(answer: dict, expected: dict, tolerance: float = 1e-4) -> bool:
    """Same labels in the same order, scores equal to `tolerance` (a batch of other sizes rounds differently)."""
    pairs = list(zip(answer["scores"], expected["scores"])) + list(zip(answer["windows"], expected["windows"]))
    return len(answer["scores"]) == len(expected["scores"]) and len(answer["windows"]) == len(expected["windows"]) \
        and all(a["label"] == b["label"] and abs(a["score"] - b["score"]) <= tolerance for a, b in pairs)


def run_requests(client, clips: list[Path], parallel: int, timeout_s: float, server_pid: int, name: str):
    """Send `clips` with at most `parallel` in flight; (summary, answers by index, error messages)."""
    from gradio_client import handle_file

    answers, failures, latencies = {}, [], []
    lock = threading.Lock()

    def one(index: int, clip: Path):
        started = time.perf_counter()
        try:
            answer = client.predict(handle_file(str(clip)), api_name="/classify")
            with lock:
                latencies.append(time.perf_counter() - started)
                answers[index] = answer
        except Exception as error:  # counted and shown, the run goes on
            with lock:
                failures.append(f"{clip.name}: {type(error).__name__}: {error}")

    server_cpu, client_cpu, started = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, i, clip) for i, clip in enumerate(clips)]
        _, late = wait(futures, timeout=timeout_s)
        for future in late:
            future.cancel()
    wall = time.perf_counter() - started
    failures += [f"timed out after {timeout_s} s"] * (len(clips) - len(answers) - len(failures))
    summary = summarise(name, latencies, len(failures), wall, cpu_seconds(server_pid) - server_cpu,
                        time.process_time() - client_cpu)
    return summary, answers, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder to serve (see the module docstring to make one)")
    parser.add_argument("--clips", type=Path, nargs="+", required=True, help="audio files or folders of them")
    parser.add_argument("--requests", type=int, default=50, help="requests per mode (default: 50)")
    parser.add_argument("--warmup", type=int, default=3, help="requests sent first and not counted (default: 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="audio-vit serve --concurrency (default: 8)")
    parser.add_argument("--max-batch-size", type=int, default=64, help="audio-vit serve --max-batch-size (default: 64)")
    parser.add_argument("--request-timeout-s", type=float, default=120.0, help="per mode (default: 120)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop everything after this (default: 600)")
    parser.add_argument("--default-client", action="store_true",
                        help="gradio_client as it comes (a new SSL context per request: much more client CPU)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    from gradio_client import Client

    clips = pick_clips(args.clips, args.requests)
    load_before = os.getloadavg()
    timer = threading.Timer(args.max_seconds, lambda: os._exit(3))  # the hard stop: never hang a CI or a shell
    timer.daemon = True
    timer.start()
    server = Server(args.model, ["--concurrency", str(args.concurrency), "--max-batch-size", str(args.max_batch_size)],
                    start_timeout_s=120)
    try:
        # gradio_client opens a new httpx client per upload and per event stream, and each one loads the CA bundle
        # into a new SSL context (~50 ms of CPU per request, measured with py-spy) even for http://; one shared
        # context (verification unchanged) keeps the load generator from eating the cores the server is measured on.
        ssl_context = None if args.default_client else ssl.create_default_context()
        client = Client(server.url, verbose=False, max_workers=max(1, args.requests), download_files=False,
                        **({} if ssl_context is None else {"ssl_verify": ssl_context}))
        warm, _, warm_failures = run_requests(client, clips[: args.warmup], 1, args.request_timeout_s,
                                              server.process.pid, "warm-up")
        sequential, one_answers, seq_failures = run_requests(client, clips, 1, args.request_timeout_s,
                                                             server.process.pid, "one at a time")
        concurrent, answers, con_failures = run_requests(client, clips, args.requests, args.request_timeout_s,
                                                         server.process.pid, f"{args.requests} concurrent")
    finally:
        server.stop()
        timer.cancel()
    mismatched = [clips[i].name for i, answer in answers.items() if i in one_answers and not same(answer, one_answers[i])]
    load_after = os.getloadavg()
    print(f"audio-vit serve --model {args.model} --concurrency {args.concurrency} --max-batch-size "
          f"{args.max_batch_size}; gradio_client {'as it comes' if args.default_client else 'with one SSL context'}; "
          f"{len(clips)} clips from {', '.join(map(str, args.clips))}; {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    header = list(sequential)
    print(" | ".join(header))
    for row in (warm, sequential, concurrent):
        print(" | ".join(str(row[key]) for key in header))
    for failure in (warm_failures + seq_failures + con_failures)[:10]:
        print("error:", failure)
    print(f"answers equal to the one-at-a-time ones: {len(answers) - len(mismatched)} of {len(answers)}"
          + (f" (differ: {mismatched[:5]})" if mismatched else ""))
    if args.json:
        args.json.write_text(json.dumps({"one_at_a_time": sequential, "concurrent": concurrent, "warm_up": warm,
                                         "load_before": load_before, "load_after": load_after,
                                         "mismatched": mismatched}, indent=1))
    return 0 if not (seq_failures or con_failures or mismatched) else 1


if __name__ == "__main__":
    sys.exit(main())
