"""Choices of `audio-vit predict`, in a module without torch so `--help` lists them at once."""
from __future__ import annotations

AGGREGATIONS = ("mean", "max")  # how window scores combine into a recording's score

__all__ = ["AGGREGATIONS"]
