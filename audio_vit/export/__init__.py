"""Exporting a trained model to ONNX or a `torch.export` program, checked against PyTorch (`exporters`), and the
command line's defaults (`options`).

    from audio_vit.export import export_model_folder
"""
from .._imports import lazy_attributes

_LAZY_ATTRIBUTES = dict.fromkeys(
    ["ExportMismatchError", "ExportResult", "LogitsOnly", "check_lengths", "export_model_folder", "export_onnx",
     "export_pt2", "load_runner", "min_export_frames", "verify_export"], ".exporters")
_LAZY_ATTRIBUTES.update(dict.fromkeys(["DEFAULT_ATOL", "DEFAULT_OPSET", "EXPORT_FILENAMES", "FORMATS"], ".options"))

__all__ = sorted(_LAZY_ATTRIBUTES)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)
