"""The web demo's logic without a browser: classification, the bounded spectrogram overview, timeline, card summary,
errors naming the upload, limits, the CSV downloads kept, busy answers, closing, `serve --help`."""
from __future__ import annotations

import asyncio
import json
import tempfile
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.serving.app import (
    AudioClassifierDemo, build_demo, format_duration, model_summary, spectrogram_image, timeline_points, write_timeline_csv,
)
from audio_vit.data.audio_decoding import load_audio
from audio_vit.cli import main as cli_main
from audio_vit.inference.long_audio import WindowPrediction, classify_long_audio
from audio_vit.serving.batching import ServerBusyError
from audio_vit.serving.spectrogram_overview import STRIP_HEIGHT_PX, SpectrogramOverview, label_colours, overview_image
from tests.conftest import tiny_config_kwargs

pytest.importorskip("gradio", reason="the web demo needs the `serve` extra (gradio)")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-demo")
    torch.manual_seed(0)
    AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).save_pretrained(out)
    AudioViTFeatureExtractor(num_mel_bins=16, max_length=32).save_pretrained(out)
    (out / "test_results.json").write_text(json.dumps({"accuracy": 0.75, "num_samples": 12}))
    return out


def test_spectrogram_image_puts_low_bins_at_the_bottom():
    features = np.zeros((16, 40), dtype=np.float32)
    features[0] = 1.0  # the lowest mel bin is the loudest
    image = spectrogram_image(features, height=64)
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8  # 4 rows per bin; 40 frames doubled to >= 64
    assert (image[-1] != image[0]).any() and (image[-4:] == image[-1]).all()
    with pytest.raises(ValueError, match="shape"):
        spectrogram_image(np.zeros((16, 0)))


def test_demo_classifies_as_predict_does(tiny_model_dir, fsdd_clips, tmp_path):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    long_file = tmp_path / "long.wav"
    sf.write(long_file, np.concatenate([sf.read(p, dtype="float32")[0] for p in fsdd_clips]), 8000)

    result = AudioClassifierDemo(model, extractor, top_k=2).classify(str(long_file))
    waveform, rate = load_audio(long_file)
    expected = classify_long_audio(model, extractor, waveform, rate, top_k=2)
    assert list(result.scores) == [s["label"] for s in expected.scores]
    assert list(result.scores.values()) == pytest.approx([s["score"] for s in expected.scores], abs=1e-5)
    assert [row[2] for row in result.timeline] == [w.label for w in expected.windows] and len(result.timeline) > 1
    frames = extractor.frames_for(len(waveform) * 2)  # 8 kHz resampled to 16 kHz
    assert result.spectrogram.shape == (256 + STRIP_HEIGHT_PX, frames * max(1, -(-256 // frames)), 3)
    assert "long.wav" in result.message and expected.label in result.message
    answer = result.to_json()
    assert answer["file"] == "long.wav" and answer["label"] == expected.label
    assert answer["duration_s"] == pytest.approx(len(waveform) / rate, abs=1e-3)
    assert [w["label"] for w in answer["windows"]] == [w.label for w in expected.windows]
    json.dumps(answer)  # what /classify sends must be plain JSON


def test_a_recording_longer_than_the_old_image_limit_gets_a_bounded_picture(tiny_model_dir, tmp_path):
    """The page used to draw one column per frame: over 16383 frames (164 s here) WebP refused the image."""
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    path = tmp_path / "four_minutes.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC") as sink:
        for _ in range(4):
            sink.write((0.01 * rng.standard_normal(8000 * 60)).astype(np.float32))
    result = AudioClassifierDemo(model, extractor).classify(str(path))
    assert result.duration_s == pytest.approx(240.0) and "4 min 0 s" in result.message
    assert result.spectrogram.shape[0] == 256 + STRIP_HEIGHT_PX and 512 <= result.spectrogram.shape[1] <= 1024
    assert len(result.windows) == len(result.timeline) > 1000


def test_overview_keeps_at_most_max_columns_of_frame_means():
    overview = SpectrogramOverview(max_columns=8)
    frames = np.arange(100, dtype=np.float32)[None, :].repeat(2, axis=0)  # frame t holds t
    for start in range(0, 100, 7):  # chunks of any size
        overview.add(frames[:, start : start + 7])
    features = overview.features()
    assert overview.num_frames == 100 and features.shape[1] <= 8 and overview.frames_per_column == 16
    assert features[0, 0] == pytest.approx(np.mean(np.arange(16)))  # the first column: the mean of frames 0..15
    assert features[0, -1] == pytest.approx(np.mean(np.arange(96, 100)))  # the rest after the last full column
    short = SpectrogramOverview()
    short.add(frames[:, :10])
    np.testing.assert_array_equal(short.features(), frames[:, :10])  # a short clip keeps every frame


def test_overview_image_marks_each_window_in_its_label_colour():
    overview = SpectrogramOverview()
    overview.add(np.zeros((16, 300), dtype=np.float32))
    colours = label_colours(["zero", "one", "two"])
    windows = [(0, 100, "zero"), (100, 200, "one"), (200, 300, "two")]
    image = overview_image(overview, windows, colours)
    strip = image[-1]  # the bottom row of the strip
    assert image.shape == (256 + STRIP_HEIGHT_PX, 300, 3)
    for x, label in ((50, "zero"), (150, "one"), (250, "two")):
        assert "#%02x%02x%02x" % tuple(strip[x]) == colours[label]


def test_timeline_points_and_csv(tmp_path):
    windows = [WindowPrediction(start_s=i * 0.5, end_s=i * 0.5 + 1.0, label="zero" if i % 3 else "one", score=i / 10000)
               for i in range(5000)]
    points, step = timeline_points(windows, max_points=1000)
    assert step == 5 and len(points) == 1000 and list(points.columns) == ["time (min)", "score", "label"]
    assert points["score"].iloc[0] == pytest.approx(4 / 10000)  # the most confident window of each run of 5
    short, step = timeline_points(windows[:10])
    assert step == 1 and list(short.columns)[0] == "time (s)" and short["time (s)"].iloc[0] == 0.5

    from audio_vit.serving.app import DemoResult

    result = DemoResult(file="walk.flac", duration_s=2500.5, scores={"zero": 0.6}, windows=windows[:3], message="")
    path = write_timeline_csv(result, str(tmp_path))
    assert path.endswith("walk_windows.csv")
    assert open(path).read().splitlines() == ["start (s),end (s),label,score", "0.0,1.0,one,0.0", "0.5,1.5,zero,0.0001",
                                              "1.0,2.0,zero,0.0002"]
    assert [format_duration(s) for s in (4.523, 600, 36000)] == ["4.52 s", "10 min 0 s", "10 h 0 min"]


def test_unreadable_or_refused_files_are_clear_errors_naming_the_upload(tiny_model_dir, tmp_path):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir)
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    upload_dir = tmp_path / "gradio" / "0123abcd"  # where gradio keeps an upload: a hash folder, then its own name
    upload_dir.mkdir(parents=True)
    bad = upload_dir / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav: unreadable") as info:
        AudioClassifierDemo(model, extractor).classify(str(bad))
    assert str(upload_dir) not in str(info.value)
    with pytest.raises(ValueError, match="no audio"):
        AudioClassifierDemo(model, extractor).classify(None)
    long = upload_dir / "three_seconds.wav"
    sf.write(long, np.zeros(3 * 8000, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="three_seconds.wav: 3.00 s is longer than the limit of 2.00 s"):
        AudioClassifierDemo(model, extractor, max_duration_s=2.0).classify(str(long))


def test_model_summary_lists_labels_and_metrics(tiny_model_dir, tmp_path):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir)
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    summary = model_summary(model, extractor, tiny_model_dir)
    assert "`zero`, `one`, `two`" in summary and "accuracy 0.75" in summary and "0.32 s windows" in summary
    assert "no test_results.json" in model_summary(model, extractor, tmp_path)


def test_build_demo_from_folder_and_from_memory(tiny_model_dir):
    import gradio as gr

    assert isinstance(build_demo(str(tiny_model_dir), top_k=2), gr.Blocks)
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="feature_extractor"):
        build_demo(model)
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    assert isinstance(build_demo(model, extractor, title="digits"), gr.Blocks)


def page_event(demo, name: str):
    """The (async) function behind one of the page's events (`show`: the page, `classify`: the API), as gradio
    calls it."""
    return next(function.fn for function in demo.fns.values() if function.name == name)


def test_the_page_keeps_only_its_latest_csv_downloads(tiny_model_dir, fsdd_clips, tmp_path, monkeypatch):
    temporary = tmp_path / "tmp"  # where the server's temporary folder goes
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    recording = tmp_path / "digits.wav"  # several windows: the page writes a CSV of them
    sf.write(recording, np.concatenate([sf.read(p, dtype="float32")[0] for p in fsdd_clips]), 8000)
    demo = build_demo(str(tiny_model_dir), kept_downloads=3)
    show = page_event(demo, "show")
    written = [asyncio.run(show(str(recording)))[4]["value"] for _ in range(5)]
    assert len(set(written)) == 5 and all(path.endswith("digits_windows.csv") for path in written)
    kept = sorted(str(path) for path in temporary.rglob("*.csv"))
    assert kept == sorted(written[-3:])  # the latest three; the older ones are gone with their sub-folders
    (folder,) = temporary.iterdir()
    assert len(list(folder.iterdir())) == 3
    demo.close()
    assert not folder.exists()


def window_batcher_threads() -> int:
    return sum(thread.name == "audio-vit-window-batcher" and thread.is_alive() for thread in threading.enumerate())


def test_closing_the_demo_stops_its_model_thread(tiny_model_dir):
    before = window_batcher_threads()
    demo = build_demo(str(tiny_model_dir))
    assert window_batcher_threads() == before + 1
    demo.close()
    assert window_batcher_threads() == before


def test_a_busy_model_is_a_clear_busy_retry_answer_on_the_page_and_the_api(tiny_model_dir, fsdd_clips, monkeypatch):
    import gradio as gr

    demo = build_demo(str(tiny_model_dir))

    def busy(self, path, draw=True):
        raise ServerBusyError("The server is busy: 64 window batches are waiting for the model (at most 64); please "
                              "retry in a moment")

    monkeypatch.setattr(AudioClassifierDemo, "classify", busy)
    with pytest.raises(gr.Error, match="The server is busy: 64 window batches.*please retry in a moment"):
        asyncio.run(page_event(demo, "classify")(str(fsdd_clips[0])))
    status = asyncio.run(page_event(demo, "show")(str(fsdd_clips[0])))[-1]
    assert "The server is busy" in status and "retry" in status
    demo.close()


def test_serve_help_and_bad_folder(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--max-batch-size", "--concurrency", "--max-queue", "--max-queued-audio-min",
                   "--max-duration-min", "--max-upload-mb", "--kept-downloads", "/classify", "The server is busy"):
        assert option in out
    with pytest.raises(ValueError, match="does not exist"):
        cli_main(["serve", "--model", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="--concurrency 0 must be at least 1"):
        cli_main(["serve", "--model", str(tmp_path), "--concurrency", "0"])
    with pytest.raises(ValueError, match="--max-queue -1 must be at least 0"):
        cli_main(["serve", "--model", str(tmp_path), "--max-queue", "-1"])
    with pytest.raises(ValueError, match="--max-queued-audio-min 0.0 must be positive"):
        cli_main(["serve", "--model", str(tmp_path), "--max-queued-audio-min", "0"])
