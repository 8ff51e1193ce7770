"""Training: arguments and config files, optimizer groups, schedules, metrics, the loop's outputs, resume, bad input."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.metrics import AVAILABLE_METRICS, load_metric, metric_path
from audio_vit.model_folder import ModelFolderError
from audio_vit.training import (
    LRSchedule,
    ModelEMA,
    TrainerState,
    list_checkpoints,
    parse_training_args,
    read_config_file,
    resolve_checkpoint,
    train,
)
from audio_vit.training.param_groups import no_decay_parameter_names
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv


# --------------------------------------------------------------------------- arguments


def test_config_file_sections_and_command_line_overrides(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text(
        "model:\n  hidden_size: 48\n  patch_size: [16, 4]\n"
        "data:\n  data_dir: somewhere\n"
        "augmentation:\n  time_shift_frames: 5\n"
        "training:\n  learning_rate: 0.01\n  lr_scheduler: onecycle\nseed: 7\n"
    )
    model_args, data_args, aug, train_args = parse_training_args(
        ["--config", str(config), "--learning-rate", "0.02", "--num-train-epochs", "3"]
    )
    assert model_args.hidden_size == 48 and model_args.patch_size == [16, 4]
    assert data_args.data_dir == "somewhere"
    assert aug.time_shift_frames == 5
    assert train_args.learning_rate == 0.02  # the command line wins over the file
    assert train_args.lr_scheduler == "onecycle" and train_args.num_train_epochs == 3
    # one --seed seeds the split, the augmentation and the training
    assert train_args.seed == data_args.seed == aug.seed == 7


def test_config_file_json_flat(tmp_path):
    config = tmp_path / "recipe.json"
    config.write_text('{"hidden_size": 64, "per_device_train_batch_size": 4}')
    model_args, _, _, train_args = parse_training_args(["--config", str(config)])
    assert model_args.hidden_size == 64 and train_args.per_device_train_batch_size == 4


def test_config_file_unknown_option_is_named_with_valid_ones(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("training:\n  learning_rat: 0.1\n")
    with pytest.raises(ValueError) as err:
        read_config_file(config)
    message = str(err.value)
    assert "learning_rat" in message and "learning_rate" in message and "hidden_size" in message


def test_config_file_missing_and_bad_values(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        parse_training_args(["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(ValueError, match="lr_scheduler='linear'"):
        parse_training_args(["--lr-scheduler", "linear"])


def test_shipped_recipes_parse():
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[1] / "audio_vit" / "recipes").glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"fsdd", "urbansound8k", "gtzan"}
    for recipe in recipes:
        parse_training_args(["--config", str(recipe)])


# --------------------------------------------------------------------------- optimization


def test_no_weight_decay_on_norms_biases_positions_and_cls_token():
    config = AudioViTConfig(num_mel_bins=16, max_length=16, patch_size=(16, 2), hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=2, num_labels=3)
    model = AudioViTForAudioClassification(config)
    no_decay = no_decay_parameter_names(model)
    names = dict(model.named_parameters())
    for name in names:
        expected = name.endswith("bias") or "norm" in name or "position_embeddings" in name or "cls_token" in name
        assert (name in no_decay) == expected, name
    assert any("position_embeddings" in n for n in no_decay) and any("cls_token" in n for n in no_decay)
    assert any(n.endswith("qkv.weight") or "weight" in n and n not in no_decay for n in names)


def _optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_plateau_schedule_with_warmup_and_state_round_trip():
    opt = _optimizer()
    schedule = LRSchedule(opt, kind="plateau", total_steps=100, warmup_steps=4, factor=0.5, patience=1, min_lr=0.1)
    lrs = [schedule.get_last_lr()[0]]
    for _ in range(4):
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])  # linear warmup, then the peak
    assert not schedule.epoch_end(0.5)  # first value: best
    assert not schedule.epoch_end(0.5)  # 1 bad epoch = patience
    assert schedule.epoch_end(0.4)  # 2 bad epochs > patience: halve
    assert schedule.get_last_lr()[0] == pytest.approx(0.5)
    state = schedule.state_dict()
    other = LRSchedule(_optimizer(), kind="plateau", total_steps=100, warmup_steps=4)
    other.load_state_dict(state)
    assert other.get_last_lr() == schedule.get_last_lr() and other.best == schedule.best
    for _ in range(10):
        schedule.epoch_end(0.0)
    assert schedule.get_last_lr()[0] == pytest.approx(0.1)  # floored at min_lr



def test_plateau_anneal_tail_decays_from_the_plateau_lr_to_the_floor():
    opt = _optimizer()
    schedule = LRSchedule(opt, kind="plateau", total_steps=40, warmup_steps=0, mode="min", factor=0.5, patience=0,
                          min_lr=0.01, anneal_steps=10)
    for _ in range(10):
        schedule.step()
    schedule.epoch_end(1.0)
    assert schedule.epoch_end(2.0)  # a plateau halves the LR before the tail
    for _ in range(19):
        schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(0.5) and not schedule.annealing
    tail = []
    for _ in range(11):
        schedule.step()
        tail.append(schedule.get_last_lr()[0])
    assert schedule.annealing
    assert tail[0] == pytest.approx(0.5) and all(a > b for a, b in zip(tail, tail[1:]))
    assert tail[-1] == pytest.approx(0.01)  # the floor at the last step
    assert not schedule.epoch_end(5.0)  # a bad epoch during the tail changes nothing
    assert schedule.get_last_lr()[0] == pytest.approx(0.01)

@pytest.mark.parametrize("kind", ["cosine", "onecycle"])
def test_cosine_and_onecycle_rise_then_decay(kind):
    opt = _optimizer()
    schedule = LRSchedule(opt, kind=kind, total_steps=50, warmup_steps=10, min_lr=0.0)
    lrs = [schedule.get_last_lr()[0]]
    for _ in range(50):
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    peak = lrs.index(max(lrs))
    assert 8 <= peak <= 11 and max(lrs) == pytest.approx(1.0, abs=0.02)
    assert lrs[-1] < 0.01 and all(a >= b - 1e-9 for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_ema_tracks_weights():
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(30):
        ema.update(model)
    assert torch.allclose(ema.module.weight, torch.ones_like(model.weight), atol=1e-3)


# --------------------------------------------------------------------------- metrics


def test_shipped_metrics_load_offline_and_compute(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert {"accuracy", "f1", "confusion_matrix"} <= set(AVAILABLE_METRICS)
    assert load_metric("accuracy").compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])["accuracy"] == 0.75
    f1 = load_metric("f1").compute(predictions=[0, 2, 1, 0, 0, 1], references=[0, 1, 2, 0, 1, 2], average="macro")
    assert f1["f1"] == pytest.approx(0.26666666666666666)
    cm = load_metric("confusion_matrix").compute(predictions=[0, 1, 1], references=[0, 1, 0], labels=[0, 1, 2])
    assert cm["confusion_matrix"].tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="'bleu'"):
        metric_path("bleu")


# --------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def trained(tone_data, tmp_path_factory):
    """One uninterrupted 4-epoch run (shared by several tests)."""
    root = tmp_path_factory.mktemp("run")
    argv = tiny_train_argv(tone_data, root / "out", root / "cache", "--num-train-epochs", "4",
                           "--time-shift-frames", "2", "--num-time-masks", "1", "--time-mask-param", "3",
                           "--mixup-alpha", "0.2", "--label-smoothing", "0.1", "--ema-decay", "0.9",
                           "--drop-path-rate", "0.1", "--save-total-limit", "2", "--report-to", "tensorboard",
                           "--log-examples", "1", "--logging-steps", "1")
    results = train(*parse_training_args(argv))
    return argv, root / "out", results


def test_training_writes_a_loadable_model_and_results(trained):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    _, out, results = trained
    assert results["finished"] and results["epoch"] == 4
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert set(model.config.id2label.values()) == {"low", "mid", "high"}
    fe = AutoFeatureExtractor.from_pretrained(out)
    assert isinstance(fe, AudioViTFeatureExtractor) and fe.std != 1.0 and fe.mean != 0.0  # fitted on train
    # training masks the padding, so the saved extractor gives the mask to whoever calls it as it is (transformers' own
    # pipeline, trust_remote_code users): a short clip's padding is then not taken for audio
    assert fe.return_attention_mask
    from transformers import pipeline

    short_clip = pipeline("audio-classification", model=str(out)).preprocess(np.zeros(fe.sampling_rate // 10, np.float32))
    assert short_clip["attention_mask"].sum() < short_clip["attention_mask"].numel()
    state = read_json(out / "trainer_state.json")
    assert [e["epoch"] for e in state["log_history"]] == [1, 2, 3, 4]
    assert all({"train_loss", "eval_accuracy", "eval_f1", "eval_loss", "learning_rate"} <= set(e) for e in state["log_history"])
    assert state["best_epoch"] == results["best_epoch"]
    all_results = read_json(out / "all_results.json")
    assert all_results["test_accuracy"] == results["test_accuracy"]
    test = read_json(out / "test_results.json")
    assert test["labels"] == [model.config.id2label[i] for i in range(3)]
    matrix = test["confusion_matrix"]
    assert len(matrix) == 3 and sum(map(sum, matrix)) == test["num_samples"] == 12
    assert sum(matrix[i][i] for i in range(3)) / 12 == pytest.approx(test["accuracy"])
    # checkpoints: the newest K=2 epochs, no temporary folders left
    assert [p.name for p in list_checkpoints(out)] == ["epoch_3", "epoch_4"]
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    # TensorBoard: scalars, the example image and audio
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = [p for p in (out / "runs").rglob("events.out.tfevents.*")]
    tags = {}
    for path in events:
        acc = EventAccumulator(str(path), size_guidance={"images": 0, "audio": 0, "scalars": 0})
        acc.Reload()
        for kind, names in acc.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    assert {"train/loss", "train/learning_rate", "eval/accuracy", "eval/f1"} <= tags["scalars"]
    assert "examples/spectrogram_0" in tags["images"] and "examples/audio_0" in tags["audio"]


def test_tiny_run_learns_the_tones(trained):
    _, _, results = trained
    assert results["best_eval_accuracy"] >= 0.66  # chance is 0.33


def test_resume_after_interruption_reproduces_the_uninterrupted_run(trained, tone_data, tmp_path):
    argv, uninterrupted, results = trained
    out = tmp_path / "out"
    argv = [a if a != str(uninterrupted) else str(out) for a in argv]
    first = train(*parse_training_args(argv + ["--max-epochs-this-run", "2"]))
    assert not first["finished"] and first["epoch"] == 2
    assert not (out / "test_results.json").exists()
    resumed = train(*parse_training_args(argv + ["--resume-from-checkpoint", "latest"]))
    assert resumed["finished"] and resumed["epoch"] == 4
    expected = read_json(uninterrupted / "trainer_state.json")
    got = read_json(out / "trainer_state.json")
    for a, b in zip(expected["log_history"], got["log_history"], strict=True):
        for key in ("train_loss", "eval_loss", "eval_accuracy", "learning_rate"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["epoch"], key)
    for key in ("test_accuracy", "test_loss", "test_f1", "best_epoch"):
        assert resumed[key] == pytest.approx(results[key], rel=1e-5), key
    assert read_json(out / "test_results.json")["confusion_matrix"] == read_json(uninterrupted / "test_results.json")["confusion_matrix"]


def test_resume_from_explicit_checkpoint_path_and_bad_paths(trained, tmp_path):
    _, out, _ = trained
    assert resolve_checkpoint("latest", out).name == "epoch_4"
    assert resolve_checkpoint(str(out / "checkpoints" / "epoch_3"), out).name == "epoch_3"
    assert TrainerState.load(out / "checkpoints" / "epoch_3" / "trainer_state.json").epoch == 3
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        resolve_checkpoint(str(tmp_path), out)
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        resolve_checkpoint("latest", tmp_path)


# --------------------------------------------------------------------------- bad input


def test_wrong_data_path_and_model_path(tmp_path):
    argv = tiny_train_argv(tmp_path / "missing", tmp_path / "out", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="missing"):
        train(*parse_training_args(argv))
    argv = tiny_train_argv(tmp_path, tmp_path / "out", tmp_path / "cache", "--model-name-or-path", str(tmp_path / "nomodel"))
    with pytest.raises(ModelFolderError, match="nomodel"):
        train(*parse_training_args(argv))


def test_single_class_and_empty_dataset_are_refused(tmp_path):
    data = make_tone_dataset(tmp_path / "one", counts={"train": 4, "validation": 2, "test": 2}, labels={"low": 300.0})
    argv = tiny_train_argv(data, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(Exception, match="(?i)single class|at least 2"):
        train(*parse_training_args(argv))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metadata.csv").write_text("file_name,label,split\n")
    with pytest.raises(Exception, match="(?i)empty|no .*clips|no training"):
        train(*parse_training_args(tiny_train_argv(empty, tmp_path / "out2", tmp_path / "cache")))


def test_output_dir_with_a_model_needs_overwrite_or_resume(trained, tmp_path):
    argv, out, _ = trained
    with pytest.raises(FileExistsError, match="--overwrite-output-dir"):
        train(*parse_training_args(argv))


def test_label_mismatch_on_resume_and_fine_tune(trained, tmp_path):
    _, out, _ = trained
    other = make_tone_dataset(tmp_path / "other", counts={"train": 4, "validation": 2, "test": 2},
                              labels={"low": 300.0, "high": 2000.0, "buzz": 3000.0})
    # resume a run whose checkpoint has other labels
    resumed_out = tmp_path / "resumed"
    shutil.copytree(out, resumed_out)
    argv = tiny_train_argv(other, resumed_out, tmp_path / "cache", "--resume-from-checkpoint", "latest",
                           "--num-train-epochs", "5")
    with pytest.raises(ValueError, match="buzz"):
        train(*parse_training_args(argv))
    # fine-tune on other labels: refused without the flag, then the head is re-initialised
    argv = tiny_train_argv(other, tmp_path / "ft", tmp_path / "cache", "--model-name-or-path", str(out),
                           "--num-train-epochs", "1")
    with pytest.raises(ValueError, match="--ignore-mismatched-labels"):
        train(*parse_training_args(argv))
    results = train(*parse_training_args(argv + ["--ignore-mismatched-labels"]))
    assert results["finished"]
    tuned = AudioViTForAudioClassification.from_pretrained(tmp_path / "ft")
    assert sorted(tuned.config.id2label.values()) == ["buzz", "high", "low"]
    base = AudioViTForAudioClassification.from_pretrained(out)
    # the encoder came from the checkpoint (changed by one epoch of fine-tuning only a little)
    assert torch.allclose(tuned.audio_vit.embeddings.cls_token, base.audio_vit.embeddings.cls_token, atol=0.05)


def test_fine_tune_same_labels_starts_from_the_checkpoint(trained, tone_data, tmp_path):
    _, out, _ = trained
    argv = tiny_train_argv(tone_data, tmp_path / "ft", tmp_path / "cache", "--model-name-or-path", str(out),
                           "--num-train-epochs", "1", "--learning-rate", "1e-9", "--warmup-epochs", "0",
                           "--weight-decay", "0")
    results = train(*parse_training_args(argv))
    base = read_json(out / "test_results.json")
    assert results["test_accuracy"] == pytest.approx(base["accuracy"])


# --------------------------------------------------------------------------- commands


def test_evaluate_command_reproduces_the_test_metrics(trained, tone_data, tmp_path, capsys):
    from audio_vit.commands import evaluate

    argv, out, _ = trained
    cache = argv[argv.index("--cache-dir") + 1]
    report = tmp_path / "eval.json"
    code = evaluate.main(["--model", str(out), "--data-dir", str(tone_data), "--cache-dir", cache,
                          "--split", "test", "--output-file", str(report)])
    assert code == 0
    results, expected = read_json(report), read_json(out / "test_results.json")
    assert results["accuracy"] == pytest.approx(expected["accuracy"])
    assert results["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert results["confusion_matrix"] == expected["confusion_matrix"]
    assert '"accuracy"' in capsys.readouterr().out
    # the per-class report and the confusion-matrix image, by default in MODEL/eval_test
    per_class = read_json(out / "eval_test" / "per_class.json")["per_class"]
    assert sum(row["support"] for row in per_class) == results["num_samples"]
    assert (out / "eval_test" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "| label | precision | recall | f1 | support |" in (out / "eval_test" / "per_class.md").read_text()
    assert evaluate.main(["--model", str(out), "--data-dir", str(tone_data), "--cache-dir", cache, "--split", "dev"]) == 2
    assert "'dev'" in capsys.readouterr().err
    assert evaluate.main(["--model", str(tmp_path), "--data-dir", str(tone_data)]) == 2
    assert "not a model folder" in capsys.readouterr().err


def test_train_command_reports_config_errors(tmp_path, capsys):
    from audio_vit.commands import train

    config = tmp_path / "bad.yaml"
    config.write_text("hidden_sizes: 3\n")
    assert train.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "hidden_sizes" in err and "valid options are" in err


@pytest.mark.parametrize("command", ["train", "demo", "evaluate"])
def test_command_help(command, capsys):
    import importlib

    module = importlib.import_module(f"audio_vit.commands.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert f"audio-vit {command}" in capsys.readouterr().out
