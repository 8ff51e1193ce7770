"""Checkpoints written before the redesign (issue 13) load with identical logits.

The folders under `tests/fixtures/legacy_checkpoints/` were saved by the code of commit 0f46b01 with
`tests/fixtures/make_legacy_checkpoints.py`, together with the logits that code computed for a fixed input.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audio_vit import AudioViTFeatureExtractor, AudioViTForAudioClassification

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy_checkpoints"


@pytest.mark.parametrize("name", ["scratch_vit", "timm_resnet18", "timm_vit"])
def test_legacy_checkpoint_gives_identical_logits(name):
    folder = LEGACY / name
    expected = load_file(str(folder / "expected_logits.safetensors"))
    model = AudioViTForAudioClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        logits = model(expected["input_values"]).logits
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-6)
    assert model.config.id2label == {0: "zero", 1: "one", 2: "two"}


def test_legacy_scratch_vit_attention_mask_logits_unchanged():
    folder = LEGACY / "scratch_vit"
    expected = load_file(str(folder / "expected_logits.safetensors"))
    model = AudioViTForAudioClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        logits = model(expected["input_values"], attention_mask=expected["attention_mask"]).logits
    torch.testing.assert_close(logits, expected["logits_with_attention_mask"], rtol=0, atol=1e-6)
    # the mask changes the mean-pooled logits of the padded clip only
    assert not torch.allclose(logits[1], expected["logits"][1])


@pytest.mark.parametrize("name", ["scratch_vit", "timm_resnet18", "timm_vit"])
def test_legacy_feature_extractor_loads(name):
    extractor = AudioViTFeatureExtractor.from_pretrained(str(LEGACY / name))
    assert (extractor.sampling_rate, extractor.num_mel_bins, extractor.mean, extractor.std) == (8000, 16, -40.0, 20.0)
