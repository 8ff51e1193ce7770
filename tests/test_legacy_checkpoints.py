"""Checkpoints written before the redesign (issue 13) load with identical logits.

The folders under `tests/fixtures/legacy_checkpoints/` were saved by the code of commit 0f46b01 with
`tests/fixtures/make_legacy_checkpoints.py`, together with the logits that code computed for a fixed input.
"""
from __future__ import annotations

import os
import subprocess
import sys
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


PRE_LAYOUT = Path(__file__).resolve().parent / "fixtures" / "pre_layout_checkpoint"


def test_a_folder_saved_before_the_layout_step_gives_the_same_features_and_logits():
    """Saved by commit 9fd84e6 (the shipped files then at the package root): the installed code reads its
    extractor and weights and computes the same features and logits from the same waveform."""
    expected = load_file(str(PRE_LAYOUT / "expected_logits.safetensors"))
    extractor = AudioViTFeatureExtractor.from_pretrained(str(PRE_LAYOUT))
    features = extractor(expected["waveform"].numpy(), sampling_rate=8000, return_tensors="pt",
                         return_attention_mask=True)
    torch.testing.assert_close(features["input_values"], expected["input_values"], rtol=0, atol=1e-6)
    assert torch.equal(features["attention_mask"], expected["attention_mask"])
    model = AudioViTForAudioClassification.from_pretrained(str(PRE_LAYOUT)).eval()
    with torch.no_grad():
        logits = model(features["input_values"], attention_mask=features["attention_mask"]).logits
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-6)


def test_a_folder_saved_before_the_layout_step_still_runs_its_own_code(tmp_path):
    """Without audio_vit imported, `trust_remote_code` runs the network code the old folder carries (the module
    names of its `auto_map`) and gives the recorded logits."""
    script = f"""
import sys, torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
folder = {str(PRE_LAYOUT)!r}
expected = load_file(folder + "/expected_logits.safetensors")
model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
features = extractor(expected["waveform"].numpy(), sampling_rate=8000, return_tensors="pt", return_attention_mask=True)
with torch.no_grad():
    logits = model(features["input_values"], attention_mask=features["attention_mask"]).logits
assert "audio_vit" not in sys.modules, "the package was imported"
print(type(model).__module__, float((logits - expected["logits"]).abs().max()))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    module, difference = result.stdout.split()[-2:]
    assert module.startswith("transformers_modules.") and module.endswith(".modeling_audio_vit")
    assert float(difference) <= 1e-6
