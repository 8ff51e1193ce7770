"""The `/classify` JSON endpoint of the web demo, driven as programs drive it: `gradio_client` and plain HTTP (the
README's curl steps) against a server on 127.0.0.1; concurrent clients, refused uploads, a burst beyond the queue;
the window batcher: shared forward passes, a full queue, timeouts, closing."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
import uuid

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.inference.long_audio import classify_audio_file, window_probabilities
from audio_vit.serving.batching import RequestAdmission, ServerBusyError, WindowBatcher
from tests.conftest import tiny_config_kwargs

pytest.importorskip("gradio", reason="the web demo needs the `serve` extra (gradio)")
MAX_UPLOAD_BYTES = 400_000
MAX_DURATION_S = 20.0


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).eval()
    return model, AudioViTFeatureExtractor(num_mel_bins=16, max_length=32, mean=-40.0, std=15.0)


class GatedModel(torch.nn.Module):
    """The tiny model behind a gate: every forward pass waits until the test opens `gate` (`entered` is set once
    the first pass is inside); records the windows of each pass."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.config = model, model.config
        self.entered, self.gate = threading.Event(), threading.Event()
        self.batch_sizes = []

    def forward(self, input_values, attention_mask=None):
        self.batch_sizes.append(input_values.shape[0])
        self.entered.set()
        assert self.gate.wait(timeout=120), "the test never opened the gate"
        return self.inner(input_values=input_values, attention_mask=attention_mask)


def in_thread(function, *args):
    """Run `function(*args)` in a thread; returns (thread, outcome) where outcome gets "result" or "error"."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # noqa: BLE001 -- the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def launch(demo) -> str:
    """Launch a `build_demo` page as `audio-vit serve` does (small upload limit) on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size=MAX_UPLOAD_BYTES)
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def server(tiny_model):
    """The page of `build_demo` (small limits), launched as `audio-vit serve` launches it."""
    from audio_vit.serving.app import build_demo

    model, extractor = tiny_model
    demo = build_demo(model, extractor, top_k=2, concurrency=4, max_batch_size=16, max_duration_s=MAX_DURATION_S)
    try:
        yield launch(demo)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False, download_files=False)


def _expected(tiny_model, path, top_k=2):
    model, extractor = tiny_model
    return classify_audio_file(model, extractor, path, top_k=top_k)


def test_classify_returns_labels_and_scores_as_json(client, tiny_model, fsdd_clips):
    from gradio_client import handle_file

    answer = client.predict(handle_file(str(fsdd_clips[2])), api_name="/classify")
    expected = _expected(tiny_model, fsdd_clips[2])
    assert set(answer) == {"file", "duration_s", "label", "scores", "windows"}
    assert answer["file"] == fsdd_clips[2].name and answer["label"] == expected.label
    assert [s["label"] for s in answer["scores"]] == [s["label"] for s in expected.scores]
    assert [s["score"] for s in answer["scores"]] == pytest.approx([s["score"] for s in expected.scores], abs=1e-5)
    assert [(w["start_s"], w["label"]) for w in answer["windows"]] == [(w.start_s, w.label) for w in expected.windows]
    assert answer["duration_s"] == pytest.approx(sf.info(fsdd_clips[2]).duration, abs=1e-3)


def test_the_api_is_one_named_documented_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/classify"]  # the page's own events are private
    (parameter,) = endpoints["/classify"]["parameters"]
    assert parameter["component"] == "Audio"


def test_curl_steps_of_the_readme(server, fsdd_clips):
    """POST the file to /gradio_api/upload, POST its path to /gradio_api/call/classify, read the event stream."""
    boundary = uuid.uuid4().hex
    clip = fsdd_clips[3]
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{clip.name}\"\r\n"
            "Content-Type: audio/flac\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    upload = urllib.request.Request(f"{server}gradio_api/upload", data=body,
                                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    (uploaded,) = json.load(urllib.request.urlopen(upload, timeout=30))
    call = urllib.request.Request(
        f"{server}gradio_api/call/classify", headers={"Content-Type": "application/json"},
        data=json.dumps({"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]}).encode())
    event_id = json.load(urllib.request.urlopen(call, timeout=30))["event_id"]
    stream = urllib.request.urlopen(f"{server}gradio_api/call/classify/{event_id}", timeout=60).read().decode()
    assert "event: complete" in stream, stream
    data = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])
    assert data[0]["file"] == clip.name and len(data[0]["scores"]) == 2


def test_concurrent_clients_each_get_their_own_answer(server, tiny_model, fsdd_clips, tmp_path):
    from gradio_client import Client, handle_file

    long_clip = tmp_path / "several_digits.wav"  # many windows, in the batcher beside the short clips
    sf.write(long_clip, np.concatenate([sf.read(p, dtype="float32")[0] for p in fsdd_clips]), 8000)
    clips = [*fsdd_clips[:5], long_clip]
    answers, errors = {}, []

    def ask(index, clip):
        try:  # one client per thread, as separate users
            answers[index] = Client(server, verbose=False, download_files=False).predict(
                handle_file(str(clip)), api_name="/classify")
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(i, clip)) for i, clip in enumerate(clips)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(answers) == len(clips)
    for index, clip in enumerate(clips):
        expected = _expected(tiny_model, clip)
        assert answers[index]["file"] == clip.name
        assert [w["label"] for w in answers[index]["windows"]] == [w.label for w in expected.windows]
        assert [s["score"] for s in answers[index]["scores"]] == pytest.approx(
            [s["score"] for s in expected.scores], abs=1e-5)


def test_unreadable_too_long_and_too_big_uploads_are_refused_and_the_server_keeps_serving(client, fsdd_clips, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    upload_dir = tmp_path / "mine"
    upload_dir.mkdir()
    notes = upload_dir / "notes.wav"
    notes.write_text("not audio")
    with pytest.raises(AppError, match="notes.wav: unreadable") as info:
        client.predict(handle_file(str(notes)), api_name="/classify")
    assert "/tmp" not in str(info.value) and "gradio" not in str(info.value)  # no server path in the message

    too_long = upload_dir / "half_a_minute.flac"  # 30 s > MAX_DURATION_S, small enough to upload
    sf.write(too_long, np.zeros(30 * 8000, dtype=np.float32), 8000)
    with pytest.raises(AppError, match="half_a_minute.flac: 30.00 s is longer than the limit of 20.00 s"):
        client.predict(handle_file(str(too_long)), api_name="/classify")

    too_big = upload_dir / "noise.wav"  # 10 s of 16-bit noise at 44.1 kHz: 882 kB > MAX_UPLOAD_BYTES
    sf.write(too_big, np.random.default_rng(0).uniform(-0.5, 0.5, 441_000).astype(np.float32), 44100, subtype="PCM_16")
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(handle_file(str(too_big)), api_name="/classify")

    assert client.predict(handle_file(str(fsdd_clips[0])), api_name="/classify")["file"] == fsdd_clips[0].name


def test_a_burst_beyond_the_queue_is_told_busy_at_once_and_the_server_keeps_serving(tiny_model, fsdd_clips):
    from gradio_client import Client, handle_file

    from audio_vit.serving.app import build_demo

    model, extractor = tiny_model
    gated = GatedModel(model)  # holds the first request in the model until the queue has filled
    demo = build_demo(gated, extractor, top_k=2, concurrency=1, max_queue=1)
    admission = demo.audio_classifier.admission
    try:
        client = Client(launch(demo), verbose=False, download_files=False)
        running = client.submit(handle_file(str(fsdd_clips[0])), api_name="/classify")
        assert gated.entered.wait(60)
        waiting = client.submit(handle_file(str(fsdd_clips[1])), api_name="/classify")
        wait_until(lambda: admission.waiting == 1, "the second request waiting for the slot")
        refused = client.submit(handle_file(str(fsdd_clips[2])), api_name="/classify")
        with pytest.raises(Exception, match="The server is busy: 1 request.s. are being classified and 1 are waiting "
                                            ".at most 1.; please retry in a moment"):
            refused.result(timeout=60)  # refused while the others still wait: no wait that grows with the burst
        assert not running.done() and not waiting.done()
        gated.gate.set()
        assert running.result(timeout=60)["file"] == fsdd_clips[0].name
        assert waiting.result(timeout=60)["file"] == fsdd_clips[1].name
        assert client.predict(handle_file(str(fsdd_clips[2])), api_name="/classify")["file"] == fsdd_clips[2].name
        assert admission.refused == 1 and admission.held_audio_s == pytest.approx(0.0, abs=1e-6)
    finally:
        gated.gate.set()
        demo.close()


def test_admission_takes_in_short_clips_and_refuses_long_recordings_beyond_the_audio_limit():
    async def scenario():
        admission = RequestAdmission(concurrency=1, max_waiting=10, max_audio_s=600.0)
        gate = asyncio.Event()

        async def hold(seconds):
            async with admission.admit(seconds):
                await gate.wait()

        async def settle(condition):
            while not condition():
                await asyncio.sleep(0)

        first = asyncio.create_task(hold(400.0))  # runs
        await settle(lambda: admission.running == 1)
        short = [asyncio.create_task(hold(5.0)) for _ in range(5)]  # 25 s more: taken in, waiting
        await settle(lambda: admission.waiting == 5)
        with pytest.raises(ServerBusyError, match="The server is busy: 7.1 min of audio are being classified or "
                                                  "waiting, and this recording's 3.3 min would pass the limit of "
                                                  "10.0 min; please retry in a moment"):
            await hold(200.0)
        given_up = asyncio.create_task(hold(5.0))  # taken in, then its client goes away while it waits
        await settle(lambda: admission.waiting == 6)
        given_up.cancel()
        await settle(lambda: admission.waiting == 5)
        gate.set()
        await asyncio.gather(first, *short)
        assert (admission.refused, admission.running, admission.waiting) == (1, 0, 0)
        assert admission.held_audio_s == pytest.approx(0.0)
        await hold(3600.0)  # nothing held: taken in however long

        counted = RequestAdmission(concurrency=1, max_waiting=1, max_audio_s=None)
        gate.clear()
        held = [asyncio.create_task(hold_in(counted, gate)) for _ in range(2)]  # one runs, one waits
        await settle(lambda: counted.running == 1 and counted.waiting == 1)
        with pytest.raises(ServerBusyError, match="1 request.s. are being classified and 1 are waiting .at most 1."):
            await hold_in(counted, gate)
        gate.set()
        await asyncio.gather(*held)

    async def hold_in(admission, gate):
        async with admission.admit(1.0):
            await gate.wait()

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="max_waiting=-1 must be at least 0"):
        RequestAdmission(concurrency=1, max_waiting=-1, max_audio_s=None)


def test_window_batcher_gives_each_caller_its_own_rows(tiny_model):
    model, _ = tiny_model
    batcher = WindowBatcher(model, max_batch_size=8)
    torch.manual_seed(1)
    inputs = [torch.randn(n, 16, 32) for n in (1, 3, 8, 13, 2, 5)]  # 13 > max_batch_size: split in two passes
    masks = [torch.ones(x.shape[0], 32, dtype=torch.long) for x in inputs]
    results = [None] * len(inputs)

    def call(i):
        results[i] = batcher(inputs[i], masks[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for x, mask, got in zip(inputs, masks, results):
        torch.testing.assert_close(got, window_probabilities(model, x, mask), atol=1e-5, rtol=0)
    assert batcher.windows_classified == sum(batcher.batch_sizes) == sum(x.shape[0] for x in inputs)
    assert max(batcher.batch_sizes) <= 8
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher(inputs[0], masks[0])


def test_windows_of_concurrent_requests_share_one_forward_pass(tiny_model):
    model, _ = tiny_model
    gated = GatedModel(model)
    batcher = WindowBatcher(gated, max_batch_size=16)
    torch.manual_seed(2)
    inputs = {n: torch.randn(n, 16, 32) for n in (1, 2, 3, 4)}
    masks = {n: torch.ones(n, 32, dtype=torch.long) for n in inputs}
    first = in_thread(batcher, inputs[1], masks[1])
    assert gated.entered.wait(30)  # the worker is inside the model with the first request
    others = {n: in_thread(batcher, inputs[n], masks[n]) for n in (2, 3, 4)}
    wait_until(lambda: batcher.waiting == 3, "three requests queued behind the first")
    gated.gate.set()
    for n, (thread, outcome) in {1: first, **others}.items():
        thread.join(timeout=60)
        torch.testing.assert_close(outcome["result"], window_probabilities(model, inputs[n], masks[n]), atol=1e-5,
                                   rtol=0)
    assert gated.batch_sizes == [1, 2 + 3 + 4]  # the three requests' windows went through the model together
    assert batcher.forward_passes == 2
    batcher.close()


def test_a_full_batcher_refuses_with_busy_retry_and_serves_the_rest(tiny_model):
    model, _ = tiny_model
    gated = GatedModel(model)
    batcher = WindowBatcher(gated, max_batch_size=4, max_waiting=2)
    x, mask = torch.randn(3, 16, 32), torch.ones(3, 32, dtype=torch.long)
    callers = [in_thread(batcher, x, mask)]
    assert gated.entered.wait(30)
    callers += [in_thread(batcher, x, mask) for _ in range(2)]
    wait_until(lambda: batcher.waiting == 2, "two batches waiting")
    with pytest.raises(ServerBusyError, match="busy: 2 window batches are waiting for the model .at most 2.; please"):
        batcher(x, mask)  # refused at once: the queue is full
    assert batcher.refused == 1
    gated.gate.set()
    expected = window_probabilities(model, x, mask)
    for thread, outcome in callers:
        thread.join(timeout=60)
        torch.testing.assert_close(outcome["result"], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(batcher(x, mask), expected, atol=1e-5, rtol=0)  # and it serves the next one
    with pytest.raises(ValueError, match="12 windows make 3 batches of at most 4, more than the batcher queues"):
        batcher(torch.randn(12, 16, 32), torch.ones(12, 32, dtype=torch.long))
    batcher.close()


def test_a_caller_waits_at_most_timeout_s_for_its_rows(tiny_model):
    model, _ = tiny_model
    gated = GatedModel(model)  # the gate stays shut: the model never answers
    batcher = WindowBatcher(gated, timeout_s=0.5)
    thread, outcome = in_thread(batcher, torch.randn(2, 16, 32), torch.ones(2, 32, dtype=torch.long))
    thread.join(timeout=30)
    assert not thread.is_alive(), "the caller is still waiting"
    assert isinstance(outcome.get("error"), ServerBusyError)
    assert "did not classify these windows within 0.5 s; please retry" in str(outcome["error"])
    gated.gate.set()
    batcher.close()


def test_close_answers_every_waiting_request_and_stops_the_worker(tiny_model):
    model, _ = tiny_model
    gated = GatedModel(model)
    batcher = WindowBatcher(gated, max_batch_size=4)
    x, mask = torch.randn(2, 16, 32), torch.ones(2, 32, dtype=torch.long)
    running = in_thread(batcher, x, mask)
    assert gated.entered.wait(30)
    waiting = [in_thread(batcher, x, mask) for _ in range(3)]
    wait_until(lambda: batcher.waiting == 3, "three batches waiting")
    closer = in_thread(batcher.close, 0.5)  # the worker is stuck in the model: close waits 0.5 s for it
    closer[0].join(timeout=30)
    assert not closer[0].is_alive(), "close() is still waiting"
    for thread, outcome in waiting:
        thread.join(timeout=30)
        assert "closed before classifying" in str(outcome.get("error")), outcome
    with pytest.raises(RuntimeError, match="closed"):
        batcher(x, mask)
    gated.gate.set()  # the pass in progress still answers its caller, and the worker then ends
    running[0].join(timeout=30)
    torch.testing.assert_close(running[1]["result"], window_probabilities(model, x, mask), atol=1e-5, rtol=0)
    wait_until(lambda: not batcher._worker.is_alive(), "the worker thread to end")


def test_window_batcher_reports_model_errors_to_the_caller_and_keeps_serving(tiny_model):
    model, _ = tiny_model
    batcher = WindowBatcher(model, max_batch_size=4)
    with pytest.raises(Exception):
        batcher(torch.randn(2, 7, 32), torch.ones(2, 32, dtype=torch.long))  # 7 mel bins: the model refuses
    good = torch.randn(2, 16, 32)
    assert batcher(good, torch.ones(2, 32, dtype=torch.long)).shape == (2, 3)
    batcher.close()
