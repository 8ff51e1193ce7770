"""Choices and defaults of `audio-vit predict` (and the page's aggregation), in a module without torch so `--help` is
instant. The server's limits are in `audio_vit.serving.options`."""
from __future__ import annotations

AGGREGATIONS = ("mean", "max")  # how window scores combine into a recording's score

__all__ = ["AGGREGATIONS"]
