"""The `/classify` JSON endpoint of the web demo, driven as programs drive it: `gradio_client` and plain HTTP (the
README's curl steps) against a server on 127.0.0.1; concurrent clients, refused uploads, the window batcher."""
from __future__ import annotations

import json
import socket
import threading
import urllib.request
import uuid

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.inference import classify_audio_file, window_probabilities
from audio_vit.serving import WindowBatcher
from tests.conftest import tiny_config_kwargs

pytest.importorskip("gradio", reason="the web demo needs the `serve` extra (gradio)")
MAX_UPLOAD_BYTES = 400_000
MAX_DURATION_S = 20.0


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).eval()
    return model, AudioViTFeatureExtractor(num_mel_bins=16, max_length=32, mean=-40.0, std=15.0)


@pytest.fixture(scope="module")
def server(tiny_model):
    """The page of `build_demo`, launched as `audio-vit serve` launches it (small limits), on a free loopback port."""
    from audio_vit.app import build_demo

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model, extractor = tiny_model
    demo = build_demo(model, extractor, top_k=2, concurrency=4, max_batch_size=16, max_duration_s=MAX_DURATION_S)
    demo.queue(default_concurrency_limit=4).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size=MAX_UPLOAD_BYTES)
    try:
        yield f"http://127.0.0.1:{port}/"
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
    assert batcher.windows_classified == sum(x.shape[0] for x in inputs)
    assert batcher.forward_passes >= 5  # 32 windows at most 8 a pass
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher(inputs[0], masks[0])


def test_window_batcher_reports_model_errors_to_the_caller_and_keeps_serving(tiny_model):
    model, _ = tiny_model
    batcher = WindowBatcher(model, max_batch_size=4)
    with pytest.raises(Exception):
        batcher(torch.randn(2, 7, 32), torch.ones(2, 32, dtype=torch.long))  # 7 mel bins: the model refuses
    good = torch.randn(2, 16, 32)
    assert batcher(good, torch.ones(2, 32, dtype=torch.long)).shape == (2, 3)
    batcher.close()
