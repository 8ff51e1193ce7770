"""The from-scratch AudioViT: geometry checks, shapes, gradients, masking, losses, save/load."""
from __future__ import annotations

import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTForAudioClassification, AudioViTModel
from tests.conftest import tiny_config_kwargs


def tiny_model(**overrides) -> AudioViTForAudioClassification:
    torch.manual_seed(0)
    return AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs(**overrides)))


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(patch_size=(17, 2)), "patch height 17 > num_mel_bins=16"),
        (dict(patch_size=(16, 40)), "patch width 40 > max_length=32"),
        (dict(hidden_size=31), "hidden_size=31 is not divisible by num_attention_heads=2"),
        (dict(pooling="max"), "pooling='max'"),
        (dict(backbone="keras"), "backbone='keras'"),
        (dict(backbone="timm"), "timm_model_name"),
        (dict(time_stride=0), "time_stride=0"),
        (dict(patch_size=(16, 2, 2)), "patch_size=(16, 2, 2)"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob=1.5"),
    ],
)
def test_impossible_geometry_raises_naming_values(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AudioViTConfig(**tiny_config_kwargs(**overrides))


def test_overlapping_patch_grid():
    config = AudioViTConfig(**tiny_config_kwargs(patch_size=(8, 4), frequency_stride=4, time_stride=2))
    assert config.patch_grid == ((16 - 8) // 4 + 1, (32 - 4) // 2 + 1)
    model = AudioViTModel(config)
    out = model(torch.randn(2, 16, 32))
    assert out.last_hidden_state.shape == (2, 1 + 3 * 15, 32)


def test_config_round_trip(tmp_path):
    config = AudioViTConfig(**tiny_config_kwargs(frequency_stride=8))
    config.save_pretrained(tmp_path)
    loaded = AudioViTConfig.from_pretrained(tmp_path)
    assert loaded.patch_size == [16, 2] and loaded.frequency_stride == 8
    assert loaded.id2label == {0: "zero", 1: "one", 2: "two"}


# --- forward / backward -------------------------------------------------------------------------


def test_shapes_and_outputs():
    model = tiny_model().eval()
    x = torch.randn(4, 16, 32)
    out = model(x, output_hidden_states=True)
    assert out.logits.shape == (4, 3)
    assert len(out.hidden_states) == 1 + 2  # embeddings + one per layer
    base = model.audio_vit(x)
    assert base.last_hidden_state.shape == (4, 1 + 16, 32)  # CLS + 16 time patches
    assert base.pooler_output.shape == (4, 32)
    assert torch.equal(model.forward_features(x), base.pooler_output)
    assert torch.equal(model.audio_vit.forward_features(x), base.last_hidden_state)
    # A channel axis of size 1 is accepted.
    assert torch.allclose(model(x.unsqueeze(1)).logits, out.logits)


def test_every_parameter_gets_a_gradient_and_no_nan():
    model = tiny_model(hidden_dropout_prob=0.1, drop_path_rate=0.1).train()
    out = model(torch.randn(3, 16, 32), labels=torch.tensor([0, 1, 2]))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("frames", [8, 32, 96, 301])
def test_other_clip_lengths_interpolate_positions(frames):
    """A model laid out for 32 frames runs on shorter and longer inputs (no AST-style shape error)."""
    model = tiny_model().eval()
    out = model(torch.randn(2, 16, frames))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.logits).all()


def test_same_length_uses_learned_positions_unchanged():
    from audio_vit.models.audio_vit.modeling_layers import resize_pos_embed

    pos = torch.randn(1, 6, 4)
    assert resize_pos_embed(pos, (1, 6), (1, 6)) is pos
    stretched = resize_pos_embed(pos, (1, 6), (1, 12))
    assert stretched.shape == (1, 12, 4)


def test_bad_input_shapes_raise():
    model = tiny_model()
    with pytest.raises(ValueError, match="20 mel bins but the model expects num_mel_bins=16"):
        model(torch.randn(1, 20, 32))
    with pytest.raises(ValueError, match=r"got \(16, 32\)"):
        model(torch.randn(16, 32))
    with pytest.raises(ValueError, match="fewer than the patch width 2"):
        model(torch.randn(1, 16, 1))


def test_attention_mask_ignores_padding():
    """With a frame mask, whatever sits in the padding cannot change the prediction."""
    model = tiny_model(pooling="mean").eval()
    clip = torch.randn(1, 16, 20)
    padded_a = torch.cat([clip, torch.zeros(1, 16, 12)], dim=-1)
    padded_b = torch.cat([clip, 5 * torch.randn(1, 16, 12)], dim=-1)
    mask = torch.cat([torch.ones(1, 20), torch.zeros(1, 12)], dim=-1).long()
    logits_a = model(padded_a, attention_mask=mask).logits
    logits_b = model(padded_b, attention_mask=mask).logits
    assert torch.allclose(logits_a, logits_b, atol=1e-5)
    assert not torch.allclose(model(padded_a).logits, model(padded_b).logits, atol=1e-3)


# --- losses -------------------------------------------------------------------------------------


def test_losses():
    model = tiny_model().eval()
    x = torch.randn(2, 16, 32)
    logits = model(x).logits
    hard = model(x, labels=torch.tensor([2, 0])).loss
    assert torch.allclose(hard, torch.nn.functional.cross_entropy(logits, torch.tensor([2, 0])), atol=1e-6)
    soft_targets = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(model(x, labels=soft_targets).loss, hard, atol=1e-6)

    multi = tiny_model(problem_type="multi_label_classification").eval()
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = multi(x, labels=targets)
    assert torch.allclose(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets), atol=1e-6)

    with pytest.raises(ValueError, match=r"class ids in \[0, 2\]; got min 0, max 3"):
        model(x, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="soft targets must have shape"):
        model(x, labels=torch.rand(2, 5))


# --- persistence --------------------------------------------------------------------------------


def test_save_load_reproduces_logits(tmp_path):
    model = tiny_model().eval()
    x = torch.randn(2, 16, 40)
    expected = model(x).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded = AudioViTForAudioClassification.from_pretrained(tmp_path).eval()
    assert torch.allclose(loaded(x).logits, expected, atol=1e-5)
    assert loaded.config.id2label[2] == "two"


def test_pinned_logits_slice():
    """Seeded init + fixed input give fixed logits: catches silent changes to the architecture or init."""
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())).eval()
    torch.manual_seed(1)
    logits = model(torch.randn(1, 16, 32)).logits[0]
    expected = torch.tensor(PINNED_LOGITS)
    assert torch.allclose(logits, expected, atol=1e-4), logits.tolist()


PINNED_LOGITS = [-0.168763, -0.085749, 0.140420]


def test_timm_cnn_ignores_patch_geometry_but_timm_vit_checks_it():
    """CNN backbones have no patches; a timm ViT's patch must still fit the input."""
    cnn = AudioViTForAudioClassification(
        AudioViTConfig(backbone="timm", timm_model_name="resnet18", num_mel_bins=32, max_length=40, num_labels=3)
    )
    assert cnn(torch.randn(1, 32, 40)).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="patch height 64 > num_mel_bins=32"):
        AudioViTForAudioClassification(
            AudioViTConfig(backbone="timm", timm_model_name="vit_tiny_patch16_224", num_mel_bins=32,
                           max_length=40, patch_size=(64, 2), num_labels=3)
        )
