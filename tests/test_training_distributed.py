"""Distributed correctness on the CPU: `accelerate launch --multi_gpu --num_processes 2` (gloo) with batch B
gives the loss trajectory of one process with batch 2B, and validation metrics count every clip once.

Dropout and augmentation are off (they draw different random numbers per process); the training set divides
by 2B so no process pads its last batch.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "scripts" / "train.py"


def _env():
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _run(cmd, timeout=600):
    result = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-5000:]}"
    return result


def test_two_processes_batch_b_match_one_process_batch_2b(tmp_path):
    data = make_tone_dataset(tmp_path / "data", counts={"train": 8, "validation": 5, "test": 3})  # 24 / 15 / 9 clips
    common = ["--num-train-epochs", "2", "--logging-steps", "1", "--lr-scheduler", "constant", "--warmup-epochs", "0",
              "--per-device-eval-batch-size", "4"]
    single = tiny_train_argv(data, tmp_path / "one", tmp_path / "cache", *common, "--per-device-train-batch-size", "8")
    double = tiny_train_argv(data, tmp_path / "two", tmp_path / "cache", *common, "--per-device-train-batch-size", "4")
    _run([sys.executable, str(TRAIN_SCRIPT), *single])  # also fills the spectrogram cache
    launched = _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                     "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                     str(TRAIN_SCRIPT), *double])
    assert "on 2 process(es)" in launched.stdout

    one, two = read_json(tmp_path / "one" / "trainer_state.json"), read_json(tmp_path / "two" / "trainer_state.json")
    assert len(one["step_log"]) == len(two["step_log"]) == 6  # 3 optimizer steps per epoch in both runs
    for a, b in zip(one["step_log"], two["step_log"]):
        assert a["step"] == b["step"]
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5), (a, b)
    for a, b in zip(one["log_history"], two["log_history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-4)
        assert b["eval_accuracy"] == a["eval_accuracy"]
    # gather_for_metrics drops the samples duplicated to even out the last batch: every clip counted once
    test_one, test_two = read_json(tmp_path / "one" / "test_results.json"), read_json(tmp_path / "two" / "test_results.json")
    assert test_one["num_samples"] == test_two["num_samples"] == 9
    assert test_two["confusion_matrix"] == test_one["confusion_matrix"]
    # only the main process wrote: one set of outputs, one checkpoint per epoch
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["epoch_1", "epoch_2"]


class _OtherProcess:
    """What `save_model` sees on a process other than the main one (barriers are no-ops here)."""

    is_main_process = False

    def wait_for_everyone(self):
        pass

    def unwrap_model(self, model):
        return model

    def save(self, obj, path, **kwargs):
        raise AssertionError("a process other than the main one saved weights")


def test_only_the_main_process_touches_the_model_folder(tmp_path):
    """A non-main process's `save_pretrained` created and listed the staging folder while the main process emptied
    and removed it: under load it died with FileNotFoundError, and the launch with it (cross-validate under
    `accelerate launch`, exit code 2 on process 1). Such a process must leave the folder alone."""
    from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
    from audio_vit.training.checkpointing import save_model

    model = AudioViTForAudioClassification(AudioViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                          intermediate_size=32, num_labels=2, max_length=32))
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    save_model(_OtherProcess(), model, AudioViTFeatureExtractor(), output_dir)
    assert list(output_dir.iterdir()) == []
