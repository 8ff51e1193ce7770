"""Defaults and limits of `audio-vit serve` and `audio_vit.serving.app.build_demo`, in a module without torch so
`--help` is instant."""
from __future__ import annotations

SERVE_MAX_BATCH_SIZE = 64  # windows per forward pass, gathered from concurrent requests
SERVE_CONCURRENCY = 8  # requests decoded and classified at once
SERVE_MAX_QUEUE = 64  # requests waiting for one of those slots at most; more are answered "busy, retry" at once
SERVE_MAX_QUEUED_AUDIO_S = 2 * 3600.0  # audio held at once (running and waiting); more: "busy, retry"
SERVE_KEPT_DOWNLOADS = 32  # the page's CSV downloads kept on disk (the latest)
SERVE_MAX_DURATION_S = 12 * 3600.0  # longer recordings are refused (a 10-hour recording passes)
SERVE_MAX_UPLOAD_MB = 2048  # larger uploads are refused by gradio's upload route

__all__ = ["SERVE_CONCURRENCY", "SERVE_KEPT_DOWNLOADS", "SERVE_MAX_BATCH_SIZE", "SERVE_MAX_DURATION_S", "SERVE_MAX_QUEUE",
           "SERVE_MAX_QUEUED_AUDIO_S", "SERVE_MAX_UPLOAD_MB"]
