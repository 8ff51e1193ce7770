"""Formats and defaults of `audio-vit export`, in a module without torch so `--help` lists them at once."""
from __future__ import annotations

FORMATS = ("onnx", "pt2")
DEFAULT_OPSET = 18  # the dynamo exporter's native opset
DEFAULT_ATOL = 1e-4
EXPORT_FILENAMES = {"onnx": "model.onnx", "pt2": "model.pt2"}

__all__ = ["DEFAULT_ATOL", "DEFAULT_OPSET", "EXPORT_FILENAMES", "FORMATS"]
