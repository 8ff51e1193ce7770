"""Long and short clips: training crops, whole-clip evaluation over windows, padding masks in the model."""
import numpy as np
import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.data.augmentation import AugmentationConfig, SpectrogramAugmenter
from audio_vit.data.collator import SpectrogramCollator
from audio_vit.inference.long_audio import average_window_logits, clip_windows, whole_clip_logits
from conftest import tiny_config_kwargs

MELS = 16


def _extractor(window):
    fe = AudioViTFeatureExtractor(sampling_rate=8000, n_fft=256, hop_length=80, num_mel_bins=MELS, max_length=window)
    fe.mean, fe.std = 0.0, 1.0
    return fe


def _example(frames, stored, label=0):
    values = np.full((MELS, stored), -80.0, dtype=np.float16)
    values[:, :frames] = np.arange(frames, dtype=np.float16)[None, :]  # frame t holds the value t
    return {"input_values": values, "labels": label, "num_frames": frames}


def test_training_windows_are_random_crops_of_long_clips_and_masked_short_clips():
    augmenter = SpectrogramAugmenter(AugmentationConfig(seed=0))
    collate = SpectrogramCollator(_extractor(8), augmenter=augmenter)
    starts = set()
    for _ in range(20):
        batch = collate([_example(30, 30), _example(3, 30)])
        assert batch["input_values"].shape == (2, MELS, 8)
        long_clip = batch["input_values"][0, 0]
        assert torch.equal(long_clip, long_clip[0] + torch.arange(8.0))  # a contiguous window of real frames
        assert batch["attention_mask"][0].tolist() == [1] * 8
        starts.add(int(long_clip[0]))
        assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
        assert batch["input_values"][1, 0, :3].tolist() == [0.0, 1.0, 2.0]
    assert len(starts) > 5 and max(starts) <= 22  # crops move around the whole clip


def test_time_shift_moves_the_padding_mask_with_the_audio():
    augmenter = SpectrogramAugmenter(AugmentationConfig(time_shift_frames=3, seed=1))
    collate = SpectrogramCollator(_extractor(10), augmenter=augmenter)
    for _ in range(10):
        batch = collate([_example(4, 10)])
        real = batch["input_values"][0, 0] >= 0
        assert torch.equal(real.long(), batch["attention_mask"][0])


def test_evaluation_batches_keep_whole_clips():
    collate = SpectrogramCollator(_extractor(8))
    batch = collate([_example(30, 30), _example(3, 30)])
    assert batch["input_values"].shape == (2, MELS, 30)
    assert batch["num_frames"].tolist() == [30, 3]
    assert batch["attention_mask"].sum(1).tolist() == [30, 3]


def test_clip_windows_cover_every_frame_and_average_per_clip():
    values = torch.arange(20.0).repeat(2, MELS, 1)  # (2, M, 20)
    windows, masks, owners = clip_windows(values, torch.tensor([20, 5]), window=8)
    covered = set()
    for window, mask, owner in zip(windows, masks, owners):
        if owner == 0:
            covered |= set(window[0][mask.bool()].long().tolist())
    assert covered == set(range(20))
    assert owners.tolist().count(1) == 1 and masks[owners == 1][0].tolist() == [1] * 5 + [0] * 3
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    assert average_window_logits(logits, torch.tensor([0, 0, 1]), 2).tolist() == [[2.0, 0.0], [0.0, 2.0]]


@pytest.mark.parametrize("pooling", ["mean", "mean_max"])
@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_masks_change_padded_outputs_but_not_full_ones(stem, pooling):
    """Padding is ignored by attention and pooling (mean_max: the max skips padded tokens too)."""
    torch.manual_seed(0)
    config = AudioViTConfig(num_mel_bins=MELS, max_length=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            patch_size=[MELS, 4] if stem == "patch" else [2, 1], stem=stem, stem_channels=[8, 8, 8],
                            pooling=pooling, num_labels=3)
    model = AudioViTForAudioClassification(config).eval()
    x = torch.randn(2, MELS, 32)
    full = torch.ones(2, 32, dtype=torch.long)
    padded = full.clone()
    padded[1, 12:] = 0
    with torch.no_grad():
        plain = model(x).logits
        with_full_mask = model(x, attention_mask=full).logits
        with_padding = model(x, attention_mask=padded).logits
    assert torch.allclose(plain, with_full_mask, atol=1e-6)
    assert torch.allclose(plain[0], with_padding[0], atol=1e-6)
    assert not torch.allclose(plain[1], with_padding[1], atol=1e-4)
    # the padded clip scores as its real frames alone: padding (whatever its values) changes nothing
    noisy_padding = x.clone()
    noisy_padding[1, :, 12:] = 100.0
    with torch.no_grad():
        again = model(noisy_padding, attention_mask=padded).logits
    if stem == "patch":  # a conv stem's receptive field reaches across the border into the padding
        assert torch.allclose(again[1], with_padding[1], atol=1e-5)


def test_whole_clip_logits_average_the_windows_of_a_long_clip():
    torch.manual_seed(0)
    config = AudioViTConfig(num_mel_bins=MELS, max_length=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            patch_size=[MELS, 4], pooling="mean", num_labels=3)
    model = AudioViTForAudioClassification(config).eval()
    x = torch.randn(1, MELS, 40)
    with torch.no_grad():
        got = whole_clip_logits(model, x, torch.tensor([40]), window=16)
        starts = [0, 8, 16, 24]
        expected = torch.stack([model(x[:, :, s : s + 16]).logits[0] for s in starts]).mean(0)
    assert torch.allclose(got[0], expected, atol=1e-5)


def test_pipeline_judges_a_long_recording_on_all_of_its_windows(tmp_path):
    from audio_vit import audio_classification_pipeline

    torch.manual_seed(0)
    fe = AudioViTFeatureExtractor(sampling_rate=8000, n_fft=256, hop_length=80, num_mel_bins=MELS, max_length=16)
    config = AudioViTConfig(num_mel_bins=MELS, max_length=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            patch_size=[MELS, 4], pooling="mean", num_labels=3)
    model = AudioViTForAudioClassification(config).eval()
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    waveform = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1  # 1 s = 101 frames
    scores = audio_classification_pipeline(str(tmp_path))({"raw": waveform, "sampling_rate": 8000}, top_k=3)
    features = fe(waveform, sampling_rate=8000, padding="max_length", truncation=False, return_tensors="pt")
    with torch.no_grad():
        expected = whole_clip_logits(model, features["input_values"], torch.tensor([101]), window=16)[0].softmax(-1)
        first_window_only = model(features["input_values"][..., :16]).logits[0].softmax(-1)
    got = {s["label"]: s["score"] for s in scores}
    assert all(abs(got[model.config.id2label[i]] - float(expected[i])) < 1e-5 for i in range(3))
    assert not torch.allclose(expected, first_window_only, atol=1e-3)


def test_evaluation_of_long_recordings_forwards_bounded_groups_with_the_same_logits(monkeypatch):
    from audio_vit.training import eval_loop as evaluation

    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs(max_length=16))).eval()
    num_frames = torch.tensor([400, 5, 16, 200, 17])
    batch = {"input_values": torch.randn(5, 16, 400), "num_frames": num_frames}
    whole = evaluation.batch_logits(model, batch, 16)  # 49 + 1 + 1 + 24 + 2 windows: one forward pass
    forwarded = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda **kw: forwarded.append(len(kw["input_values"])) or original(**kw))
    monkeypatch.setattr(evaluation, "MAX_WINDOWS_PER_FORWARD", 30)
    grouped = evaluation.batch_logits(model, batch, 16)
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-5)
    assert forwarded == [49, 28]  # the 49-window clip alone, then the other four (28 windows <= 30)
