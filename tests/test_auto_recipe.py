"""Data-derived defaults: the profile of synthetic datasets of different lengths and rates, and what it sets."""
import math

import numpy as np
import pytest
import soundfile as sf

from audio_vit.data.profile import DataProfile, profile_sources
from audio_vit.data.feature_recipe import apply_defaults, cached_windows
from audio_vit.training.auto_recipe import derive_defaults


def _write_clips(folder, specs):
    """specs: (rate, seconds, label) per clip; returns (paths, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i, (rate, seconds, label) in enumerate(specs):
        path = folder / f"clip{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32), rate)
        paths.append(str(path))
        labels.append(label)
    return paths, labels


def test_short_low_rate_speech_like_data(tmp_path):
    paths, labels = _write_clips(tmp_path, [(8000, 0.3 + 0.05 * (i % 10), str(i % 3)) for i in range(30)])
    profile = profile_sources(paths, labels)
    assert profile.sampling_rates == {8000: 30}
    assert profile.num_clips == 30 and profile.num_classes == 3
    derived = derive_defaults(profile)
    assert derived["sampling_rate"] == 8000  # never upsampled
    assert derived["hop_length"] == 80  # 10 ms
    assert derived["max_length"] == 1 + 8000 // 80  # the 1 s minimum window covers every clip
    assert derived["mixup_alpha"] == 0.0  # short speech-like clips: no mixup
    assert derived["stem"] == "conv" and derived["lr_scheduler"] == "plateau"


def test_long_high_rate_clips_get_capped_rate_and_longer_window(tmp_path):
    specs = [(44100, 5.0, "a"), (48000, 5.0, "b"), (44100, 4.0, "a"), (22050, 5.0, "b")] * 3
    paths, labels = _write_clips(tmp_path, specs)
    profile = profile_sources(paths, labels)
    derived = derive_defaults(profile)
    assert derived["sampling_rate"] == 16000  # capped for cost
    assert derived["hop_length"] == 320  # 20 ms for a 5 s window
    assert derived["max_length"] == 1 + 5 * 16000 // 320
    assert derived["mixup_alpha"] > 0


def test_window_is_capped_for_very_long_recordings(tmp_path):
    paths, labels = _write_clips(tmp_path, [(16000, 30.0, "x"), (16000, 25.0, "y")] * 2)
    derived = derive_defaults(profile_sources(paths, labels))
    assert derived["max_length"] == 1 + 10 * 16000 // derived["hop_length"]


def test_wide_duration_spread_gets_a_window_between_the_typical_clip_and_the_long_tail():
    """Fragments and long recordings in one folder (median 2.7 s, p90 11.3 s, up to 39 s): a 5.5 s window at a
    20 ms hop instead of a 10 s one at 40 ms, and storage for the longest clip so it is judged whole."""
    profile = DataProfile(num_clips=777, class_counts={str(i): 78 for i in range(10)}, sampling_rates={16000: 777},
                          duration_percentiles={"p10": 0.26, "p50": 2.686, "p90": 11.254, "p99": 33.96, "max": 38.93},
                          profiled_clips=777)
    derived = derive_defaults(profile)
    assert derived["hop_length"] == 320 and derived["max_length"] == 1 + int(5.5 * 16000) // 320  # 276 frames
    assert derived["max_clip_windows"] == 8  # 38.93 s = 1947 frames = 7.05 windows
    narrow = DataProfile(**{**profile.__dict__, "duration_percentiles": {"p10": 4.8, "p50": 5.0, "p90": 5.0,
                                                                       "p99": 5.0, "max": 5.0}})
    derived = derive_defaults(narrow)
    assert derived["max_length"] == 1 + 5 * 16000 // 320 and derived["max_clip_windows"] == 1  # clips fill it


def test_cached_windows_stop_at_a_minute():
    assert cached_windows(600.0, 16000, 640, 251) == math.ceil(60 * 16000 / 640 / 251)
    assert cached_windows(0.2, 16000, 160, 101) == 1


def test_mixed_rates_use_the_median_rate(tmp_path):
    specs = [(8000, 1.0, "a"), (16000, 1.0, "b"), (22050, 1.0, "a"), (16000, 1.0, "b"), (11025, 1.0, "a")]
    derived = derive_defaults(profile_sources(*_write_clips(tmp_path, specs)))
    assert derived["sampling_rate"] == 16000


def test_more_clips_mean_fewer_epochs(tmp_path):
    small = profile_sources(*_write_clips(tmp_path / "s", [(8000, 1.0, str(i % 2)) for i in range(10)]))
    large = profile_sources(*_write_clips(tmp_path / "l", [(8000, 1.0, str(i % 2)) for i in range(10)]))
    large.num_clips = 5000  # epochs depend on the clip count only
    assert derive_defaults(small)["num_train_epochs"] > derive_defaults(large)["num_train_epochs"]


def test_unreadable_clips_are_left_out_and_an_empty_profile_is_an_error(tmp_path):
    paths, labels = _write_clips(tmp_path, [(8000, 1.0, "a")])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    profile = profile_sources(paths + [str(bad)], labels + ["b"])
    assert profile.profiled_clips == 1 and profile.num_clips == 2
    with pytest.raises(ValueError, match="could be read"):
        profile_sources([str(bad)], ["b"])


def test_explicit_options_win_over_derived_ones():
    class Args:
        sampling_rate = 16000
        num_train_epochs = 30

    args = Args()
    applied = apply_defaults([args], {"sampling_rate": 8000, "num_train_epochs": 50}, explicit={"num_train_epochs"})
    assert applied == {"sampling_rate": 8000}
    assert args.sampling_rate == 8000 and args.num_train_epochs == 30


def test_train_with_only_data_flags_derives_the_rest_and_keeps_the_users(tmp_path):
    """A real (tiny) run of `audio-vit train` with the auto recipe: derived options are applied, printed and saved;
    the options given on the command line are kept; clips longer than the window are cropped in training and
    judged on all their windows in evaluation."""
    import json

    from test_training_helpers import make_tone_dataset

    from audio_vit.commands import train as train_command

    data = make_tone_dataset(tmp_path / "tones", duration=1.0)
    out = tmp_path / "out"
    code = train_command.main([
        "--data-dir", str(data), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out),
        "--max-length", "24", "--num-train-epochs", "2", "--hidden-size", "32", "--num-hidden-layers", "1",
        "--num-attention-heads", "2", "--report-to", "none", "--disable-tqdm", "--log-examples", "0",
    ])
    assert code == 0
    recipe = json.loads((out / "recipe.json").read_text())
    applied = recipe["applied"]
    assert applied["sampling_rate"] == 8000 and applied["stem"] == "conv" and applied["lr_scheduler"] == "plateau"
    assert applied["max_clip_windows"] == 5  # 1 s clips (101 frames) are 5 of the 24-frame windows the user chose
    assert {"max_length", "num_train_epochs", "hidden_size"} <= set(recipe["kept"])
    assert "max_length" not in applied and "num_train_epochs" not in applied
    config = json.loads((out / "config.json").read_text())
    assert config["stem"] == "conv" and config["max_length"] == 24 and config["hidden_size"] == 32
    assert config["training_recipe"]["applied"]["sampling_rate"] == 8000
    assert "Derived from the data" in (out / "README.md").read_text()
    state = json.loads((out / "trainer_state.json").read_text())
    assert len(state["log_history"]) == 2
    test = json.loads((out / "test_results.json").read_text())
    assert test["num_samples"] == 12
    # `audio-vit evaluate` judges the same whole clips (all windows) and so reproduces the test metrics
    from audio_vit.training import evaluate_folder, parse_training_args

    data_args = parse_training_args(["--data-dir", str(data), "--cache-dir", str(tmp_path / "cache")])[1]
    again = evaluate_folder(str(out), data_args, split="test")
    assert abs(again["accuracy"] - test["accuracy"]) < 1e-9 and abs(again["loss"] - test["loss"]) < 1e-4


def test_recipe_none_keeps_the_plain_defaults(tmp_path):
    from test_training_helpers import make_tone_dataset

    from audio_vit.training import parse_training_args
    from audio_vit.training.auto_recipe import resolve_recipe

    data = make_tone_dataset(tmp_path / "tones")
    model_args, data_args, aug, args = parse_training_args(["--data-dir", str(data), "--recipe", "none"])
    assert resolve_recipe(model_args, data_args, aug, args, {"data_dir", "recipe"}) is None
    assert model_args.sampling_rate == 16000 and model_args.stem == "patch" and aug.num_freq_masks == 0


def test_multi_label_data_is_not_class_balanced(tmp_path):
    """Label combinations of a multi-label CSV look imbalanced, but there is no single class to balance on."""
    import csv

    from audio_vit.training import parse_training_args
    from audio_vit.training.auto_recipe import resolve_recipe

    paths, _ = _write_clips(tmp_path / "audio", [(8000, 0.5, "x")] * 12)
    labels = ["a,b"] * 9 + ["a"] * 2 + ["b"]  # combinations 9:2:1
    with open(tmp_path / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "labels"])
        writer.writerows([(f"audio/clip{i}.wav", label) for i, label in enumerate(labels)])
    arguments = parse_training_args(["--data-dir", str(tmp_path)])
    recipe = resolve_recipe(*arguments, {"data_dir"})
    assert recipe["applied"]["balanced_sampling"] is False and arguments[3].balanced_sampling is False


def test_prepare_derives_the_features_and_training_on_its_folder_derives_the_rest(tmp_path, capsys):
    """`audio-vit prepare` applies and prints the feature part of the recipe (a user's flag wins) and saves the
    profile; `audio-vit train --prepared-data-dir` then derives the model and training options from it and takes the
    folder's input (mel bins, window) into the model config."""
    import json

    from test_training_helpers import make_tone_dataset

    from audio_vit.commands import prepare
    from audio_vit.commands import train as train_command

    data = make_tone_dataset(tmp_path / "tones", duration=1.0)  # 8 kHz, 1 s clips
    prepared = tmp_path / "prepared"
    common = ["--data-dir", str(data), "--cache-dir", str(tmp_path / "cache")]
    assert prepare.main([*common, "--output-dir", str(prepared), "--num-mel-bins", "16"]) == 0
    assert "data-derived defaults" in capsys.readouterr().out
    recipe = json.loads((prepared / "recipe.json").read_text())
    assert recipe["applied"]["sampling_rate"] == 8000 and recipe["applied"]["hop_length"] == 80
    assert "num_mel_bins" in recipe["kept"] and "num_mel_bins" not in recipe["applied"]
    # 8 of the 12 clips per class the recipe profiles (the 4 test clips are left out) are training clips
    assert recipe["train_fraction"] == pytest.approx(8 / 12) and recipe["profile"]["num_clips"] == 12 * 3
    features = json.loads((prepared / "preprocessor_config.json").read_text())
    assert (features["sampling_rate"], features["num_mel_bins"], features["max_length"]) == (8000, 16, 101)

    model = tmp_path / "model"
    assert train_command.main([
        "--prepared-data-dir", str(prepared), "--output-dir", str(model), "--num-train-epochs", "1", "--route", "scratch",
        "--hidden-size", "32", "--num-hidden-layers", "1", "--num-attention-heads", "2", "--report-to", "none",
        "--disable-tqdm", "--log-examples", "0",
    ]) == 0
    applied = json.loads((model / "recipe.json").read_text())["applied"]
    assert applied["stem"] == "conv" and applied["lr_scheduler"] == "plateau"
    assert "sampling_rate" not in applied and "max_length" not in applied  # the prepared folder fixed those
    assert applied["time_shift_frames"] == 10  # a tenth of the prepared 101-frame window
    config = json.loads((model / "config.json").read_text())
    assert (config["num_mel_bins"], config["max_length"]) == (16, 101)

    plain = tmp_path / "plain"
    assert prepare.main([*common, "--output-dir", str(plain), "--recipe", "none", "--quiet"]) == 0
    assert not (plain / "recipe.json").exists()
    assert json.loads((plain / "preprocessor_config.json").read_text())["sampling_rate"] == 16000
    mine = tmp_path / "mine"
    assert prepare.main([*common, "--output-dir", str(mine), "--sampling-rate", "16000", "--quiet"]) == 0
    assert "sampling_rate" in json.loads((mine / "recipe.json").read_text())["kept"]
    assert json.loads((mine / "preprocessor_config.json").read_text())["sampling_rate"] == 16000


def test_the_test_clips_do_not_steer_the_recipe(tmp_path):
    """The window, the epochs and balanced sampling come from the clips the model trains and validates on: a test
    fold of long clips of one class changes none of them (before, every clip was profiled, the test fold too)."""
    import csv

    from audio_vit.data import DataArguments
    from audio_vit.data.feature_recipe import profile_data

    folds = {"1": [(8000, 1.0, str(i % 2)) for i in range(8)], "2": [(8000, 1.0, str(i % 2)) for i in range(8)],
             "3": [(8000, 1.0, str(i % 2)) for i in range(8)], "4": [(8000, 9.0, "0") for _ in range(20)]}
    rows = []
    for fold, specs in folds.items():
        paths, labels = _write_clips(tmp_path / "data" / f"fold{fold}", specs)
        rows += [(f"fold{fold}/clip{i}.wav", label, fold) for i, label in enumerate(labels)]
    with open(tmp_path / "data" / "metadata.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file_name", "label", "fold"), *rows])

    def profile_for(test_fold):
        data_args = DataArguments(data_dir=str(tmp_path / "data"), fold_column="fold", test_fold=test_fold)
        return profile_data(data_args)[1]

    held_out_long = profile_for("4")  # the 9 s clips are the test fold
    held_out_short = profile_for("1")
    assert held_out_long.num_clips == 24 and held_out_long.class_counts == {"0": 12, "1": 12}
    assert held_out_long.duration_percentiles["max"] == pytest.approx(1.0)
    assert held_out_short.num_clips == 36 and held_out_short.duration_percentiles["max"] == pytest.approx(9.0)
    derived = derive_defaults(held_out_long, train_fraction=2 / 3)
    assert derived["max_length"] == 1 + 8000 // 80  # 1 s: the training clips' window, not the test clips' 9 s
    assert derived["balanced_sampling"] is False  # 12 / 12 among training clips (28 / 12 with the test fold)
