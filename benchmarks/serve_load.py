"""Load benchmark of `audio-vit serve`: N concurrent requests of real clips against the same N sent one at a time,
and an overload case: many uploads of a long recording sent at once.

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

`--overload RECORDING` replaces those runs: `--overload-requests` uploads of RECORDING (default 100) are sent at
once, each by its own thread, through `/classify` (gradio_client) or, with `--overload-route page`, through the
page's own event as a browser sends it (upload, queue/join, event stream). Each upload ends as answered, "busy"
(gradio's "Queue is full" or the server's "busy, retry"), another error, or no answer by `--overload-wait-s`; the
counts within `--deadline-s` (default 60) are the figure of merit. Then one more request checks that the server
still serves, and the CSV files left in the server's temporary folder (its own TMPDIR) are counted.

    python benchmarks/long_recording.py make --hours 0.1666667 --output outputs/long/10min.flac
    python benchmarks/serve_load.py --model outputs/serve-model --clips outputs/long/10min.flac \\
        --overload outputs/long/10min.flac --overload-route page
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
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

    def __init__(self, model: str, extra: list[str], start_timeout_s: float, tmpdir: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "audio_vit.cli", "serve", "--model", model, "--port", str(self.port), *extra]
        env = dict(os.environ, **({"TMPDIR": tmpdir} if tmpdir else {}))  # its uploads and CSV downloads go there
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
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

BUSY_WORDS = ("queue is full", "busy")


def outcome_of(message: str) -> str:
    return "busy" if any(word in message.lower() for word in BUSY_WORDS) else "error"


def upload(url: str, clip: Path) -> dict:
    """POST the file to gradio's upload route, as the page does; the FileData of the uploaded copy."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{clip.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        (path,) = json.load(response)
    return {"path": path, "orig_name": clip.name, "meta": {"_type": "gradio.FileData"}}


def page_event(url: str) -> tuple[int, int]:
    """(fn_index, trigger_id) of the page's Classify button, from the page's config."""
    with urllib.request.urlopen(f"{url}config", timeout=30) as response:
        config = json.load(response)
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "classify-button")
    for index, dependency in enumerate(config["dependencies"]):
        if any(target[0] == button for target in dependency["targets"]):
            return dependency.get("id", index), button
    raise RuntimeError("the page has no Classify button event")


def page_request(url: str, clip: Path, event: tuple[int, int], timeout_s: float) -> tuple[str, str]:
    """One upload classified through the page's event, as the browser sends it: (outcome, detail)."""
    session = uuid.uuid4().hex[:11]
    body = json.dumps({"data": [upload(url, clip)], "fn_index": event[0], "trigger_id": event[1],
                       "session_hash": session, "event_data": None}).encode()
    join = urllib.request.Request(f"{url}gradio_api/queue/join", data=body,
                                  headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(join, timeout=60).close()
    except urllib.error.HTTPError as error:  # 503: gradio's queue is full
        return outcome_of(error.read().decode(errors="replace")), f"HTTP {error.code}"
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}", timeout=timeout_s) as stream:
        for line in stream:
            if not line.startswith(b"data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") != "process_completed":
                continue
            if not message.get("success"):
                return outcome_of(str(message.get("output"))), str(message.get("output"))[:200]
            status = str(message["output"]["data"][-1])  # the page's status line
            if "busy" in status.lower():
                return "busy", status
            return ("answered" if clip.name in status and "Could not" not in status else "error"), status[:200]
    return "error", "the event stream ended without a result"


def api_request(client, clip: Path) -> tuple[str, str]:
    """One upload classified through `/classify` with gradio_client: (outcome, detail)."""
    from gradio_client import handle_file

    try:
        answer = client.predict(handle_file(str(clip)), api_name="/classify")
    except Exception as error:  # QueueError ("Queue is full"), gr.Error ("busy, retry") or another failure
        return outcome_of(f"{type(error).__name__}: {error}"), f"{type(error).__name__}: {error}"[:200]
    return ("answered" if answer.get("file") == clip.name else "error"), answer.get("label", "")


def run_overload(server: Server, client, clip: Path, count: int, route: str, deadline_s: float, wait_s: float):
    """`count` uploads of `clip` released at once; per upload (outcome, seconds to it, detail)."""
    event = page_event(server.url) if route == "page" else None
    results: list = [None] * count
    start = threading.Barrier(count + 1)

    def one(index: int):
        start.wait()
        began = time.perf_counter()
        try:
            outcome, detail = (page_request(server.url, clip, event, wait_s) if route == "page"
                               else api_request(client, clip))
        except Exception as error:  # noqa: BLE001 -- counted and shown
            outcome, detail = outcome_of(str(error)), f"{type(error).__name__}: {error}"[:200]
        results[index] = (outcome, time.perf_counter() - began, detail)

    server_cpu = cpu_seconds(server.process.pid)
    pool = ThreadPoolExecutor(max_workers=count)
    futures = [pool.submit(one, i) for i in range(count)]
    start.wait()
    began = time.perf_counter()
    wait(futures, timeout=wait_s)
    wall = time.perf_counter() - began
    pool.shutdown(wait=False)  # a thread still waiting ends when the server is stopped
    for i, result in enumerate(results):
        if result is None:
            results[i] = ("no answer", wall, f"no answer within {wait_s:g} s")
    return results, wall, cpu_seconds(server.process.pid) - server_cpu


def summarise_overload(results, wall: float, server_cpu_s: float, deadline_s: float) -> dict:
    within = [r for r in results if r[1] <= deadline_s and r[0] != "no answer"]
    times = {kind: [r[1] for r in results if r[0] == kind] for kind in ("answered", "busy", "error")}
    return {
        "requests": len(results),
        f"answered_within_{deadline_s:g}s": sum(r[0] == "answered" for r in within),
        f"busy_within_{deadline_s:g}s": sum(r[0] == "busy" for r in within),
        f"errors_within_{deadline_s:g}s": sum(r[0] == "error" for r in within),
        f"later_than_{deadline_s:g}s": len(results) - len(within),
        "answered": len(times["answered"]), "busy": len(times["busy"]), "errors": len(times["error"]),
        "no_answer": sum(r[0] == "no answer" for r in results),
        "answered_max_s": round(max(times["answered"]), 1) if times["answered"] else None,
        "busy_max_s": round(max(times["busy"]), 1) if times["busy"] else None,
        "errors_s": [round(min(times["error"]), 1), round(max(times["error"]), 1)] if times["error"] else None,
        "wall_s": round(wall, 1), "server_cpu_s": round(server_cpu_s, 1),
    }


def count_csvs(tmpdir: str) -> int:
    """The page's CSV downloads left in the server's temporary folder (gradio's own cache excluded)."""
    return sum(1 for path in Path(tmpdir).glob("audio_vit_serve_*/**/*.csv"))


def overload_main(args, clips: list[Path]) -> int:
    """The overload case: see the module docstring."""
    from gradio_client import Client

    tmpdir = tempfile.mkdtemp(prefix="serve_load_tmp_")
    extra = ["--concurrency", str(args.concurrency), "--max-batch-size", str(args.max_batch_size)]
    extra += ["--max-queue", str(args.max_queue)] if args.max_queue is not None else []
    load_before = os.getloadavg()
    server = Server(args.model, extra, start_timeout_s=120, tmpdir=tmpdir)
    try:
        client = Client(server.url, verbose=False, max_workers=max(1, args.overload_requests), download_files=False,
                        ssl_verify=ssl.create_default_context())
        warm, _, warm_failures = run_requests(client, clips[: args.warmup], 1, args.request_timeout_s,
                                              server.process.pid, "warm-up")
        results, wall, server_cpu = run_overload(server, client, args.overload, args.overload_requests,
                                                 args.overload_route, args.deadline_s, args.overload_wait_s)
        summary = summarise_overload(results, wall, server_cpu, args.deadline_s)
        alive = server.process.poll() is None
        after, _, after_failures = run_requests(client, clips[:1], 1, args.request_timeout_s, server.process.pid,
                                                "next request")
        csvs = count_csvs(tmpdir)
    finally:
        server.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"audio-vit serve --model {args.model} {' '.join(extra)}; {args.overload_requests} uploads of "
          f"{args.overload} at once through {'the page' if args.overload_route == 'page' else '/classify'}; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for key, value in summary.items():
        print(f"{key}: {value}")
    details = sorted({(r[0], r[2]) for r in results if r[0] != "answered"})[:6]
    for outcome, detail in details:
        print(f"{outcome}: {detail}")
    print(f"server alive after the burst: {alive}; next request: {'answered' if not after_failures else after_failures}"
          f"; CSV files in the server's temporary folder: {csvs}")
    if args.json:
        args.json.write_text(json.dumps({"overload": summary, "server_alive": alive, "next_request": after,
                                         "next_request_failures": after_failures, "csv_files": csvs,
                                         "warm_up": warm, "warm_up_failures": warm_failures,
                                         "load_before": load_before, "load_after": load_after}, indent=1))
    return 0 if alive and not after_failures else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder to serve (see the module docstring to make one)")
    parser.add_argument("--clips", type=Path, nargs="+", required=True, help="audio files or folders of them")
    parser.add_argument("--requests", type=int, default=50, help="requests per mode (default: 50)")
    parser.add_argument("--warmup", type=int, default=3, help="requests sent first and not counted (default: 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="audio-vit serve --concurrency (default: 8)")
    parser.add_argument("--max-batch-size", type=int, default=64, help="audio-vit serve --max-batch-size (default: 64)")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="audio-vit serve --max-queue (default: not passed, the server's own default)")
    parser.add_argument("--request-timeout-s", type=float, default=120.0, help="per mode (default: 120)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop everything after this (default: 600)")
    parser.add_argument("--default-client", action="store_true",
                        help="gradio_client as it comes (a new SSL context per request: much more client CPU)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--overload", type=Path, help="the overload case with this recording (see the docstring)")
    parser.add_argument("--overload-requests", type=int, default=100, help="uploads sent at once (default: 100)")
    parser.add_argument("--overload-route", choices=("api", "page"), default="api",
                        help="through /classify (gradio_client) or the page's event as a browser (default: api)")
    parser.add_argument("--deadline-s", type=float, default=60.0,
                        help="answers and busy answers counted within this (default: 60)")
    parser.add_argument("--overload-wait-s", type=float, default=300.0,
                        help="how long the overload case waits for the last answers (default: 300)")
    args = parser.parse_args(argv)
    from gradio_client import Client

    clips = pick_clips(args.clips, args.requests)
    load_before = os.getloadavg()
    timer = threading.Timer(args.max_seconds, lambda: os._exit(3))  # the hard stop: never hang a CI or a shell
    timer.daemon = True
    timer.start()
    if args.overload is not None:
        try:
            return overload_main(args, clips)
        finally:
            timer.cancel()
    extra = ["--concurrency", str(args.concurrency), "--max-batch-size", str(args.max_batch_size)]
    extra += ["--max-queue", str(args.max_queue)] if args.max_queue is not None else []
    server = Server(args.model, extra, start_timeout_s=120)
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
