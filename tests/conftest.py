"""Shared fixtures: the real FSDD clips beside the checkout and tiny model configurations."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_fsdd_dir() -> Path | None:
    """FSDD from $FSDD_DIR, $AUDIO_VIT_DATA_DIR/fsdd, or ../shared/data/fsdd beside the checkout."""
    candidates = []
    if os.environ.get("FSDD_DIR"):
        candidates.append(Path(os.environ["FSDD_DIR"]))
    if os.environ.get("AUDIO_VIT_DATA_DIR"):
        candidates.append(Path(os.environ["AUDIO_VIT_DATA_DIR"]) / "fsdd")
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "fsdd")
    for path in candidates:
        if (path / "metadata.csv").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    path = find_fsdd_dir()
    if path is None:
        pytest.fail("FSDD not found: set FSDD_DIR or place it at ../shared/data/fsdd beside the checkout")
    return path


@pytest.fixture(scope="session")
def fsdd_clips(fsdd_dir) -> list[Path]:
    """Eight real clips, one per speaker/digit mix, in a fixed order."""
    names = ["0_george_0", "1_jackson_5", "2_lucas_10", "3_nicolas_20", "4_theo_30", "5_yweweler_40", "6_george_3", "9_jackson_49"]
    return [fsdd_dir / "recordings" / f"{name}.flac" for name in names]


def tiny_config_kwargs(**overrides) -> dict:
    """The tiny model every test uses: 16 mel bins, hidden 32, 2 layers (STYLE.md)."""
    kwargs = dict(
        num_mel_bins=16,
        max_length=32,
        patch_size=(16, 2),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label={0: "zero", 1: "one", 2: "two"},
        label2id={"zero": 0, "one": 1, "two": 2},
    )
    kwargs.update(overrides)
    return kwargs
