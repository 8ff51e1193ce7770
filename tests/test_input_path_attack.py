"""The training input path under attack: clips from 1 frame to 3 windows long, every augmentation at its largest
setting, padding masks and mixup. No example may lose all its real audio, and every network (scratch ViT with the
patch and the conv stem, timm ViT and CNN) must give finite outputs, loss and gradients, even for an all-padding
example (the mechanism of a real run that diverged to NaN: a 0.22 s clip shifted out of a 10 s window left every
token masked, mean + max pooling took the max over the dtype's minimum and the logits reached 1e38).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.data.augmentation import AugmentationConfig, SpectrogramAugmenter, real_spans
from audio_vit.data import SpectrogramCollator
from conftest import tiny_config_kwargs

MELS, WINDOW, LABELS = 16, 40, 3
SILENCE_DB = -100.0


def mixed_length_examples(seed: int, count: int = 24) -> list[dict]:
    """Cached-style examples (raw dB, 3 windows of storage) of 1 to 3 * WINDOW real frames, silence after."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[1, 2, 3, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW],
                              rng.integers(1, 3 * WINDOW + 1, count - 7)])
    examples = []
    for index, length in enumerate(lengths):
        values = np.full((MELS, 3 * WINDOW), SILENCE_DB, dtype=np.float16)
        values[:, :length] = rng.uniform(-80, -20, (MELS, length))
        examples.append({"input_values": values, "labels": index % LABELS, "num_frames": int(length),
                         "file": f"clip_{index}_{length}frames.wav"})
    return examples


def strongest_augmenter(seed: int, crop: bool) -> SpectrogramAugmenter:
    config = AugmentationConfig(
        gain_db=40.0, time_shift_frames=WINDOW * 3, random_crop_frames=WINDOW // 2 if crop else None,
        num_freq_masks=4, freq_mask_param=MELS, num_time_masks=4, time_mask_param=WINDOW,
        mixup_alpha=1.0, mixup_prob=1.0, seed=seed,
    )
    return SpectrogramAugmenter(config, num_labels=LABELS)


def feature_extractor() -> AudioViTFeatureExtractor:
    return AudioViTFeatureExtractor(num_mel_bins=MELS, max_length=WINDOW, mean=-50.0, std=20.0)


def models() -> dict[str, AudioViTForAudioClassification]:
    labels = {i: str(i) for i in range(LABELS)}
    common = dict(num_mel_bins=MELS, max_length=WINDOW, id2label=labels, label2id={v: k for k, v in labels.items()})
    built = {
        "patch stem": AudioViTConfig(**tiny_config_kwargs(**common, pooling="mean_max")),
        "conv stem": AudioViTConfig(**tiny_config_kwargs(**common, stem="conv", stem_channels=[8, 16],
                                                         patch_size=(4, 1), pooling="mean_max")),
        "timm ViT (avg pool)": AudioViTConfig(**common, backbone="timm", timm_model_name="vit_tiny_patch16_224",
                                              patch_size=(16, 4), frequency_stride=16, time_stride=4,
                                              timm_kwargs={"embed_dim": 32, "depth": 1, "num_heads": 2,
                                                           "global_pool": "avg", "class_token": False}),
        "timm CNN": AudioViTConfig(**common, backbone="timm", timm_model_name="resnet18"),
    }
    torch.manual_seed(0)
    return {name: AudioViTForAudioClassification(config) for name, config in built.items()}


@pytest.mark.parametrize("crop", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_every_training_example_keeps_real_audio(seed, crop):
    examples = mixed_length_examples(seed)
    collator = SpectrogramCollator(feature_extractor(), augmenter=strongest_augmenter(seed, crop), window=WINDOW)
    batch = collator(examples)
    mask = batch["attention_mask"]
    assert mask.shape[0] == len(examples)
    assert (mask.sum(dim=1) >= 1).all(), mask.sum(dim=1)
    assert torch.isfinite(batch["input_values"]).all()
    assert batch["labels"].shape == (len(examples), LABELS)  # mixup soft targets
    assert batch["file"] == [example["file"] for example in examples]


@pytest.mark.parametrize("seed", range(4))
def test_shift_crop_and_time_masks_keep_half_of_a_short_clip(seed):
    """Each op alone, on a 6-frame clip in a 251-frame window (the shape of the real failure)."""
    frames, length = 251, 6
    x = torch.full((8, MELS, frames), SILENCE_DB)
    x[:, :, :length] = -30.0
    mask = torch.zeros(8, frames, dtype=torch.long)
    mask[:, :length] = 1
    shifter = SpectrogramAugmenter(AugmentationConfig(time_shift_frames=frames - 1, seed=seed))
    _, shifted = shifter.time_shift(x, mask)
    assert (shifted.sum(dim=1) >= 3).all()
    cropper = SpectrogramAugmenter(AugmentationConfig(random_crop_frames=25, seed=seed))
    _, cropped = cropper.random_crop(x, mask)
    assert (cropped.sum(dim=1) >= 3).all()
    masker = SpectrogramAugmenter(AugmentationConfig(num_time_masks=5, time_mask_param=frames, seed=seed))
    masked = masker.spec_augment(x, fill_value=0.0, attention_mask=mask)
    untouched_real = (masked[:, 0, :length] == -30.0).sum(dim=1)
    assert (untouched_real >= 1).all()


def test_real_spans_of_masks():
    mask = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    first, end, keep = real_spans(mask, 3, 6)
    assert first.tolist() == [1, 0, 0] and end.tolist() == [4, 6, 6] and keep.tolist() == [2, 3, 3]


@pytest.mark.parametrize("seed", range(2))
def test_every_network_is_finite_on_attacked_batches(seed):
    examples = mixed_length_examples(seed)
    batch = SpectrogramCollator(feature_extractor(), augmenter=strongest_augmenter(seed, crop=False),
                                window=WINDOW)(examples)
    for name, model in models().items():
        model.train()
        model.zero_grad()
        out = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        assert torch.isfinite(out.logits).all(), name
        assert torch.isfinite(out.loss), name
        out.loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name


def test_an_all_padding_example_gives_a_finite_output():
    """Defined for any mask: an example without a single real frame is treated as all real (its silence)."""
    x = torch.randn(3, MELS, WINDOW)
    mask = torch.ones(3, WINDOW, dtype=torch.long)
    mask[1] = 0  # all padding
    for name, model in models().items():
        model.eval()
        with torch.no_grad():
            logits = model(input_values=x, attention_mask=mask).logits
            unmasked = model(input_values=x[1:2]).logits
        assert torch.isfinite(logits).all(), name
        assert logits.abs().max() < 1e4, name
        torch.testing.assert_close(logits[1:2], unmasked, atol=1e-4, rtol=1e-4, msg=name)


def test_mean_max_pooling_of_a_row_without_valid_tokens_is_finite():
    model = models()["patch stem"].audio_vit
    tokens = torch.randn(2, 1 + 5, 32)
    token_mask = torch.ones(2, 6, dtype=torch.bool)
    token_mask[0, 1:] = False
    pooled = model.pool(tokens, token_mask)
    assert torch.isfinite(pooled).all() and pooled.abs().max() < 100
