"""AudioViTFeatureExtractor: librosa parity on real FSDD clips, padding/truncation/cropping, inputs, errors.

Parity tolerance: the extractor runs its FFT in float32 while librosa's runs in float64 (then stores
complex64). FFT round-off is relative to a frame's energy, so the dB error grows about 10x for every 20 dB
below the clip's max. Measured over 300 FSDD clips (64 and 128 mels): <= 1e-5 dB near the peak, <= 3.5e-5 dB
within 40 dB of the max, <= 1.5e-3 dB at the top_db=80 floor. The tests allow 2e-4 dB within 40 dB of the
max and 3e-3 dB everywhere (about 2-6x the worst measured).
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as hf_logging

from audio_vit.models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

NEAR_PEAK_DB, NEAR_PEAK_TOL, ALL_TOL = 40.0, 2e-4, 3e-3
FSDD_RATE = 8000
# A small 8 kHz configuration: FSDD's own rate, so parity needs no resampling.
SMALL = dict(sampling_rate=FSDD_RATE, n_fft=256, hop_length=80, num_mel_bins=32, max_length=80)


def librosa_log_mel(y, fe, top_db="same"):
    mel = librosa.feature.melspectrogram(
        y=y, sr=fe.sampling_rate, n_fft=fe.n_fft, hop_length=fe.hop_length, win_length=fe.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=fe.num_mel_bins, fmin=fe.f_min,
        fmax=fe.f_max, htk=fe.mel_scale == "htk", norm=fe.mel_norm,
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=fe.top_db if top_db == "same" else top_db)


def assert_parity(ours, ref):
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    near_peak = ref >= ref.max() - NEAR_PEAK_DB
    assert diff[near_peak].max() <= NEAR_PEAK_TOL, diff[near_peak].max()
    assert diff.max() <= ALL_TOL, diff.max()


@pytest.fixture(scope="module")
def clips(fsdd_clips):
    """The eight real 8 kHz clips as float32 arrays (0.2-0.8 s each, all different lengths)."""
    return [sf.read(path, dtype="float32")[0] for path in fsdd_clips]


@pytest.fixture(scope="module")
def long_clip(clips):
    """About 4 s of real speech: all eight clips end to end."""
    return np.concatenate(clips)


@pytest.mark.parametrize(
    "params",
    [
        dict(SMALL),
        dict(SMALL, n_fft=200, win_length=160, num_mel_bins=40, mel_scale="htk", mel_norm=None, f_min=50.0, f_max=3800.0),
        dict(SMALL, n_fft=255, hop_length=64, top_db=None),  # odd n_fft, no clipping
    ],
)
def test_matches_librosa_on_real_clips(clips, params):
    fe = AudioViTFeatureExtractor(**params)
    out = fe(clips, sampling_rate=FSDD_RATE, padding="do_not_pad", truncation=False, do_normalize=False)
    for clip, ours in zip(clips, out["input_values"]):
        assert_parity(ours, librosa_log_mel(clip, fe))


def test_matches_librosa_at_default_16k_settings(clips):
    fe = AudioViTFeatureExtractor(num_mel_bins=128, max_length=None)  # AST-like: n_fft 400, hop 160, 128 mels
    clips_16k = [soxr.resample(clip, FSDD_RATE, 16000, quality="HQ") for clip in clips[:3]]
    out = fe(clips_16k, sampling_rate=16000, padding="do_not_pad", do_normalize=False)
    for clip, ours in zip(clips_16k, out["input_values"]):
        assert_parity(ours, librosa_log_mel(clip, fe))


def test_shapes_for_clips_of_different_lengths(clips):
    fe = AudioViTFeatureExtractor(**SMALL)
    frames = [fe.frames_for(len(c)) for c in clips]
    assert len(set(frames)) > 1 and max(frames) < 80
    out = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")
    assert out["input_values"].shape == (8, 32, 80)  # (batch, num_mel_bins, max_length)
    out = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np", padding="longest")
    assert out["input_values"].shape == (8, 32, max(frames))
    out = fe(clips, sampling_rate=FSDD_RATE, padding="do_not_pad")
    assert [x.shape for x in out["input_values"]] == [(32, f) for f in frames]
    out = fe(clips[0], sampling_rate=FSDD_RATE, return_tensors="pt")  # a single 1-D clip is a batch of one
    assert tuple(out["input_values"].shape) == (1, 32, 80)
    out = fe(list(clips[0].astype(float)), sampling_rate=FSDD_RATE, return_tensors="np")  # list of floats
    assert out["input_values"].shape == (1, 32, 80)
    with pytest.raises(ValueError, match="different lengths"):
        fe(clips, sampling_rate=FSDD_RATE, padding="do_not_pad", return_tensors="np")


def test_padding_equals_librosa_on_zero_padded_clip(clips):
    fe = AudioViTFeatureExtractor(**SMALL)
    out = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np", do_normalize=False)
    target_samples = fe.samples_for(fe.max_length)
    for clip, ours in zip(clips, out["input_values"]):
        padded = np.pad(clip, (0, target_samples - len(clip)))
        ref = librosa_log_mel(padded, fe)[:, : fe.max_length]
        assert_parity(ours, ref)
        floor = max(ref.max() - fe.top_db, -100.0)  # silent padding: the top_db floor, or amin's -100 dB
        assert np.allclose(ours[:, -1], floor)


def test_truncation_is_exact(long_clip):
    fe = AudioViTFeatureExtractor(**dict(SMALL, top_db=None))
    full = librosa_log_mel(long_clip, fe)
    assert full.shape[1] > 3 * fe.max_length
    out = fe(torch.from_numpy(long_clip), sampling_rate=FSDD_RATE, return_tensors="pt", do_normalize=False)
    assert tuple(out["input_values"].shape) == (1, 32, 80)
    assert_parity(out["input_values"][0].numpy(), full[:, : fe.max_length])
    # With top_db, the floor follows the kept frames' own max (the model never sees the rest).
    fe80 = AudioViTFeatureExtractor(**SMALL)
    clipped = fe80(long_clip, sampling_rate=FSDD_RATE, return_tensors="np", do_normalize=False)["input_values"][0]
    kept = full[:, : fe.max_length]
    assert_parity(clipped, np.maximum(kept, kept.max() - 80.0))
    # Overriding max_length per call, and truncation=False keeping everything.
    assert fe(long_clip, sampling_rate=FSDD_RATE, max_length=10, return_tensors="np")["input_values"].shape == (1, 32, 10)
    untruncated = fe(long_clip, sampling_rate=FSDD_RATE, truncation=False, return_tensors="np", do_normalize=False)
    assert_parity(untruncated["input_values"][0], full)


def test_attention_mask_marks_real_audio(clips, long_clip):
    fe = AudioViTFeatureExtractor(**dict(SMALL, return_attention_mask=True))
    out = fe(clips + [long_clip], sampling_rate=FSDD_RATE, return_tensors="pt")
    mask = out["attention_mask"]
    assert tuple(mask.shape) == (9, 80) and mask.dtype == torch.int32
    expected = [fe.frames_for(len(c)) for c in clips] + [80]
    assert mask.sum(dim=1).tolist() == expected
    for row, n in zip(mask, expected):
        assert row[:n].eq(1).all() and row[n:].eq(0).all()
    assert "attention_mask" not in fe(clips, sampling_rate=FSDD_RATE, return_attention_mask=False)


def test_random_crop_is_reproducible_and_on_the_frame_grid(long_clip, clips):
    from audio_vit.data.augmentation import random_waveform_crop

    fe = AudioViTFeatureExtractor(**dict(SMALL, top_db=None, do_normalize=False))
    full = librosa_log_mel(long_clip, fe)
    max_step = (len(long_clip) - fe.samples_for(fe.max_length)) // fe.hop_length

    def crop(seed):
        return fe(random_waveform_crop(long_clip, fe, generator=seed), sampling_rate=FSDD_RATE,
                  return_tensors="np")["input_values"][0]

    first = crop(0)
    assert np.array_equal(first, crop(0))
    assert np.array_equal(first, crop(np.random.default_rng(0)))
    crops = [crop(seed) for seed in range(6)]
    assert len({c.tobytes() for c in crops}) > 1  # different seeds, different crops
    # Frames after the first few (which see the crop's own zero padding) equal the full clip's frames k, k+1, ...
    edge = -(-(fe.n_fft // 2) // fe.hop_length)
    for c in crops:
        matches = [k for k in range(max_step + 1) if np.abs(c[:, edge:] - full[:, k + edge : k + fe.max_length]).max() < ALL_TOL]
        assert len(matches) == 1 and 0 <= matches[0] <= max_step
    # Short clips are not cropped; a torch.Generator works too.
    assert random_waveform_crop(clips[0], fe, generator=torch.Generator().manual_seed(1)) is clips[0]
    assert len(random_waveform_crop(long_clip, fe, generator=torch.Generator().manual_seed(1))) == fe.samples_for(fe.max_length)
    with pytest.raises(TypeError, match="generator"):
        random_waveform_crop(long_clip, fe, generator="seed")
    with pytest.raises(TypeError, match="random_crop"):  # the extractor itself has no randomness any more
        fe(long_clip, sampling_rate=FSDD_RATE, random_crop=True)


def test_stereo_is_downmixed_and_int_pcm_is_scaled(clips):
    fe = AudioViTFeatureExtractor(**SMALL)
    left, right = clips[0], clips[0][::-1].copy() * 0.5
    stereo = fe(np.stack([left, right]), sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    mono = fe((left + right) / 2, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    np.testing.assert_allclose(stereo, mono, atol=1e-5)
    logger = hf_logging.get_logger("audio_vit.models.audio_vit.raw_audio_input")
    logger.warning_once.cache_clear()  # warning_once remembers messages other tests may have triggered
    with CaptureLogger(logger) as captured:  # a 2-D "batch" is one multichannel clip: say so
        assert fe(np.zeros((10, 900), dtype=np.float32), sampling_rate=FSDD_RATE, return_tensors="np")["input_values"].shape[0] == 1
    assert "(10, 900)" in captured.out and "list" in captured.out
    with pytest.raises(ValueError, match=r"\(2000, 2\)"):  # soundfile's (samples, channels) layout
        fe(np.zeros((2000, 2), dtype=np.float32), sampling_rate=FSDD_RATE)

    pcm16 = np.round(clips[1] * 20000).astype(np.int16)
    as_float = fe(pcm16.astype(np.float32) / 32768, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    for pcm in (pcm16, torch.from_numpy(pcm16), pcm16.astype(np.int32) << 16):
        np.testing.assert_allclose(fe(pcm, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"], as_float, atol=1e-4)
    pcm8 = (np.round(clips[1] * 100) + 128).astype(np.uint8)
    np.testing.assert_allclose(
        fe(pcm8, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"],
        fe((pcm8.astype(np.float32) - 128) / 128, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"],
        atol=1e-4,
    )


def test_normalize_and_do_normalize(clips):
    fe = AudioViTFeatureExtractor(**dict(SMALL, mean=-40.0, std=20.0))
    raw = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np", do_normalize=False)["input_values"]
    normed = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    np.testing.assert_allclose(normed, (raw + 40.0) / 20.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fe.normalize(raw), normed, rtol=1e-6, atol=1e-6)
    as_torch = fe.normalize(torch.from_numpy(raw))
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), normed, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="std=0"):
        AudioViTFeatureExtractor(std=0)


def test_return_tensors(clips):
    fe = AudioViTFeatureExtractor(**dict(SMALL, return_attention_mask=True))
    pt = fe(clips[:2], sampling_rate=FSDD_RATE, return_tensors="pt")
    assert isinstance(pt["input_values"], torch.Tensor) and pt["input_values"].dtype == torch.float32
    np_out = fe(clips[:2], sampling_rate=FSDD_RATE, return_tensors="np")
    assert isinstance(np_out["input_values"], np.ndarray) and np_out["input_values"].dtype == np.float32
    listed = fe(clips[:2], sampling_rate=FSDD_RATE)
    assert isinstance(listed["input_values"], list) and all(isinstance(x, np.ndarray) for x in listed["input_values"])
    assert isinstance(listed["attention_mask"], list)
    np.testing.assert_array_equal(np.stack(listed["input_values"]), np_out["input_values"])
    np.testing.assert_array_equal(pt["input_values"].numpy(), np_out["input_values"])
    with pytest.raises(ValueError, match="'tf'"):
        fe(clips[0], sampling_rate=FSDD_RATE, return_tensors="tf")


def test_save_and_load_round_trip(tmp_path, clips):
    fe = AudioViTFeatureExtractor(**dict(SMALL, mean=-30.5, std=12.25, mel_scale="htk", f_max=3500.0))
    before = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]  # builds the cached filterbank
    fe.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["feature_extractor_type"] == "AudioViTFeatureExtractor"
    assert saved["mean"] == -30.5 and saved["std"] == 12.25 and saved["feature_size"] == 32
    assert not any(key.startswith("_") for key in saved)  # no cached tensors
    loaded = AudioViTFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == fe.to_dict()
    np.testing.assert_array_equal(loaded(clips, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"], before)
    assert AudioViTFeatureExtractor.from_dict(fe.to_dict()).to_dict() == fe.to_dict()
    # Pickling (datasets.map fingerprints) does not depend on whether the filterbank was built.
    assert pickle.loads(pickle.dumps(fe))._tensor_cache == {}
    fresh = AudioViTFeatureExtractor(**SMALL)
    pickled = pickle.dumps(fresh)
    fresh(clips, sampling_rate=FSDD_RATE)
    assert fresh._tensor_cache and pickle.dumps(fresh) == pickled


def test_resample_matches_soxr(clips):
    fe = AudioViTFeatureExtractor(num_mel_bins=32, max_length=None)
    ours = fe(clips[:2], sampling_rate=FSDD_RATE, resample=True, return_tensors="np", padding="longest")["input_values"]
    resampled = [soxr.resample(c, FSDD_RATE, 16000, quality="HQ") for c in clips[:2]]
    ref = fe(resampled, sampling_rate=16000, return_tensors="np", padding="longest")["input_values"]
    np.testing.assert_array_equal(ours, ref)
    with pytest.raises(ValueError, match="sampling_rate=8000 .* 16000"):
        fe(clips[0], sampling_rate=FSDD_RATE)


def test_missing_sampling_rate_warns_and_assumes_the_extractors(clips):
    fe = AudioViTFeatureExtractor(**SMALL)
    logger = hf_logging.get_logger("audio_vit.models.audio_vit.feature_extraction_audio_vit")
    logger.warning_once.cache_clear()  # warning_once remembers messages other tests may have triggered
    with CaptureLogger(logger) as captured:
        out = fe(clips[0], return_tensors="np")["input_values"]
    assert "sampling_rate" in captured.out and "8000" in captured.out
    np.testing.assert_array_equal(out, fe(clips[0], sampling_rate=FSDD_RATE, return_tensors="np")["input_values"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda c: [c, np.where(np.arange(len(c)) == 5, np.nan, c)], r"item 1 .*NaN"),
        (lambda c: [c, c, np.full(100, np.inf, dtype=np.float32)], r"item 2 .*Inf"),
        (lambda c: [c, np.zeros(0, dtype=np.float32)], r"item 1 .*empty"),
        (lambda c: [np.zeros((1, 2, 300), dtype=np.float32)], r"item 0 .*3 dimensions .*\(1, 2, 300\)"),
        (lambda c: [c.astype(np.complex64)], r"item 0 .*complex64"),
        (lambda c: [], r"empty list"),
    ],
)
def test_bad_input_names_the_problem_and_the_item(clips, bad, message):
    fe = AudioViTFeatureExtractor(**SMALL)
    with pytest.raises(ValueError, match=message):
        fe(bad(clips[0]), sampling_rate=FSDD_RATE)


def test_non_finite_samples_are_refused_even_where_truncation_would_drop_them(long_clip):
    fe = AudioViTFeatureExtractor(**SMALL)
    bad = long_clip.copy()
    bad[-1] = np.inf  # far beyond the kept max_length frames
    with pytest.raises(ValueError, match=r"item 0 .*Inf \(1 non-finite"):
        fe(bad, sampling_rate=FSDD_RATE)


def test_bad_input_before_resampling_is_caught(clips):
    fe = AudioViTFeatureExtractor(**dict(SMALL, sampling_rate=16000))
    with pytest.raises(ValueError, match=r"item 1 .*NaN"):
        fe([clips[0], np.full(50, np.nan)], sampling_rate=FSDD_RATE, resample=True)


def test_bad_parameters_are_refused():
    for kwargs, message in [
        (dict(mel_scale="bark"), "mel_scale='bark'"),
        (dict(win_length=512), "win_length=512"),
        (dict(f_max=9000.0), "f_max=9000.0"),
        (dict(hop_length=0), "hop_length=0"),
        (dict(top_db=-1), "top_db=-1"),
    ]:
        with pytest.raises(ValueError, match=message):
            AudioViTFeatureExtractor(**kwargs)
    fe = AudioViTFeatureExtractor()
    with pytest.raises(ValueError, match="padding='sideways'"):
        fe(np.zeros(1600, dtype=np.float32), sampling_rate=16000, padding="sideways")


def test_frames_for_and_samples_for():
    fe = AudioViTFeatureExtractor()  # n_fft 400, hop 160
    assert fe.frames_for(16000) == 101 == librosa.feature.melspectrogram(y=np.ones(16000), sr=16000, n_fft=400, hop_length=160).shape[1]
    assert fe.frames_for(1) == 1
    np.testing.assert_array_equal(fe.frames_for(np.array([160, 319, 320])), [2, 2, 3])
    assert fe.samples_for(128) == 127 * 160 + 200
    assert fe.frames_for(fe.samples_for(128)) >= 128


def test_device(clips):
    fe = AudioViTFeatureExtractor(**SMALL)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fe(clips, sampling_rate=FSDD_RATE, device="cuda")
        return
    on_gpu = fe(clips, sampling_rate=FSDD_RATE, device="cuda", return_tensors="pt", return_attention_mask=True)
    assert on_gpu["input_values"].device.type == "cuda" and on_gpu["attention_mask"].device.type == "cuda"
    as_numpy = fe(clips, sampling_rate=FSDD_RATE, device="cuda", return_tensors="np")["input_values"]
    on_cpu = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    np.testing.assert_allclose(on_gpu["input_values"].cpu().numpy(), on_cpu, atol=ALL_TOL)
    np.testing.assert_allclose(as_numpy, on_cpu, atol=ALL_TOL)


def test_module_loads_standalone_with_trust_remote_code(tmp_path, clips):
    """The file is copied into checkpoints, so it must work without audio_vit importable."""
    fe = AudioViTFeatureExtractor(**SMALL)
    AudioViTFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    fe.save_pretrained(tmp_path / "checkpoint")
    for name in ("feature_extraction_audio_vit.py", "raw_audio_input.py", "log_mel_frontends.py", "audio_utils.py"):
        assert (tmp_path / "checkpoint" / name).is_file(), name
    np.save(tmp_path / "clip.npy", clips[0])
    expected = fe(clips[0], sampling_rate=FSDD_RATE, return_tensors="np")["input_values"]
    script = (
        "import sys, numpy as np\n"
        "from transformers import AutoFeatureExtractor\n"
        f"fe = AutoFeatureExtractor.from_pretrained({str(tmp_path / 'checkpoint')!r}, trust_remote_code=True)\n"
        "assert 'audio_vit' not in sys.modules, 'audio_vit was imported'\n"
        f"out = fe(np.load({str(tmp_path / 'clip.npy')!r}), sampling_rate={FSDD_RATE}, return_tensors='np')\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, out['input_values'])\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_large_batches_are_computed_in_chunks_with_the_same_result(clips, monkeypatch):
    fe = AudioViTFeatureExtractor(**dict(SMALL, return_attention_mask=True))
    whole = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")
    monkeypatch.setattr(AudioViTFeatureExtractor, "max_frames_per_chunk", 3 * fe.max_length)  # chunks of 3 clips
    chunked = fe(clips, sampling_rate=FSDD_RATE, return_tensors="np")
    np.testing.assert_array_equal(chunked["input_values"], whole["input_values"])
    np.testing.assert_array_equal(chunked["attention_mask"], whole["attention_mask"])


# ----------------------------------------------------------------------------------------------
# pad(): what transformers' DataCollatorWithPadding (the Trainer's default collator) calls
# ----------------------------------------------------------------------------------------------


def tail_frames(fe) -> int:
    """Frames after a clip's last valid frame whose librosa window still reaches the clip (see `pad`)."""
    return fe.n_fft // 2 // fe.hop_length + 1


def test_pad_of_features_at_max_length_equals_the_extractor_on_the_batch(clips):
    """The official audio-classification example: each example computed alone with the extractor's defaults
    (padding to max_length), then collated by DataCollatorWithPadding."""
    from transformers import DataCollatorWithPadding

    fe = AudioViTFeatureExtractor(**dict(SMALL, mean=-40.0, std=15.0, return_attention_mask=True))
    examples = [{"input_values": fe(clip, sampling_rate=FSDD_RATE)["input_values"][0], "labels": i % 3}
                for i, clip in enumerate(clips)]
    batch = DataCollatorWithPadding(fe)(examples)
    expected = fe(clips, sampling_rate=FSDD_RATE, return_tensors="pt")
    assert torch.equal(batch["input_values"], expected["input_values"])
    assert batch["labels"].tolist() == [i % 3 for i in range(len(clips))]
    # the example drops the mask: pad finds it again from the trailing frames of pure padding, to within a frame
    valid, inferred = expected["attention_mask"].sum(1), batch["attention_mask"].sum(1)
    assert (valid < fe.max_length).all() and (inferred - valid).abs().max() <= 1, (valid, inferred)
    assert torch.equal(batch["attention_mask"], (torch.arange(fe.max_length) < inferred[:, None]).to(torch.int32))
    # with each example's own mask kept, the batch mask is the extractor's
    examples = [dict(fe(clip, sampling_rate=FSDD_RATE, return_attention_mask=True)) for clip in clips]
    examples = [{key: value[0] for key, value in example.items()} for example in examples]
    batch = fe.pad(examples, return_tensors="pt")
    assert torch.equal(batch["input_values"], expected["input_values"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    # kaldi's padded frames are exact zeros: the mask found again is the extractor's
    kaldi = AudioViTFeatureExtractor(**dict(SMALL, win_length=200, frontend="kaldi", mean=4.0, std=3.0))
    expected = kaldi(clips, sampling_rate=FSDD_RATE, return_attention_mask=True, return_tensors="pt")
    found = kaldi.pad([{"input_values": kaldi(clip, sampling_rate=FSDD_RATE)["input_values"][0]} for clip in clips],
                      return_attention_mask=True, return_tensors="pt")
    assert torch.equal(found["attention_mask"], expected["attention_mask"])


@pytest.mark.parametrize("frontend", ["librosa", "kaldi"])
@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_pad_of_unpadded_features_equals_the_extractor_on_the_batch(clips, frontend, padding):
    """Features of each clip alone (its own frames only) padded together: equal to the extractor on the batch's
    waveforms on every real frame and every frame of pure padding (the librosa frames whose window still reaches
    a clip's end are the only exception; kaldi has none), with the same attention mask."""
    fe = AudioViTFeatureExtractor(**dict(SMALL, mean=-40.0, std=15.0, frontend=frontend, max_length=70))
    clips = [clip * 4.0 for clip in clips]  # loud enough (about -10 dB) that the librosa floor is max - top_db, not -100 dB
    examples = []
    for clip in clips:
        features = fe(clip, sampling_rate=FSDD_RATE, padding="do_not_pad", return_attention_mask=True)
        examples.append({"input_values": features["input_values"][0], "attention_mask": features["attention_mask"][0]})
    assert len({example["input_values"].shape[1] for example in examples}) > 1  # really of different lengths
    batch = fe.pad(examples, padding=padding, truncation=True, return_tensors="np")
    expected = fe(clips, sampling_rate=FSDD_RATE, padding=padding, return_attention_mask=True, return_tensors="np")
    assert batch["input_values"].shape == expected["input_values"].shape
    np.testing.assert_array_equal(batch["attention_mask"], expected["attention_mask"])
    skip = tail_frames(fe) if frontend == "librosa" else 0
    for values, reference, mask in zip(batch["input_values"], expected["input_values"], expected["attention_mask"]):
        valid = int(mask.sum())
        compared = np.r_[0:valid, min(valid + skip, len(mask)):len(mask)]
        np.testing.assert_allclose(values[:, compared], reference[:, compared], atol=1e-4)
        if frontend == "librosa" and valid + skip < len(mask):
            # the padding frames are the clip's own floor (its loudest frame - top_db), not a constant
            floor_db = reference.max() * fe.std + fe.mean - fe.top_db
            assert floor_db > -100.0
            np.testing.assert_allclose(values[:, valid + skip:], fe.normalize(floor_db), atol=1e-4)


def test_pad_inputs_strategies_and_outputs(clips):
    fe = AudioViTFeatureExtractor(**dict(SMALL, max_length=40))
    per_clip = [fe(clip, sampling_rate=FSDD_RATE, padding="do_not_pad")["input_values"][0] for clip in clips[:3]]
    lengths = [v.shape[1] for v in per_clip]
    longest = max(lengths)
    # a BatchFeature (or dict) of per-example lists, torch or numpy, without an attention mask
    as_lists = fe.pad(BatchFeature({"input_values": [torch.from_numpy(v) for v in per_clip], "labels": [0, 1, 2]}),
                      return_tensors="pt")
    assert as_lists["input_values"].shape == (3, 32, longest) and "attention_mask" not in as_lists
    assert as_lists["labels"].dtype == torch.int64
    masked = fe.pad([{"input_values": v} for v in per_clip], return_attention_mask=True, return_tensors="np")
    np.testing.assert_array_equal(masked["attention_mask"].sum(1), lengths)  # every given frame is real
    np.testing.assert_array_equal(masked["input_values"], as_lists["input_values"].numpy())
    # max_length: to max_length frames, or the longest when longer and not truncating; truncation cuts
    assert fe.pad([{"input_values": v} for v in per_clip], padding="max_length", max_length=60,
                  return_tensors="np")["input_values"].shape[2] == max(60, longest)
    cut = fe.pad([{"input_values": v} for v in per_clip], padding="max_length", max_length=10, truncation=True,
                 return_tensors="np")
    np.testing.assert_array_equal(cut["input_values"], np.stack([v[:, :10] for v in per_clip]))
    assert fe.pad([{"input_values": v} for v in per_clip], pad_to_multiple_of=16,
                  return_tensors="np")["input_values"].shape[2] == -(-longest // 16) * 16
    # an already stacked batch, and return_tensors=None (a list of padded per-example arrays, as __call__ gives)
    stacked = fe(clips[:3], sampling_rate=FSDD_RATE, return_tensors="np", return_attention_mask=True)
    again = fe.pad(stacked, return_tensors="np")
    np.testing.assert_array_equal(again["input_values"], stacked["input_values"])
    np.testing.assert_array_equal(again["attention_mask"], stacked["attention_mask"])
    listed = fe.pad([{"input_values": v} for v in per_clip])
    assert isinstance(listed["input_values"], list) and {v.shape for v in listed["input_values"]} == {(32, longest)}
    unpadded = fe.pad([{"input_values": v} for v in per_clip], padding=False)
    assert [v.shape[1] for v in unpadded["input_values"]] == lengths


def test_pad_bad_input_names_the_problem():
    fe = AudioViTFeatureExtractor(**SMALL)
    good = np.zeros((32, 10), dtype=np.float32)
    for bad, error, message in [
        ([{"input_values": np.zeros((64, 10))}], ValueError, r"example 0 has shape \(64, 10\); expected \(num_mel_bins, frames\) with num_mel_bins=32"),
        ([{"input_values": good}, {"input_values": np.zeros(1600)}], ValueError, r"example 1 has shape \(1600,\)"),
        ([{"input_values": good, "attention_mask": np.ones(9)}], ValueError, r"attention_mask of example 0 has shape \(9,\).*expected \(10,\)"),
        ([{"labels": 1}], ValueError, r"pad needs 'input_values'.*\['labels'\]"),
        ([{"input_values": good}, {"input_values": good, "labels": 1}], ValueError, "every example must have the same keys"),
        ("clip.wav", TypeError, "pad received str"),
        ([], TypeError, "pad received list"),
    ]:
        with pytest.raises(error, match=message):
            fe.pad(bad, return_tensors="pt")
    with pytest.raises(ValueError, match="padding='do_not_pad' leaves examples of different lengths"):
        fe.pad([{"input_values": good}, {"input_values": np.zeros((32, 12))}], padding=False, return_tensors="pt")
    with pytest.raises(ValueError, match="padding='sideways'"):
        fe.pad([{"input_values": good}], padding="sideways")
    with pytest.raises(ValueError, match="pad_to_multiple_of=0"):
        fe.pad([{"input_values": good}], pad_to_multiple_of=0)
