"""Metric modules shipped with audio_vit, so `evaluate` works offline.

Each metric is an `evaluate` loading script at `audio_vit/metrics/<name>/<name>.py` (the logic of the
`evaluate-metric/<name>` hub script); `load_metric(name)` loads it by path, never from the Hub.
"""
from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE_METRICS = tuple(sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file()))


def metric_path(name: str) -> str:
    """Directory of the shipped metric `name`, for `evaluate.load(metric_path(name))`."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"metric {name!r} is not shipped with audio_vit; available: {list(AVAILABLE_METRICS)}")
    return str(METRICS_DIR / name)


def load_metric(name: str, **kwargs):
    """`evaluate.load` of a shipped metric by path (works offline). kwargs go to `evaluate.load`."""
    import evaluate

    return evaluate.load(metric_path(name), **kwargs)
