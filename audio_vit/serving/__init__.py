"""Serving a model folder: the gradio page and `/classify` API (`app`: `build_demo`, `audio-vit serve`), the
batcher that shares one forward pass among concurrent requests and the admission limits (`batching`), the
page's spectrogram picture (`spectrogram_overview`), and the server's defaults and limits (`options`).

    from audio_vit.serving.app import build_demo
    build_demo("user/model").launch()
"""
from .._imports import lazy_attributes

# The names the module `audio_vit.serving` had before it became this package.
_LAZY_ATTRIBUTES = dict.fromkeys(["RequestAdmission", "ServerBusyError", "WindowBatcher"], ".batching")

__all__ = sorted(_LAZY_ATTRIBUTES)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)
