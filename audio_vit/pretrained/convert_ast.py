"""Turn a transformers `ASTForAudioClassification` checkpoint (e.g. AudioSet-finetuned AST) into an audio_vit folder.

    audio-vit convert-ast MIT/ast-finetuned-audioset-10-10-0.4593 outputs/ast-audioset
    audio-vit train --model-name-or-path outputs/ast-audioset --ignore-mismatched-labels ...

The mapping is one to one: AST is a ViT over 16x16 patches of a `(num_mel_bins, frames)` kaldi fbank with
frequency/time strides of 10, a CLS and a distillation token with their own position embeddings, pre-norm
blocks with separate q/k/v projections (fused here into one qkv matrix), a final LayerNorm, pooling by the
mean of the CLS and distillation outputs, and a LayerNorm + Linear head. The converted model gives the same
logits (checked during conversion); its feature extractor uses the `"kaldi"` frontend, which reproduces
`ASTFeatureExtractor`'s input transposed to audio_vit's `(num_mel_bins, frames)` layout.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Largest |difference| accepted between AST's and the converted model's logits on the same input.
LOGITS_TOLERANCE = 1e-4
# Largest |difference| accepted between ASTFeatureExtractor's and the kaldi frontend's normalized features
# (both compute in float64; measured 1.2e-7 on the base AST's 128 x 1024 input of the conversion test signal).
FEATURES_TOLERANCE = 1e-5
AST_PREFIX = "audio_spectrogram_transformer."

LAYER_RENAMES = {  # AST layer module -> AudioViTBlock module
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.o_proj": "attention.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


@dataclass
class ConversionReport:
    """What `convert_ast_checkpoint` wrote and how closely it reproduces the source."""

    output_dir: str
    num_labels: int
    num_parameters: int
    max_logits_diff: float
    max_features_diff: float

    def format(self) -> str:
        return (
            f"wrote {self.output_dir}: {self.num_parameters / 1e6:.1f} M parameters, {self.num_labels} labels; "
            f"max |logits diff| vs AST {self.max_logits_diff:.2e} (<= {LOGITS_TOLERANCE:g}), max |features diff| "
            f"vs ASTFeatureExtractor {self.max_features_diff:.2e} (<= {FEATURES_TOLERANCE:g})"
        )


def ast_config_to_audio_vit(ast_config):
    """`ASTConfig` -> the `AudioViTConfig` of the same network (labels included)."""
    from ..models.audio_vit.configuration_audio_vit import AudioViTConfig

    if ast_config.model_type != "audio-spectrogram-transformer":
        raise ValueError(f"config model_type={ast_config.model_type!r}; expected an AST ('audio-spectrogram-transformer')")
    return AudioViTConfig(
        num_mel_bins=ast_config.num_mel_bins,
        max_length=ast_config.max_length,
        patch_size=ast_config.patch_size,
        frequency_stride=ast_config.frequency_stride,
        time_stride=ast_config.time_stride,
        hidden_size=ast_config.hidden_size,
        num_hidden_layers=ast_config.num_hidden_layers,
        num_attention_heads=ast_config.num_attention_heads,
        intermediate_size=ast_config.intermediate_size,
        hidden_act=ast_config.hidden_act,
        hidden_dropout_prob=ast_config.hidden_dropout_prob,
        attention_probs_dropout_prob=ast_config.attention_probs_dropout_prob,
        layer_norm_eps=ast_config.layer_norm_eps,
        qkv_bias=ast_config.qkv_bias,
        initializer_range=ast_config.initializer_range,
        distillation_token=True,
        pooling="cls_distillation",
        classifier_layernorm=True,
        id2label={int(k): v for k, v in ast_config.id2label.items()},
        label2id=dict(ast_config.label2id),
        problem_type=ast_config.problem_type,
    )


def convert_ast_state_dict(ast_state: dict[str, torch.Tensor], num_hidden_layers: int) -> dict[str, torch.Tensor]:
    """`ASTForAudioClassification.state_dict()` -> `AudioViTForAudioClassification` state dict (q/k/v fused)."""
    state = {k[len(AST_PREFIX):] if k.startswith(AST_PREFIX) else k: v for k, v in ast_state.items()}
    out = {
        "audio_vit.embeddings.cls_token": state.pop("embeddings.cls_token"),
        "audio_vit.embeddings.dist_token": state.pop("embeddings.distillation_token"),
        "audio_vit.embeddings.position_embeddings": state.pop("embeddings.position_embeddings"),
        "classifier.0.weight": state.pop("classifier.layernorm.weight"),
        "classifier.0.bias": state.pop("classifier.layernorm.bias"),
        "classifier.2.weight": state.pop("classifier.dense.weight"),
        "classifier.2.bias": state.pop("classifier.dense.bias"),
    }
    for name in ("weight", "bias"):
        out[f"audio_vit.embeddings.patch_embeddings.projection.{name}"] = state.pop(
            f"embeddings.patch_embeddings.projection.{name}")
        out[f"audio_vit.layernorm.{name}"] = state.pop(f"layernorm.{name}")
    for i in range(num_hidden_layers):
        source, target = f"layers.{i}.", f"audio_vit.layers.{i}."
        for name in ("weight", "bias"):
            parts = [state.pop(f"{source}attention.{p}_proj.{name}", None) for p in "qkv"]
            if all(p is not None for p in parts):
                out[f"{target}attention.qkv.{name}"] = torch.cat(parts, dim=0)  # (3 * D, ...) in q, k, v order
            elif any(p is not None for p in parts):
                raise ValueError(f"layer {i} has only some of the q/k/v {name}s; the AST checkpoint is incomplete")
            for old, new in LAYER_RENAMES.items():
                out[f"{target}{new}.{name}"] = state.pop(f"{source}{old}.{name}")
    if state:
        raise ValueError(f"AST weights not mapped to audio_vit: {sorted(state)[:8]}; is this an ASTForAudioClassification?")
    return out


def ast_feature_extractor(ast_extractor=None):
    """`ASTFeatureExtractor` (or its defaults) -> an `AudioViTFeatureExtractor` computing the same input.

    AST normalizes with `(x - mean) / (2 * std)`; audio_vit with `(x - mean) / std`, so `std` is doubled.
    """
    from transformers import ASTFeatureExtractor

    from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor

    source = ast_extractor if ast_extractor is not None else ASTFeatureExtractor()
    return AudioViTFeatureExtractor(
        frontend="kaldi",
        sampling_rate=source.sampling_rate,
        num_mel_bins=source.num_mel_bins,
        max_length=source.max_length,
        n_fft=512,  # kaldi rounds the 400-sample (25 ms) frame up to a power of two
        win_length=400,
        hop_length=160,  # 10 ms
        f_min=20.0,  # kaldi's default low frequency
        top_db=None,
        do_normalize=source.do_normalize,
        mean=float(source.mean),
        std=2.0 * float(source.std),
    )


def _test_signal(sampling_rate: int, seconds: float = 3.0) -> np.ndarray:
    """A deterministic chirp plus noise: energy in every mel band, reproducible without any file."""
    t = np.arange(int(sampling_rate * seconds)) / sampling_rate
    chirp = 0.3 * np.sin(2 * np.pi * (100 + (sampling_rate / 2 - 200) * t / (2 * seconds)) * t)
    return (chirp + 0.05 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def compare_features(ast_extractor, extractor) -> float:
    """Max |ASTFeatureExtractor - kaldi frontend| on a test signal, in normalized units (layouts aligned)."""
    signal = _test_signal(ast_extractor.sampling_rate)
    reference = ast_extractor(signal, sampling_rate=ast_extractor.sampling_rate, return_tensors="np")["input_values"][0]
    ours = extractor(signal, sampling_rate=extractor.sampling_rate, return_tensors="np")["input_values"][0]
    return float(np.abs(reference.T - ours).max())  # AST is (frames, mel bins)


@torch.no_grad()
def compare_logits(ast_model, model, input_values: torch.Tensor) -> float:
    """Max |AST logits - audio_vit logits| for `input_values` `(B, num_mel_bins, frames)`."""
    reference = ast_model(input_values=input_values.transpose(1, 2)).logits  # AST reads (B, frames, mel bins)
    return float((reference - model(input_values=input_values).logits).abs().max())


def convert_ast_checkpoint(source: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False) -> ConversionReport:
    """Convert an `ASTForAudioClassification` folder (or Hub repo id) into an audio_vit model folder.

    Args:
        source (`str` or `os.PathLike`): folder with an AST `config.json` + weights (and usually
            `preprocessor_config.json`; AST's defaults are used without it), or a Hub repo id.
        output_dir (`str` or `os.PathLike`): folder to write (config.json, model.safetensors, preprocessor_config.json).
        overwrite (`bool`, defaults to `False`): write into a folder that already holds a model.

    Raises `ValueError` when the source is not an AST classifier or the converted model's logits differ from
    AST's by more than `LOGITS_TOLERANCE` (or the features by more than `FEATURES_TOLERANCE`).
    """
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    from ..models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification

    output_dir = Path(output_dir)
    if (output_dir / "config.json").exists() and not overwrite:
        raise ValueError(f"{output_dir} already holds a model (config.json); pass overwrite=True / --overwrite")
    _check_source(source)
    ast_model = ASTForAudioClassification.from_pretrained(source).eval()
    has_preprocessor = Path(source, "preprocessor_config.json").is_file() or not Path(source).is_dir()
    with warnings.catch_warnings():  # AST's own 128-band filterbank has empty low bands; nothing to act on
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        ast_extractor = ASTFeatureExtractor.from_pretrained(source) if has_preprocessor else ASTFeatureExtractor()
    if ast_extractor.num_mel_bins != ast_model.config.num_mel_bins:
        raise ValueError(
            f"{source}: preprocessor_config.json has num_mel_bins={ast_extractor.num_mel_bins} but config.json "
            f"{ast_model.config.num_mel_bins}"
        )

    config = ast_config_to_audio_vit(ast_model.config)
    model = AudioViTForAudioClassification(config).eval()
    model.load_state_dict(convert_ast_state_dict(ast_model.state_dict(), config.num_hidden_layers), strict=True)
    extractor = ast_feature_extractor(ast_extractor)

    features_diff = compare_features(ast_extractor, extractor)
    signal = _test_signal(extractor.sampling_rate)
    inputs = extractor(signal, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]
    logits_diff = compare_logits(ast_model, model, inputs)
    if logits_diff > LOGITS_TOLERANCE or features_diff > FEATURES_TOLERANCE:
        raise ValueError(
            f"converting {source} does not reproduce AST: max |logits diff| {logits_diff:.3g} (allowed "
            f"{LOGITS_TOLERANCE:g}), max |features diff| {features_diff:.3g} (allowed {FEATURES_TOLERANCE:g})"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    extractor.save_pretrained(output_dir)
    report = ConversionReport(
        output_dir=str(output_dir), num_labels=config.num_labels,
        num_parameters=sum(p.numel() for p in model.parameters()),
        max_logits_diff=logits_diff, max_features_diff=features_diff,
    )
    (output_dir / "conversion.json").write_text(
        json.dumps({"source": str(source), **vars(report)}, indent=2) + "\n", encoding="utf-8")
    return report


def _check_source(source) -> None:
    path = Path(source)
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{path} has no config.json; expected an ASTForAudioClassification folder")
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
        if model_type != "audio-spectrogram-transformer":
            raise ValueError(
                f"{config_file} has model_type={model_type!r}; expected 'audio-spectrogram-transformer' (an AST)"
            )
    elif path.exists():
        raise ValueError(f"{path} is a file; expected an AST model folder or a Hub repo id")


__all__ = [
    "ConversionReport",
    "ast_config_to_audio_vit",
    "ast_feature_extractor",
    "compare_features",
    "compare_logits",
    "convert_ast_checkpoint",
    "convert_ast_state_dict",
]
