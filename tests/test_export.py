"""Export: ONNX (onnxruntime) and torch.export (.pt2) with dynamic batch/time, checked against PyTorch logits."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.export.exporters import (
    ExportMismatchError,
    check_lengths,
    export_model_folder,
    load_runner,
    min_export_frames,
    verify_export,
)
from tests.conftest import tiny_config_kwargs

onnx = pytest.importorskip("onnx", reason="the export extra (onnx, onnxruntime, onnxscript) is not installed")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "tiny"
    torch.manual_seed(0)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs()))
    model.save_pretrained(folder)
    AudioViTFeatureExtractor(sampling_rate=8000, n_fft=256, hop_length=80, num_mel_bins=16, max_length=32).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def onnx_export(model_dir):
    return export_model_folder(model_dir, "onnx")


def test_onnx_graph_has_dynamic_batch_and_time(onnx_export):
    assert onnx_export.path.name == "model.onnx" and onnx_export.path.parent.name == "onnx"
    session = ort.InferenceSession(str(onnx_export.path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "input_values" and out.name == "logits"
    assert isinstance(inp.shape[0], str) and inp.shape[1] == 16 and isinstance(inp.shape[2], str)
    assert isinstance(out.shape[0], str) and out.shape[1] == 3


def test_onnx_matches_pytorch_at_several_lengths(model_dir, onnx_export):
    checks = {(c["batch"], c["frames"]): c["max_abs_diff"] for c in onnx_export.checks}
    assert set(checks) == {(2, 32), (3, 49), (1, 17)}  # training length, longer, shorter
    assert max(checks.values()) <= 1e-4
    # independent check at lengths the export never saw, incl. the shortest accepted input
    model = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    run = load_runner(onnx_export.path, "onnx")
    for batch, frames in ((5, 32), (1, min_export_frames(model.config)), (2, 101)):
        x = torch.randn(batch, 16, frames)
        with torch.no_grad():
            expected = model(x).logits.numpy()
        np.testing.assert_allclose(run(x.numpy()), expected, rtol=0, atol=1e-4)


def test_export_folder_keeps_feature_extractor_and_labels(model_dir, onnx_export):
    folder = onnx_export.path.parent
    assert sorted(onnx_export.copied) == ["config.json", "preprocessor_config.json"]
    extractor = AudioViTFeatureExtractor.from_pretrained(folder)
    labels = json.loads((folder / "config.json").read_text())["id2label"]
    report = json.loads((folder / "export_report.json").read_text())
    assert report["input"]["shape"] == ["batch", 16, "frames"] and report["checks"] == onnx_export.checks
    # the README's onnxruntime example: feature extraction in Python, the graph on log-mel input
    waveform = np.sin(np.linspace(0, 400 * np.pi, 2000)).astype(np.float32)
    x = extractor(waveform, sampling_rate=8000, return_tensors="np")["input_values"]
    logits = ort.InferenceSession(str(onnx_export.path)).run(["logits"], {"input_values": x.astype(np.float32)})[0]
    model = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)
    assert labels[str(int(logits.argmax(-1)[0]))] in {"zero", "one", "two"}


def test_pt2_export_matches_pytorch(model_dir, tmp_path):
    result = export_model_folder(model_dir, "pt2", output=tmp_path / "pt2" / "classifier.pt2")
    assert result.path == tmp_path / "pt2" / "classifier.pt2" and result.max_abs_diff <= 1e-4
    run = load_runner(result.path, "pt2")
    model = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    x = torch.randn(4, 16, 77)
    with torch.no_grad():
        np.testing.assert_allclose(run(x.numpy()), model(x).logits.numpy(), rtol=0, atol=1e-4)
    with pytest.raises(Exception, match=r">= 4"):
        run(torch.randn(1, 16, 3).numpy())  # one patch along time: below the exported range


def test_position_resize_to_same_grid_is_identity():
    """Exported graphs always interpolate the positions; at the training grid that must change nothing."""
    from audio_vit.models.audio_vit.modeling_layers import resize_pos_embed

    pos = torch.randn(1, 12, 8)
    with torch.no_grad():
        resized = resize_pos_embed(pos, (1, 12), (1, 12)).clone()
        forced = torch.nn.functional.interpolate(
            pos.reshape(1, 1, 12, 8).permute(0, 3, 1, 2), size=(1, 12), mode="bilinear", align_corners=False
        ).permute(0, 2, 3, 1).reshape(1, 12, 8)
    torch.testing.assert_close(forced, resized, rtol=0, atol=1e-7)


def test_verify_export_fails_above_tolerance(model_dir, onnx_export):
    model = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        model.classifier[1].bias += 1e-3  # the PyTorch model drifts away from the exported graph
    with pytest.raises(ExportMismatchError, match=r"differs from PyTorch by .* > atol=0.0001"):
        verify_export(model, onnx_export.path, "onnx")
    assert check_lengths(model.config)[0] == (2, model.config.max_length)


def test_export_command(model_dir, tmp_path, capsys):
    from audio_vit.cli import main

    out = tmp_path / "cli_onnx"
    assert main(["export", "--model", str(model_dir), "--format", "onnx", "--output", str(out), "--opset", "18"]) == 0
    printed = capsys.readouterr().out
    assert "max |onnx - torch|" in printed and "<= atol 0.0001: ok" in printed
    assert (out / "model.onnx").is_file() and (out / "preprocessor_config.json").is_file()
    assert main(["export", "--model", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(model_dir), "--format", "tflite"])


def test_export_help_documents_feature_extraction(capsys):
    from audio_vit.cli import main

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Feature extraction stays in Python" in text and "onnxruntime" in text
