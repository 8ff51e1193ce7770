"""Export a trained audio classifier to ONNX or a `torch.export` program (`.pt2`), checked against PyTorch.

What is exported: the model only, `input_values (batch, num_mel_bins, frames) -> logits (batch, num_labels)`,
with dynamic batch and time axes. Feature extraction stays in Python (`AudioViTFeatureExtractor`: resampling,
STFT, mel, dB, normalization): the exported graph takes the *normalized log-mel* input, so the export folder
keeps `preprocessor_config.json` (and `config.json`, for the labels) next to the exported file.

Each export is run on random inputs at the training length and at other lengths and batch sizes, and the
largest absolute difference from the PyTorch logits is reported; above `atol` (default 1e-4) it fails.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .options import DEFAULT_ATOL, DEFAULT_OPSET, EXPORT_FILENAMES, FORMATS  # noqa: F401  (re-exported)
from ..model_folder import CONFIG_NAME, PREPROCESSOR_NAME

# Files copied next to the exported model: the feature extractor makes its input, the config names its outputs.
SIDECAR_FILES = (PREPROCESSOR_NAME, CONFIG_NAME)


class ExportMismatchError(RuntimeError):
    """The exported model's logits differ from PyTorch's by more than the tolerance."""


class LogitsOnly(nn.Module):
    """`input_values -> logits` as a plain tensor function (exporters want tensors in and out, no dicts)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values, return_dict=True).logits  # (B, num_labels)


def min_export_frames(config) -> int:
    """Fewest frames the exported graph accepts: two patches along time.

    With one patch the time grid is 1, a size torch.export always specialises (0/1 specialisation), so the
    dynamic range starts at two patches: `patch_width + time_stride` frames.
    """
    return int(config.patch_size[1]) + int(config.time_stride)


def example_input(config, batch: int = 2, frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """Random normalized log-mel input `(batch, num_mel_bins, frames)`; frames default to `config.max_length`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, config.num_mel_bins, frames or config.max_length, generator=generator)


def check_lengths(config) -> list[tuple[int, int]]:
    """(batch, frames) cases the exports are checked at: training length, a longer and a shorter clip."""
    low = min_export_frames(config)
    longer = config.max_length + config.max_length // 2 + 1
    shorter = max(low, config.max_length // 2 + 1)
    return [(2, config.max_length), (3, longer), (1, shorter)]


def _dynamic_shapes(config, strict_range: bool = True):
    """Dynamic batch and frames. torch.export's guard solver cannot prove one guard the time grid adds
    (`1 % (frames // stride) != 0`, i.e. at least two patches) for a named `Dim` range, so the `.pt2` export
    lets it derive the range itself (`Dim.DYNAMIC`); it comes out as `frames >= min_export_frames`."""
    batch = torch.export.Dim("batch", min=1)
    if strict_range:
        frames = torch.export.Dim("frames", min=min_export_frames(config))
    else:
        frames = torch.export.Dim.DYNAMIC
    return {"input_values": {0: batch, 2: frames}}


def _prepare(model: nn.Module) -> LogitsOnly:
    model = model.eval().float()
    return LogitsOnly(model).eval()


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Export `model` to ONNX at `path` with the dynamo exporter; input `input_values` (batch, mel, frames)
    with dynamic `batch` and `frames`, output `logits` (batch, num_labels). Raises if an axis came out fixed."""
    import onnx

    config = model.config
    wrapper = _prepare(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_bytes = sum(p.numel() * p.element_size() for p in wrapper.parameters())
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (example_input(config),),
            str(path),
            input_names=["input_values"],
            output_names=["logits"],
            dynamic_shapes=_dynamic_shapes(config),
            opset_version=opset,
            dynamo=True,
            external_data=n_bytes > 1_500_000_000,  # ONNX protobufs stop at 2 GB
            verbose=False,
        )
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    fixed = [axis for axis in (0, 2) if not dims[axis].dim_param]
    if fixed:
        raise RuntimeError(
            f"ONNX export fixed axis {fixed} of input_values to {[dims[a].dim_value for a in fixed]}; "
            "a shape-dependent branch in the model specialised it (see resize_pos_embed in modeling_layers)"
        )
    return path


def export_pt2(model: nn.Module, path: str | os.PathLike) -> Path:
    """Export `model` with `torch.export` (dynamic batch and frames) and save the program to `path` (.pt2)."""
    config = model.config
    wrapper = _prepare(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = torch.export.export(
            wrapper, (example_input(config),), dynamic_shapes=_dynamic_shapes(config, strict_range=False), strict=False
        )
    torch.export.save(program, str(path))
    return path


def load_runner(path: str | os.PathLike, fmt: str):
    """A function `numpy (B, mel, T) float32 -> numpy logits` running the exported file."""
    import numpy as np

    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run(["logits"], {"input_values": np.ascontiguousarray(x, dtype=np.float32)})[0]
    if fmt == "pt2":
        module = torch.export.load(str(path)).module()

        def run(x):
            with torch.no_grad():
                return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

        return run
    raise ValueError(f"format={fmt!r} is not supported; use one of {FORMATS}")


def verify_export(
    model: nn.Module, path: str | os.PathLike, fmt: str, cases: list[tuple[int, int]] | None = None,
    atol: float = DEFAULT_ATOL,
) -> list[dict]:
    """Max abs difference between PyTorch and the exported logits for each (batch, frames) case.

    Returns `[{"batch", "frames", "max_abs_diff"}]`; raises `ExportMismatchError` naming the case above `atol`.
    """
    import numpy as np

    wrapper = _prepare(model)
    run = load_runner(path, fmt)
    report = []
    for index, (batch, frames) in enumerate(cases or check_lengths(model.config)):
        x = example_input(model.config, batch=batch, frames=frames, seed=1000 + index)
        with torch.no_grad():
            expected = wrapper(x).numpy()
        got = run(x.numpy())
        if got.shape != expected.shape:
            raise ExportMismatchError(f"{fmt} output has shape {got.shape} for input {tuple(x.shape)}; expected {expected.shape}")
        report.append({"batch": batch, "frames": frames, "max_abs_diff": float(np.abs(got - expected).max())})
    worst = max(report, key=lambda r: r["max_abs_diff"])
    if not worst["max_abs_diff"] <= atol:
        raise ExportMismatchError(
            f"{fmt} export of {path} differs from PyTorch by {worst['max_abs_diff']:.3g} > atol={atol:g} "
            f"at batch={worst['batch']}, frames={worst['frames']}"
        )
    return report


@dataclass
class ExportResult:
    path: Path
    format: str
    checks: list[dict] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max(check["max_abs_diff"] for check in self.checks)


def export_model_folder(
    model_dir: str | os.PathLike,
    fmt: str = "onnx",
    output: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    atol: float = DEFAULT_ATOL,
    cases: list[tuple[int, int]] | None = None,
) -> ExportResult:
    """Load a model folder (checked, safetensors only), export it, copy the sidecar files, verify it.

    `output` is the exported file (e.g. `out/model.onnx`) or a folder to put `model.onnx` / `model.pt2` in;
    default `<model_dir>/<fmt>/`. `preprocessor_config.json` and `config.json` are copied next to it and
    `export_report.json` records the checks.
    """
    from ..model_folder import load_model

    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not supported; use one of {FORMATS}")
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    if output is None:
        target = model_dir / fmt / EXPORT_FILENAMES[fmt]
    else:
        output = Path(output)
        target = output if output.suffix else output / EXPORT_FILENAMES[fmt]
    if fmt == "onnx":
        export_onnx(model, target, opset=opset)
    else:
        export_pt2(model, target)
    copied = []
    for name in SIDECAR_FILES:
        source = model_dir / name
        if source.is_file() and source.resolve() != (target.parent / name).resolve():
            shutil.copyfile(source, target.parent / name)
            copied.append(name)
    checks = verify_export(model, target, fmt, cases=cases, atol=atol)
    result = ExportResult(path=target, format=fmt, checks=checks, copied=copied)
    report = {"format": fmt, "file": target.name, "opset": opset if fmt == "onnx" else None, "atol": atol,
              "input": {"name": "input_values", "shape": ["batch", model.config.num_mel_bins, "frames"],
                        "min_frames": min_export_frames(model.config)},
              "output": {"name": "logits", "shape": ["batch", model.config.num_labels]}, "checks": checks}
    (target.parent / "export_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return result


__all__ = [
    "ExportMismatchError",
    "ExportResult",
    "FORMATS",
    "LogitsOnly",
    "check_lengths",
    "export_model_folder",
    "export_onnx",
    "export_pt2",
    "load_runner",
    "min_export_frames",
    "verify_export",
]
