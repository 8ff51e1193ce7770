"""The web demo's logic without a browser: classification, spectrogram image, card summary, errors, `serve --help`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.app import AudioClassifierDemo, build_demo, model_summary, spectrogram_image
from audio_vit.audio_io import load_audio
from audio_vit.cli import main as cli_main
from audio_vit.inference import classify_long_audio
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
    assert list(result.scores.values()) == pytest.approx([s["score"] for s in expected.scores], abs=1e-6)
    assert [row[2] for row in result.timeline] == [w.label for w in expected.windows] and len(result.timeline) > 1
    frames = extractor.frames_for(len(waveform) * 2)  # 8 kHz resampled to 16 kHz
    assert result.spectrogram.shape == (256, frames * max(1, -(-256 // frames)), 3)
    assert "long.wav" in result.message and expected.label in result.message


def test_unreadable_file_is_a_clear_error(tiny_model_dir, tmp_path):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir)
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav"):
        AudioClassifierDemo(model, extractor).classify(str(bad))
    with pytest.raises(ValueError, match="no audio"):
        AudioClassifierDemo(model, extractor).classify(None)


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


def test_serve_help_and_bad_folder(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["serve", "--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out
    with pytest.raises(ValueError, match="does not exist"):
        cli_main(["serve", "--model", str(tmp_path / "missing")])
