"""Long-audio inference: sliding windows over one log-mel pass, and the `audio-vit predict` command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.cli import main as cli_main
from audio_vit.inference import classify_long_audio, window_starts
from tests.conftest import tiny_config_kwargs


def test_window_starts_cover_the_recording():
    assert window_starts(10, 32, 16) == [0]
    assert window_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert window_starts(64, 32, 32) == [0, 32]
    with pytest.raises(ValueError, match="hop=0"):
        window_starts(100, 32, 0)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).save_pretrained(out)
    AudioViTFeatureExtractor(num_mel_bins=16, max_length=32).save_pretrained(out)
    return out


def test_long_recording_is_classified_window_by_window(tiny_model_dir, fsdd_clips):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    clips = [sf.read(path, dtype="float32")[0] for path in fsdd_clips]
    recording = np.concatenate(clips * 4)  # ~14 s at 8 kHz, far longer than the 0.32 s training window
    result = classify_long_audio(model, extractor, recording, 8000, hop_s=0.16, top_k=None)

    frames = extractor.frames_for(len(recording) * 2)  # resampled to 16 kHz
    assert len(result.windows) == len(window_starts(frames, 32, 16))
    assert result.windows[0].start_s == 0.0 and result.windows[0].end_s == pytest.approx(0.32)
    assert result.windows[-1].end_s == pytest.approx(frames * 0.01, abs=0.011)
    assert abs(sum(s["score"] for s in result.scores) - 1.0) < 1e-4  # mean of softmaxes is a distribution
    assert result.label == result.scores[0]["label"]

    # The mean over windows equals averaging the model's own window predictions.
    full = extractor(recording, sampling_rate=8000, resample=True, padding="longest", truncation=False,
                     return_tensors="pt")["input_values"][0]
    starts = window_starts(full.shape[-1], 32, 16)
    with torch.no_grad():
        probs = model(torch.stack([full[:, s:s + 32] for s in starts])).logits.softmax(-1).mean(0)
    best = int(probs.argmax())
    assert result.scores[0]["label"] == model.config.id2label[best]
    assert result.scores[0]["score"] == pytest.approx(float(probs[best]), abs=1e-5)


def test_short_recording_gets_one_padded_window(tiny_model_dir, fsdd_clips):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    waveform = sf.read(fsdd_clips[0], dtype="float32")[0][:400]  # 50 ms
    result = classify_long_audio(model, extractor, waveform, 8000, aggregate="max")
    assert len(result.windows) == 1 and len(result.scores) == 3


def test_predict_command(tiny_model_dir, fsdd_clips, tmp_path, capsys):
    long_file = tmp_path / "long.wav"
    sf.write(long_file, np.concatenate([sf.read(p, dtype="float32")[0] for p in fsdd_clips]), 8000)
    assert cli_main(["predict", "--model", str(tiny_model_dir), "--json", "--segments", "--top-k", "2",
                     str(long_file), str(fsdd_clips[1])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(long_file), str(fsdd_clips[1])]
    assert len(lines[0]["scores"]) == 2 and len(lines[0]["windows"]) > 1
    with pytest.raises(SystemExit):
        cli_main(["predict", "--model", str(tiny_model_dir), "--aggregate", "median", str(long_file)])
