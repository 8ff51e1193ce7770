"""benchmarks/instrument_families.py without FluidSynth: the note events it plays and the folds of its sources.

(Rendering needs Debian's FluidSynth and SoundFonts, which CI does not install; the benchmark checks every
written file by reading it back.)"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from audio_vit.comparison.folds import make_folds
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import instrument_families as families  # noqa: E402


@pytest.mark.parametrize("family", sorted(families.FAMILIES))
def test_phrases_stay_in_range_and_in_the_clip(family):
    _, (low, high), _ = families.FAMILIES[family]
    rng = np.random.default_rng(0)
    for _ in range(50):
        seconds = families.log_uniform(1.0, 10.0, rng)
        events = families.phrase(family, seconds, rng)
        assert events, f"{family}: a {seconds:.2f} s clip plays no note"
        assert events == sorted(events, key=lambda event: (event[0], event[1] == "on"))
        assert all(0.0 <= time <= seconds for time, *_ in events)
        assert all(low <= note <= high and kind in ("on", "off") for _, kind, note, _ in events)
        ons = sum(kind == "on" for _, kind, *_ in events)
        assert ons == len(events) - ons, "every note is released"


def test_folds_are_stratified_and_never_share_an_instrument():
    rng = np.random.default_rng(0)
    labels, groups = [], []
    for family, (programs, _, _) in families.FAMILIES.items():
        sources = [f"{font}:{program}" for font in families.SOUNDFONTS for program in programs]
        picks = rng.permutation(len(sources))
        labels += [family] * 30
        groups += [sources[picks[i % len(picks)]] for i in range(30)]
    folds = [int(fold) for fold in make_folds(labels, families.NUM_FOLDS, groups, seed=0)]
    fold_of = {}
    for group, fold in zip(groups, folds):
        assert fold_of.setdefault(group, fold) == fold, f"{group} is in folds {fold_of[group]} and {fold}"
    for family in families.FAMILIES:
        counts = np.bincount([fold for label, fold in zip(labels, folds) if label == family], minlength=6)[1:]
        assert counts.min() >= 4 and counts.max() <= 8, f"{family}: clips per fold {counts.tolist()}"


@pytest.mark.parametrize("family", sorted(families.FAMILIES))
def test_messy_clips_of_every_length_play_in_the_clip(family):
    """--messy: single short notes of 0.2-1 s and long performances up to 40 s, every note inside its clip."""
    _, (low, high), _ = families.FAMILIES[family]
    rng = np.random.default_rng(1)
    lengths = [families.clip_seconds(True, rng) for _ in range(300)]
    assert 0.2 <= min(lengths) < 0.5 and 20.0 < max(lengths) <= 40.0
    for seconds in lengths[:60]:
        events = families.phrase(family, seconds, rng)
        assert events and all(0.0 <= time <= seconds for time, *_ in events)
        assert all(low <= note <= high for _, _, note, _ in events)


def test_messy_class_sizes_are_ten_to_one_and_formats_mixed():
    rng = np.random.default_rng(0)
    sizes = families.class_sizes(30, True, rng)
    assert set(sizes) == set(families.FAMILIES) and max(sizes.values()) == 200 and min(sizes.values()) == 20
    assert sum(sizes.values()) == 818
    assert families.class_sizes(30, False, rng) == {family: 30 for family in families.FAMILIES}
    formats = {families.file_format(True, rng)[1] for _ in range(200)}
    assert formats == {"PCM_16", "PCM_U8", "ALAW"} and families.file_format(False, rng) == ("WAV", "PCM_16", "wav")
