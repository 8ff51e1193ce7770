"""build_datasets on FSDD: cached float16 spectrograms, cache reuse/invalidation, train-only statistics,
the collator, `audio-vit prepare` output and load_prepared, num_proc > 1."""
import json

import datasets
import numpy as np
import pytest
import torch

import audio_vit.data.preprocess as preprocess
from audio_vit import AudioViTFeatureExtractor
from audio_vit.data.augmentation import AugmentationConfig, SpectrogramAugmenter
from audio_vit.commands import prepare
from audio_vit.data import DataArguments, DataError, SpectrogramCollator, build_datasets, column_values, load_prepared
from audio_vit.data.preprocess import dataset_statistics


def small_fe(**overrides):
    return AudioViTFeatureExtractor(**{"num_mel_bins": 16, "max_length": 32, **overrides})


@pytest.fixture
def fsdd_args(fsdd_dir, tmp_path):
    return DataArguments(data_dir=str(fsdd_dir), max_clips=20, cache_dir=str(tmp_path / "cache"))


class DecodeCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = preprocess.decode_audio

        def counting(source):
            self.calls += 1
            return original(source)

        monkeypatch.setattr(preprocess, "decode_audio", counting)


def test_fsdd_spectrograms_stats_and_collator(fsdd_args):
    fe = small_fe()
    prepared = build_datasets(fsdd_args, fe)
    assert prepared.num_labels == 10 and prepared.id2label[3] == "3"
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 20, "validation": 20, "test": 20}
    train = prepared.splits["train"]
    assert train.features["input_values"] == datasets.Array2D((16, 32), "float16")
    values = train[0]["input_values"]
    assert values.shape == (16, 32) and values.min() < -20  # raw dB, not normalized
    # raw dB equal the feature extractor's own output (to float16 precision)
    from audio_vit.data.audio_decoding import load_audio

    waveform, _ = load_audio(str(fsdd_args.data_dir) + "/" + train[0]["file"], sampling_rate=16000)
    expected = fe(waveform, sampling_rate=16000, do_normalize=False, return_tensors="np")["input_values"][0]
    np.testing.assert_allclose(values, expected, atol=0.06)

    # mean/std were computed on train only (valid frames) and returned in a copy of the feature extractor
    assert (fe.mean, fe.std) == (0.0, 1.0)  # the caller's extractor is left as it was
    fitted = prepared.feature_extractor
    assert fitted is not fe and fitted.to_dict() | {"mean": 0.0, "std": 1.0} == fe.to_dict()
    assert (fitted.mean, fitted.std) == pytest.approx(dataset_statistics(train))
    assert (fitted.mean, fitted.std) != pytest.approx(dataset_statistics(prepared.splits["test"]))
    assert fitted.do_normalize and prepared.report.normalization["mean"] == fitted.mean
    fe = fitted

    batch = SpectrogramCollator(fe)([train[i] for i in range(8)])
    assert batch["input_values"].shape == (8, 16, 32) and batch["input_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.long and batch["labels"].shape == (8,)
    whole = SpectrogramCollator(fe)([train[i] for i in range(len(train))])["input_values"]
    assert abs(float(whole.mean())) < 0.5  # normalized (padding frames pull it a little below 0)
    mixed = SpectrogramCollator(fe, SpectrogramAugmenter(AugmentationConfig(mixup_alpha=0.4, seed=0), num_labels=10))
    soft = mixed([train[i] for i in range(8)])["labels"]
    assert soft.shape == (8, 10) and torch.allclose(soft.sum(1), torch.ones(8))


def test_cache_is_reused_and_invalidated_by_feature_parameters(fsdd_args, monkeypatch):
    first = build_datasets(fsdd_args, small_fe())
    cache_file = first.splits["train"].cache_files[0]["filename"]
    counter = DecodeCounter(monkeypatch)
    second = build_datasets(fsdd_args, small_fe())
    assert counter.calls == 0  # nothing decoded: the map loaded its cache file
    assert second.splits["train"].cache_files[0]["filename"] == cache_file
    np.testing.assert_array_equal(second.splits["train"][:5]["input_values"], first.splits["train"][:5]["input_values"])
    # mean/std are not part of the fingerprint (raw dB are stored) ...
    build_datasets(fsdd_args, small_fe(mean=-10.0, std=3.0))
    assert counter.calls == 0
    # ... but every spectrogram parameter is
    changed = build_datasets(fsdd_args, small_fe(hop_length=200))
    assert counter.calls == 60
    assert changed.splits["train"].cache_files[0]["filename"] != cache_file


def test_prepare_cli_writes_a_loadable_folder(fsdd_dir, tmp_path, capsys):
    out = tmp_path / "prepared"
    # The plain defaults: the prepare machinery here; tests/test_auto_recipe.py checks what --recipe auto derives.
    argv = ["--recipe", "none", "--data-dir", str(fsdd_dir), "--output-dir", str(out), "--max-clips", "30",
            "--num-mel-bins", "16", "--max-length", "32", "--cache-dir", str(tmp_path / "cache"),
            "--validation-fraction", "0.1"]
    assert prepare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "validation" in printed and "skipped: 0" in printed
    for name in ("dataset_dict.json", "preprocessor_config.json", "summary.json", "train", "test"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_clips"] == {"train": 30, "validation": 30, "test": 30}
    assert summary["num_labels"] == 10 and summary["sampling_rates"] == {"8000": 90}
    assert summary["durations"]["train"]["min"] > 0.1
    config = json.loads((out / "preprocessor_config.json").read_text())
    assert config["mean"] == pytest.approx(summary["normalization"]["mean"]) and config["num_mel_bins"] == 16

    loaded = load_prepared(out)
    assert loaded.id2label == {i: str(i) for i in range(10)}
    assert loaded.feature_extractor.mean == pytest.approx(config["mean"])
    assert loaded.splits["train"][0]["input_values"].shape == (16, 32)
    assert loaded.report.to_dict()["num_clips"] == summary["num_clips"]
    with pytest.raises(DataError, match="other feature parameters.*hop_length"):
        load_prepared(out, feature_extractor=small_fe(hop_length=200))
    assert load_prepared(out, feature_extractor=small_fe(mean=-3.0)).feature_extractor.mean == -3.0
    assert prepare.main(argv) == 0  # the same inputs again: up to date, nothing rewritten
    assert "is up to date" in capsys.readouterr().out
    assert prepare.main([*argv, "--top-db", "60"]) == 1  # other inputs: refuses to overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    (out / "validation" / "stale.arrow").write_bytes(b"old")
    argv[argv.index("--max-clips") + 1] = "10"
    assert prepare.main([*argv, "--overwrite", "--validation-fraction", "0"]) == 0
    assert not (out / "validation").exists()  # the new data has no validation split
    assert json.loads((out / "summary.json").read_text())["num_clips"] == {"train": 10, "test": 10}
    assert load_prepared(out).splits.keys() == {"train", "test"}


def test_num_proc_two_matches_one(fsdd_dir, tmp_path):
    args = dict(data_dir=str(fsdd_dir), max_clips=12, validation_fraction=0.0, split_strategy="random")
    one = build_datasets(DataArguments(cache_dir=str(tmp_path / "a"), **args), small_fe())
    two = build_datasets(DataArguments(cache_dir=str(tmp_path / "b"), num_proc=2, **args), small_fe())
    assert column_values(one.splits["test"], "file") == column_values(two.splits["test"], "file")
    np.testing.assert_array_equal(one.splits["test"][:]["input_values"], two.splits["test"][:]["input_values"])
    assert len(two.splits["train"].cache_files) >= 1
