"""The web demo in a real browser: `audio-vit serve` on a model trained here, driven by headless Chromium: a short
clip, an unreadable file, and a 10-minute recording (longer than the old page could draw).

Uses Debian's `chromium` and `chromium-driver` (no browser download); `.ci/run` installs them. In CI
(CI=true) a missing browser fails the test; elsewhere it is skipped with the reason. The screenshot is
written to $AUDIO_VIT_SCREENSHOT_DIR (default: outputs/browser-test/ in the checkout).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.serving.app import TIMELINE_HEADERS
from audio_vit.data.audio_decoding import load_audio
from audio_vit.inference.long_audio import classify_audio_file, classify_long_audio
from tests.conftest import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1300",
]
DIGITS = ["0", "1", "2", "3"]
PAGE_TIMEOUT_S = 90


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the browser test (.ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def trained_model_dir(fsdd_dir, tmp_path_factory):
    """A tiny ViT trained for a few seconds on FSDD digits 0-3 (train split), saved as a model folder."""
    import csv

    rows = [r for r in csv.DictReader(open(fsdd_dir / "metadata.csv")) if r["split"] == "train" and r["label"] in DIGITS]
    rows = rows[::4]  # ~120 clips
    extractor = AudioViTFeatureExtractor(num_mel_bins=32, max_length=64)
    waves = [sf.read(fsdd_dir / r["file_name"], dtype="float32")[0] for r in rows]
    decibels = extractor(waves, sampling_rate=8000, resample=True, return_tensors="pt")["input_values"]
    extractor.mean, extractor.std = float(decibels.mean()), float(decibels.std())  # saved with the model
    inputs = extractor.normalize(decibels)
    labels = torch.tensor([DIGITS.index(r["label"]) for r in rows])
    torch.manual_seed(0)
    config = AudioViTConfig(
        num_mel_bins=32, max_length=64, patch_size=(32, 4), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        id2label=dict(enumerate(DIGITS)), label2id={d: i for i, d in enumerate(DIGITS)},
    )
    model = AudioViTForAudioClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = model(input_values=inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = tmp_path_factory.mktemp("browser-model")
    model.eval().save_pretrained(out)
    extractor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def served_page(trained_model_dir):
    """`audio-vit serve --model DIR` in a subprocess; yields its URL and stops it afterwards."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "audio_vit.cli", "serve", "--model", str(trained_model_dir), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"audio-vit serve exited with {server.returncode}:\n{log.read().decode(errors='replace')}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"audio-vit serve did not answer on {url} within {PAGE_TIMEOUT_S} s")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser(tmp_path):
    _require(Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file(),
             f"{CHROMIUM} / {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require(False, "selenium is not installed (pip install 'audio-vit[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(predicate, what: str, timeout: float = PAGE_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_upload_shows_the_models_top_label_and_spectrogram(served_page, browser, trained_model_dir, fsdd_dir, tmp_path):
    from selenium.webdriver.common.by import By

    clip = fsdd_dir / "recordings" / "2_theo_0.flac"  # a test-split clip
    model = AudioViTForAudioClassification.from_pretrained(trained_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(trained_model_dir)
    waveform, rate = load_audio(clip)
    expected = classify_long_audio(model, extractor, waveform, rate).label

    browser.get(served_page)
    upload = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#audio-input input[type=file]"), "the upload input")
    upload[0].send_keys(str(clip))

    def shown_label():
        found = browser.find_elements(By.CSS_SELECTOR, "#labels [data-testid=label-output-value]")
        return found[0].text.strip() if found and found[0].text.strip() else None

    assert _wait_for(shown_label, "the top label") == expected
    image = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#spectrogram img"), "the spectrogram image")[0]
    _wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
              "the spectrogram to load")
    assert "2_theo_0.flac" in browser.find_element(By.ID, "status").text

    screenshots = Path(os.environ.get("AUDIO_VIT_SCREENSHOT_DIR", REPO_ROOT / "outputs" / "browser-test"))
    screenshots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshots / "serve_upload.png"))

    # an unreadable upload leaves the page usable and says what went wrong
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    browser.find_element(By.CSS_SELECTOR, "#audio-input button[aria-label='Clear']").click()
    upload = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#audio-input input[type=file]"), "the upload input")
    upload[0].send_keys(str(bad))
    status = _wait_for(lambda: "Could not classify" in browser.find_element(By.ID, "status").text
                       and browser.find_element(By.ID, "status").text, "the error message")
    assert "not_audio.wav" in status


def _table_rows(text: str, headers: list[str]) -> list[list[str]]:
    """The cells of a gradio Dataframe's text (its headers, then one cell per line, row by row), as rows."""
    lines = [line.strip() for line in text.splitlines()]
    first = lines.index(headers[0])
    assert lines[first : first + len(headers)] == headers, lines[:10]
    cells = lines[first + len(headers):]
    return [cells[i : i + len(headers)] for i in range(0, len(cells) - len(headers) + 1, len(headers))]


def _ten_minute_recording(fsdd_dir: Path, path: Path) -> None:
    """FSDD test clips of digits 0-3 every 2 s in quiet noise, 10 minutes at 8 kHz, written a minute at a time."""
    import csv

    rows = [r for r in csv.DictReader(open(fsdd_dir / "metadata.csv")) if r["split"] == "test" and r["label"] in DIGITS]
    clips = [sf.read(fsdd_dir / r["file_name"], dtype="float32")[0] for r in rows[:40]]
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC") as sink:
        for minute in range(10):
            audio = (0.001 * rng.standard_normal(8000 * 60)).astype(np.float32)
            for onset in range(0, 8000 * 60 - 8000, 16000):
                clip = clips[(minute * 30 + onset // 16000) % len(clips)]
                audio[onset : onset + len(clip)] += clip
            sink.write(audio)


def test_a_ten_minute_recording_shows_labels_spectrogram_and_timeline(served_page, browser, trained_model_dir,
                                                                       fsdd_dir, tmp_path):
    from selenium.webdriver.common.by import By

    recording = tmp_path / "ten_minutes.flac"
    _ten_minute_recording(fsdd_dir, recording)
    model = AudioViTForAudioClassification.from_pretrained(trained_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(trained_model_dir)
    expected = classify_audio_file(model, extractor, recording)

    browser.get(served_page)
    upload = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#audio-input input[type=file]"), "the upload input")
    upload[0].send_keys(str(recording))
    status = _wait_for(lambda: "ten_minutes.flac" in browser.find_element(By.ID, "status").text
                       and browser.find_element(By.ID, "status").text, "the status line")
    assert "10 min 0 s" in status and f"{len(expected.windows)} window(s)" in status, status

    shown = browser.find_elements(By.CSS_SELECTOR, "#labels [data-testid=label-output-value]")
    assert shown and shown[0].text.strip() == expected.label
    image = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#spectrogram img"), "the spectrogram image")[0]
    width = _wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
                      "the spectrogram to load")
    assert 256 <= width <= 1024  # bounded: the old page drew 60000 columns and failed
    plot = _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#timeline-plot canvas, #timeline-plot svg"),
                     "the timeline plot")
    assert plot[0].size["width"] > 100
    table = _wait_for(lambda: browser.find_element(By.ID, "timeline").text, "the window table")
    shown_rows = _table_rows(table, TIMELINE_HEADERS)[:20]  # the rows the page draws first
    assert len(shown_rows) == 20, table[:500]
    for (start, end, label, score), window in zip(shown_rows, expected.windows):
        assert (float(start), float(end), label) == (pytest.approx(window.start_s), pytest.approx(window.end_s),
                                                     window.label)
        assert float(score) == pytest.approx(window.score, abs=1e-4)
    assert len({row[2] for row in shown_rows}) > 1  # more than one label: the rows are told apart by their labels
    assert _wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#timeline-csv a"), "the CSV download")

    screenshots = Path(os.environ.get("AUDIO_VIT_SCREENSHOT_DIR", REPO_ROOT / "outputs" / "browser-test"))
    screenshots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshots / "serve_ten_minutes.png"))
