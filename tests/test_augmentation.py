"""Spectrogram augmentation: each op does what it says, vectorised over the batch, reproducible with a seed."""
import pytest
import torch

from audio_vit.data.augmentation import AugmentationConfig, SpectrogramAugmenter

B, M, T = 6, 16, 40


def batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(B, M, T, generator=generator) * 60 - 80  # raw dB in [-80, -20]
    return x, torch.arange(B) % 3


def test_disabled_config_is_identity():
    x, labels = batch()
    config = AugmentationConfig(seed=0)
    assert not config.enabled
    out, out_labels = SpectrogramAugmenter(config)(x, labels)
    assert torch.equal(out, x) and torch.equal(out_labels, labels)


def test_gain_adds_one_constant_per_clip():
    x, labels = batch()
    out, _ = SpectrogramAugmenter(AugmentationConfig(gain_db=6.0, seed=1))(x, labels)
    offset = out - x
    per_clip = offset[:, 0, 0]
    assert torch.allclose(offset, per_clip[:, None, None].expand_as(offset), atol=1e-5)
    assert per_clip.abs().max() <= 6.0 and per_clip.std() > 0


def test_time_shift_moves_frames_and_fills_with_the_floor():
    x, labels = batch()
    out, _ = SpectrogramAugmenter(AugmentationConfig(time_shift_frames=5, seed=2))(x, labels)
    for i in range(B):
        matched = [s for s in range(-5, 6)
                   if torch.equal(out[i, :, max(s, 0):T + min(s, 0)], x[i, :, max(-s, 0):T - max(s, 0)])]
        assert matched, f"clip {i} is not a shifted copy"
        s = matched[0]
        filled = out[i, :, :s] if s > 0 else out[i, :, T + s:]
        assert torch.all(filled == x[i].min())


def test_random_crop_takes_a_window():
    x, labels = batch()
    out, _ = SpectrogramAugmenter(AugmentationConfig(random_crop_frames=25, seed=3))(x, labels)
    assert out.shape == (B, M, 25)
    for i in range(B):
        assert any(torch.equal(out[i], x[i, :, s:s + 25]) for s in range(T - 25 + 1))


def test_spec_augment_masks_bands_with_the_fill_value():
    x, labels = batch()
    config = AugmentationConfig(num_freq_masks=2, freq_mask_param=4, num_time_masks=2, time_mask_param=8, seed=4)
    out, _ = SpectrogramAugmenter(config)(x, labels, fill_value=-50.0)
    masked = out != x
    assert torch.all(out[masked] == -50.0)
    assert masked.any()
    # a masked bin is part of a full masked row (frequency) or a full masked column (time)
    for i in range(B):
        rows = masked[i].all(dim=1)
        cols = masked[i].all(dim=0)
        assert torch.equal(masked[i], rows[:, None] | cols[None, :])
        assert rows.sum() <= 8 and cols.sum() <= 16


def test_mixup_gives_soft_targets():
    x, labels = batch()
    augmenter = SpectrogramAugmenter(AugmentationConfig(mixup_alpha=0.4, seed=5), num_labels=3)
    out, targets = augmenter(x, labels)
    assert targets.shape == (B, 3) and targets.dtype == torch.float32
    assert torch.allclose(targets.sum(dim=1), torch.ones(B))
    assert (targets.max(dim=1).values < 1).any()  # some clips really were mixed
    assert out.min() >= x.min() - 1e-4 and out.max() <= x.max() + 1e-4  # convex combinations
    with pytest.raises(ValueError, match="num_labels"):
        SpectrogramAugmenter(AugmentationConfig(mixup_alpha=0.4))


def test_mixup_prob_zero_keeps_one_hot_targets():
    x, labels = batch()
    _, targets = SpectrogramAugmenter(AugmentationConfig(mixup_alpha=1.0, mixup_prob=0.0, seed=0), num_labels=3)(x, labels)
    assert torch.equal(targets, torch.nn.functional.one_hot(labels, 3).float())


def test_seed_makes_runs_reproducible():
    x, labels = batch()
    config = AugmentationConfig(gain_db=3, time_shift_frames=4, num_freq_masks=1, num_time_masks=1, mixup_alpha=0.3,
                                seed=11)
    a = SpectrogramAugmenter(config, num_labels=3)
    b = SpectrogramAugmenter(config, num_labels=3)
    first_a, first_b = a(x, labels), b(x, labels)
    assert torch.equal(first_a[0], first_b[0]) and torch.equal(first_a[1], first_b[1])
    second_a = a(x, labels)
    assert not torch.equal(first_a[0], second_a[0])  # the generator advances between batches


def test_unseeded_augmenter_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SpectrogramAugmenter(AugmentationConfig(gain_db=1.0))
    assert torch.equal(torch.rand(3), expected)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="gain_db=-1"):
        AugmentationConfig(gain_db=-1)
    with pytest.raises(ValueError, match="mixup_prob=2"):
        AugmentationConfig(mixup_prob=2)
    with pytest.raises(ValueError, match="random_crop_frames=0"):
        AugmentationConfig(random_crop_frames=0)


def _short_clips_mask(lengths) -> torch.Tensor:
    """(B, T) attention mask of clips with `lengths` real frames at the start of the window, padding after."""
    return (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).long()


def test_mixup_keeps_the_mask_of_clips_it_does_not_mix():
    x, labels = batch()
    mask = _short_clips_mask([3, 40, 10, 40, 5, 20])
    augmenter = SpectrogramAugmenter(AugmentationConfig(mixup_alpha=1.0, mixup_prob=0.5, seed=7), num_labels=3)
    seen_unmixed = seen_mixed = 0
    for _ in range(20):  # enough batches that many clips are mixed and many are left alone
        out, _, out_mask = augmenter(x, labels, attention_mask=mask)
        unmixed = (out == x).flatten(1).all(dim=1)  # lam == 1 (or mixed with itself, which changes nothing)
        mixed = ~unmixed
        seen_unmixed, seen_mixed = seen_unmixed + int(unmixed.sum()), seen_mixed + int(mixed.sum())
        # a clip left alone is unchanged, and so is its padding mask (its padding stays padding, as at evaluation)
        assert torch.equal(out[unmixed], x[unmixed]) and torch.equal(out_mask[unmixed], mask[unmixed])
        # a mixed clip is real wherever either of the two clips was: at least its own real frames
        assert torch.all(out_mask[mixed] >= mask[mixed])
    assert seen_unmixed > 20 and seen_mixed > 20


def test_frequency_masks_never_cover_every_bin():
    x, labels = batch()
    config = AugmentationConfig(num_freq_masks=1, freq_mask_param=M, seed=0)  # a band as wide as the spectrogram
    augmenter = SpectrogramAugmenter(config)
    for _ in range(200):
        out, _ = augmenter(x, labels, fill_value=-50.0)
        masked_rows = (out == -50.0).all(dim=2)  # (B, M)
        assert not masked_rows.all(dim=1).any(), "an example lost every mel bin"
        assert masked_rows.sum(dim=1).max() <= M // 2
