"""Long-audio inference: sliding windows, chunked decoding and features equal to one pass, `audio-vit predict`."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.data.audio_decoding import AudioDecodeError, iter_audio_blocks, iter_waveform_blocks, load_audio
from audio_vit.models.audio_vit.audio_utils import resample
from audio_vit.cli import main as cli_main
from audio_vit.inference.long_audio import classify_audio_file, classify_long_audio, iter_windows, window_starts
from audio_vit.inference.chunked_features import iter_db_chunks, iter_feature_chunks
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


# ---------------------------------------------------------------------------------------------- bounded memory
def _recording(fsdd_clips, repeats=3):
    return np.concatenate([sf.read(path, dtype="float32")[0] for path in fsdd_clips] * repeats)  # 8 kHz


def test_audio_blocks_equal_the_whole_file_resampled(fsdd_clips, tmp_path):
    stereo = np.stack([_recording(fsdd_clips, 1), 0.5 * _recording(fsdd_clips, 1)], axis=1)  # (samples, 2)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 8000)
    waveform, rate = load_audio(path)
    blocks = list(iter_audio_blocks(path, 16000, block_samples=3001))
    assert len(blocks) > 5 and all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), resample(waveform, rate, 16000))  # bit for bit
    np.testing.assert_array_equal(np.concatenate(list(iter_audio_blocks(path, 8000, block_samples=999))), waveform)
    in_memory = np.concatenate(list(iter_waveform_blocks(waveform, 8000, 16000, block_samples=5000)))
    np.testing.assert_array_equal(in_memory, resample(waveform, rate, 16000))


def test_audio_blocks_refuse_bad_files_by_name(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("not audio")
    sf.write(tmp_path / "long.wav", np.zeros(8000 * 3, dtype=np.float32), 8000)
    for name, reason in [("empty.wav", "empty file"), ("notes.wav", "unreadable"), ("missing.wav", "not found")]:
        with pytest.raises(AudioDecodeError, match=reason) as info:
            list(iter_audio_blocks(tmp_path / name, 16000))
        assert name in str(info.value)
    with pytest.raises(AudioDecodeError, match="longer than the limit of 2 s"):
        list(iter_audio_blocks(tmp_path / "long.wav", 16000, block_samples=4000, max_seconds=2))
    assert sum(len(b) for b in iter_audio_blocks(tmp_path / "long.wav", 8000, max_seconds=3)) == 24000


@pytest.mark.parametrize("frontend", ["librosa", "kaldi"])
def test_feature_chunks_equal_one_pass_over_the_whole_recording(fsdd_clips, frontend):
    kwargs = dict(n_fft=512, win_length=400) if frontend == "kaldi" else {}
    extractor = AudioViTFeatureExtractor(num_mel_bins=16, max_length=32, mean=-40.0, std=15.0, frontend=frontend, **kwargs)
    recording = _recording(fsdd_clips, 1)
    whole = extractor(recording, sampling_rate=8000, resample=True, padding="longest", truncation=False,
                      return_tensors="pt")["input_values"][0]
    assert frontend == "kaldi" or (whole == whole.min()).float().mean() > 0.05  # top_db clipping is exercised
    for chunk_frames in (7, 100, 10_000):  # many chunks (two passes), a few, and one (the whole-recording call)
        chunks = list(iter_feature_chunks(
            extractor, lambda: iter_waveform_blocks(recording, 8000, 16000, block_samples=1234), chunk_frames))
        assert len(chunks) == -(-whole.shape[1] // chunk_frames)
        torch.testing.assert_close(torch.cat(chunks, dim=1), whole, atol=1e-5, rtol=0)


def test_feature_chunks_copy_each_sample_about_once_however_small_the_blocks(monkeypatch):
    """Blocks are joined once per chunk: the samples copied stay linear in the recording (joining the held buffer
    with every new block copied it once per block: quadratic in the blocks of a chunk)."""
    extractor = AudioViTFeatureExtractor(num_mel_bins=16, max_length=32, top_db=None)
    recording = (0.1 * np.random.default_rng(0).standard_normal(16000 * 20)).astype(np.float32)  # 20 s at 16 kHz
    concatenate, copied = np.concatenate, []

    def counted_concatenate(arrays, *args, **kwargs):
        joined = concatenate(arrays, *args, **kwargs)
        if sys._getframe(1).f_code.co_filename.endswith("chunked_features.py"):
            copied.append(joined.size)
        return joined

    monkeypatch.setattr(np, "concatenate", counted_concatenate)
    blocks = (recording[i : i + 100] for i in range(0, len(recording), 100))  # 100-sample blocks, ~400 a chunk
    chunks = list(iter_db_chunks(extractor, blocks, chunk_frames=256))
    assert len(chunks) == 8 and sum(copied) <= 1.5 * len(recording), sum(copied)
    whole = extractor(recording, sampling_rate=16000, padding="longest", truncation=False, do_normalize=False,
                      return_tensors="pt")["input_values"][0]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole, atol=1e-4, rtol=0)


def test_windows_are_cut_across_chunks_as_from_the_whole_recording():
    features = torch.arange(100.0).repeat(2, 1)  # (2, 100): frame t holds t
    for chunk in (3, 10, 64, 100):
        got = list(iter_windows(features.split(chunk, dim=1), window=32, hop=16, pad_short=None))
        assert [start for start, _, _ in got] == window_starts(100, 32, 16)
        assert all(frames[0, 0] == start and frames.shape == (2, 32) for start, frames, _ in got)
    short = list(iter_windows([features[:, :5]], window=32, hop=16, pad_short=lambda: torch.zeros(2, 32)))
    assert [(start, frames.shape, valid) for start, frames, valid in short] == [(0, (2, 32), 5)]


def test_chunked_classification_equals_the_whole_recording_path(tiny_model_dir, fsdd_clips, tmp_path):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    recording = _recording(fsdd_clips)  # ~10 s: one chunk by default, i.e. the whole-recording path
    whole = classify_long_audio(model, extractor, recording, 8000, top_k=None)
    chunked = classify_long_audio(model, extractor, recording, 8000, top_k=None, chunk_frames=40, batch_size=7)
    path = tmp_path / "recording.flac"
    sf.write(path, recording, 8000)
    from_file = classify_audio_file(model, extractor, path, top_k=None, chunk_frames=50)
    assert len(whole.windows) > 50 and whole.duration_s == pytest.approx(len(recording) / 8000, abs=1e-3)
    for other in (chunked, from_file):
        assert [w.label for w in other.windows] == [w.label for w in whole.windows]
        assert [w.start_s for w in other.windows] == [w.start_s for w in whole.windows]
        assert [w.score for w in other.windows] == pytest.approx([w.score for w in whole.windows], abs=1e-5)
        assert [s["label"] for s in other.scores] == [s["label"] for s in whole.scores]
        assert [s["score"] for s in other.scores] == pytest.approx([s["score"] for s in whole.scores], abs=1e-5)


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_chunked_file_classification_equals_the_model_on_every_window_of_the_whole_recording(
        tiny_model_dir, fsdd_clips, tmp_path, aggregate):
    """Reference without the streaming code: one extractor pass over the whole file, the model on every window."""
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    recording = _recording(fsdd_clips)
    path = tmp_path / "recording.flac"
    sf.write(path, recording, 8000)
    waveform, rate = load_audio(path)
    full = extractor(waveform, sampling_rate=rate, resample=True, padding="longest", truncation=False,
                     return_tensors="pt")["input_values"][0]
    starts = window_starts(full.shape[-1], 32, 16)
    with torch.no_grad():
        probs = model(torch.stack([full[:, s : s + 32] for s in starts])).logits.softmax(-1)  # (windows, labels)
    pooled = probs.mean(0) if aggregate == "mean" else probs.amax(0)

    # 40-frame chunks: many chunks, the two-pass top_db floor, windows cut across chunk edges; odd batches
    result = classify_audio_file(model, extractor, path, aggregate=aggregate, top_k=None, chunk_frames=40, batch_size=5)
    assert [round(w.start_s / 0.01) for w in result.windows] == starts
    assert [w.label for w in result.windows] == [model.config.id2label[int(i)] for i in probs.argmax(-1)]
    assert [w.score for w in result.windows] == pytest.approx(probs.amax(-1).tolist(), abs=1e-5)
    order = pooled.argsort(descending=True)
    assert [s["label"] for s in result.scores] == [model.config.id2label[int(i)] for i in order]
    assert [s["score"] for s in result.scores] == pytest.approx(pooled[order].tolist(), abs=1e-5)


def test_feature_observer_sees_every_frame_once(tiny_model_dir, fsdd_clips):
    model = AudioViTForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(tiny_model_dir)
    recording = _recording(fsdd_clips, 1)
    seen = []
    classify_long_audio(model, extractor, recording, 8000, chunk_frames=33, feature_observer=seen.append)
    whole = extractor(recording, sampling_rate=8000, resample=True, padding="longest", truncation=False,
                      return_tensors="pt")["input_values"][0]
    torch.testing.assert_close(torch.cat(seen, dim=1), whole, atol=1e-5, rtol=0)
