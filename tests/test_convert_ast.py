"""AST checkpoints -> audio_vit folders: same logits, same features as ASTFeatureExtractor, clear errors. Offline:
the AST is a small randomly initialised config saved here."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

from audio_vit import AudioViTForAudioClassification
from audio_vit.data.audio_decoding import load_audio
from audio_vit.cli import main as cli_main
from audio_vit.pretrained.convert_ast import (
    FEATURES_TOLERANCE,
    LOGITS_TOLERANCE,
    ast_feature_extractor,
    compare_logits,
    convert_ast_checkpoint,
)
from audio_vit.model_folder import load_feature_extractor, load_model

LABELS = ["Speech", "Music", "Dog", "Siren", "Rain"]


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    """A small AST (2 layers, hidden 32, 32 mel bins x 100 frames) with every weight randomised, saved as on the hub."""
    out = tmp_path_factory.mktemp("ast")
    torch.manual_seed(0)
    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       num_mel_bins=32, max_length=100, id2label=dict(enumerate(LABELS)),
                       label2id={label: i for i, label in enumerate(LABELS)})
    model = ASTForAudioClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # zero tokens / unit norms would hide mapping mistakes
            parameter.add_(torch.randn_like(parameter) * 0.2)
    model.save_pretrained(out)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100, mean=-5.0, std=4.0).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def converted_dir(ast_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    assert cli_main(["convert-ast", str(ast_dir), str(out), "--overwrite"]) == 0
    return out


def _fsdd_16k(paths) -> list[np.ndarray]:
    return [load_audio(path, sampling_rate=16000)[0] for path in paths]


def test_features_match_ast_feature_extractor(fsdd_clips):
    """Kaldi frontend vs ASTFeatureExtractor (AudioSet defaults: 128 bins, 1024 frames) on real clips and a
    clip longer than the window; AST's layout is (frames, bins), ours (bins, frames)."""
    reference_extractor = ASTFeatureExtractor()
    extractor = ast_feature_extractor(reference_extractor)
    clips = _fsdd_16k(fsdd_clips[:4]) + [np.concatenate(_fsdd_16k(fsdd_clips) * 6)]  # last: ~13 s > 10.24 s
    for clip in clips:
        reference = reference_extractor(clip, sampling_rate=16000, return_tensors="np")["input_values"][0].T
        ours = extractor(clip, sampling_rate=16000, return_tensors="np")["input_values"][0]
        assert ours.shape == reference.shape == (128, 1024)
        assert np.abs(ours - reference).max() <= FEATURES_TOLERANCE
    assert extractor.frames_for(16000) == 98  # kaldi framing: 1 + (16000 - 400) // 160, no centre padding


def test_converted_folder_gives_asts_logits(ast_dir, converted_dir, fsdd_clips):
    ast_model = ASTForAudioClassification.from_pretrained(ast_dir).eval()
    model = load_model(converted_dir)
    extractor = load_feature_extractor(converted_dir)
    assert model.config.id2label == dict(enumerate(LABELS)) and extractor.frontend == "kaldi"
    assert extractor.std == pytest.approx(8.0) and extractor.mean == pytest.approx(-5.0)  # AST divides by 2 * std

    inputs = extractor(_fsdd_16k(fsdd_clips), sampling_rate=16000, return_tensors="pt")["input_values"]
    assert compare_logits(ast_model, model, inputs) <= LOGITS_TOLERANCE
    # end to end: AST's own features into AST vs the folder's extractor into the converted model
    clip = _fsdd_16k(fsdd_clips[:1])[0]
    with torch.no_grad():
        reference = ast_model(**ASTFeatureExtractor.from_pretrained(ast_dir)(clip, sampling_rate=16000,
                                                                             return_tensors="pt")).logits
        ours = model(**extractor(clip, sampling_rate=16000, return_tensors="pt")).logits
    assert (reference - ours).abs().max() <= 1e-3  # features differ by <= FEATURES_TOLERANCE, amplified a little

    report = json.loads((converted_dir / "conversion.json").read_text())
    assert report["max_logits_diff"] <= LOGITS_TOLERANCE and report["source"] == str(ast_dir)


def test_converted_model_runs_on_other_clip_lengths(converted_dir, fsdd_clips):
    """Position embeddings are interpolated along time, so a 0.5 s window works without retraining."""
    model = AudioViTForAudioClassification.from_pretrained(converted_dir).eval()
    extractor = load_feature_extractor(converted_dir)
    inputs = extractor(_fsdd_16k(fsdd_clips[:2]), sampling_rate=16000, max_length=50, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (2, len(LABELS)) and torch.isfinite(logits).all()


def test_bad_sources_are_clear_errors(tmp_path, converted_dir, ast_dir):
    with pytest.raises(ValueError, match="model_type='audio_vit'"):
        convert_ast_checkpoint(converted_dir, tmp_path / "out")  # an audio_vit folder is not an AST
    with pytest.raises(ValueError, match="no config.json"):
        convert_ast_checkpoint(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="already holds a model"):
        convert_ast_checkpoint(ast_dir, converted_dir)
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="is a file"):
        convert_ast_checkpoint(wav, tmp_path / "out")


def test_ast_config_fields_are_checked_and_masked_pooling_skips_both_prefix_tokens():
    from audio_vit import AudioViTConfig
    from tests.conftest import tiny_config_kwargs

    with pytest.raises(ValueError, match="needs distillation_token=True"):
        AudioViTConfig(**tiny_config_kwargs(pooling="cls_distillation"))
    with pytest.raises(ValueError, match="scratch ViT"):
        AudioViTConfig(**tiny_config_kwargs(backbone="timm", timm_model_name="resnet18", distillation_token=True))
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs(distillation_token=True, pooling="mean")))
    assert model.audio_vit.embeddings.position_embeddings.shape[1] == 2 + 16  # CLS + distillation + 16 patches
    mask = torch.ones(2, 32, dtype=torch.long)
    mask[1, 16:] = 0
    values = torch.randn(2, 16, 32)
    other_padding = values.clone()
    other_padding[1, :, 16:] = torch.randn(16, 16)
    with torch.no_grad():
        logits = model(values, attention_mask=mask).logits
        changed = model(other_padding, attention_mask=mask).logits
    # what lies in the padding is ignored: the token mask lines up with CLS + distillation + patches
    assert torch.allclose(logits, changed, atol=1e-5) and not torch.allclose(logits[0], logits[1])


def test_converted_ast_fine_tunes_on_new_labels_and_clip_length(converted_dir, fsdd_dir, tmp_path):
    """`audio-vit train --model-name-or-path OUT`: FSDD digits instead of the AST labels, 48 frames instead of
    100: the head is re-initialised, the position embeddings re-laid for the new grid, the encoder kept."""
    out = tmp_path / "fine-tuned"
    code = cli_main([
        "train", "--model-name-or-path", str(converted_dir), "--ignore-mismatched-labels", "--max-length", "48",
        "--data-dir", str(fsdd_dir), "--max-clips", "20", "--cache-dir", str(tmp_path / "cache"),
        "--output-dir", str(out), "--num-train-epochs", "1", "--per-device-train-batch-size", "8",
        "--report-to", "none", "--disable-tqdm", "--log-examples", "0",
    ])
    assert code == 0
    tuned = load_model(out)
    base = AudioViTForAudioClassification.from_pretrained(converted_dir)
    assert sorted(tuned.config.id2label.values()) == [str(d) for d in range(10)]
    assert tuned.config.max_length == 48 and load_feature_extractor(out).max_length == 48
    assert tuned.config.patch_grid == (2, 4)  # (32 - 16) // 10 + 1 mel x (48 - 16) // 10 + 1 time patches
    assert tuned.audio_vit.embeddings.position_embeddings.shape[1] == 2 + 2 * 4
    base_grid = base.audio_vit.embeddings.position_embeddings[:, :2]
    assert torch.allclose(tuned.audio_vit.embeddings.position_embeddings[:, :2], base_grid, atol=0.05)  # prefix kept
    assert tuned.classifier[2].weight.shape == (10, 32)
