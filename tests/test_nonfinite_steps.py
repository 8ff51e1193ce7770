"""A trainer that notices: non-finite steps are skipped and counted, persistent ones stop the run with an error that
names the epoch, the step and the clips, a non-finite validation epoch is never the best, and every process of an
`accelerate launch` run takes the same decision."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from audio_vit.modeling_audio_vit import AudioViTForAudioClassification
from audio_vit.training import parse_training_args, train
from audio_vit.training import trainer as trainer_module
from audio_vit.training.nonfinite import NonFiniteGuard, NonFiniteTrainingError
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))  # 24 training clips: 3 steps per epoch at batch 8


def poison_training_losses(monkeypatch, bad_calls):
    """Make the training loss of the listed training forward passes (1-based) NaN; returns the call counter."""
    original = AudioViTForAudioClassification.compute_loss
    calls = {"n": 0}

    def compute_loss(self, logits, labels):
        loss = original(self, logits, labels)
        if self.training:
            calls["n"] += 1
            if bad_calls == "all" or calls["n"] in bad_calls:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(AudioViTForAudioClassification, "compute_loss", compute_loss)
    return calls


def test_a_nan_batch_is_skipped_and_counted(tone_data, tmp_path, monkeypatch, capsys):
    poison_training_losses(monkeypatch, {2})
    out = tmp_path / "out"
    results = train(*parse_training_args(tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs", "2")))
    assert results["finished"] and results["nonfinite_steps_skipped"] == 1
    state = read_json(out / "trainer_state.json")
    assert state["skipped_nonfinite_steps"] == 1
    assert [entry["nonfinite_steps_skipped"] for entry in state["log_history"]] == [1, 0]
    assert all(math.isfinite(entry["train_loss"]) and math.isfinite(entry["eval_loss"]) for entry in state["log_history"])
    assert read_json(out / "all_results.json")["nonfinite_steps_skipped"] == 1
    printed = capsys.readouterr().out
    assert "epoch 1: " in printed and "skipped non-finite steps 1" in printed
    model = AudioViTForAudioClassification.from_pretrained(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_persistent_nan_losses_stop_the_run_with_a_clear_error(tone_data, tmp_path, monkeypatch):
    poison_training_losses(monkeypatch, "all")
    argv = tiny_train_argv(tone_data, tmp_path / "out", tmp_path / "cache", "--num-train-epochs", "3",
                           "--max-consecutive-nonfinite-steps", "4")
    with pytest.raises(NonFiniteTrainingError) as error:
        train(*parse_training_args(argv))
    message = str(error.value)
    assert "epoch 2, step 4" in message  # 3 steps per epoch: the 4th skipped step in a row is the first of epoch 2
    assert "4 optimizer steps in a row" in message and ".wav" in message and "--learning-rate" in message
    assert not (tmp_path / "out" / "test_results.json").exists()


def test_a_non_finite_validation_epoch_is_never_the_best(tone_data, tmp_path, monkeypatch):
    validate = trainer_module.validate

    def broken_second_epoch(run, metrics):
        scores = validate(run, metrics)
        if run.state.epoch == 1:  # validating epoch 2: a broken model with a perfect-looking accuracy
            scores = {**scores, "loss": float("nan"), "accuracy": 1.0}
        return scores

    monkeypatch.setattr(trainer_module, "validate", broken_second_epoch)
    out = tmp_path / "out"
    train(*parse_training_args(tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs", "3",
                                               "--metric-for-best-model", "accuracy")))
    state = read_json(out / "trainer_state.json")
    assert state["log_history"][1]["best"] is False and state["best_epoch"] != 2


def test_a_skipped_step_leaves_weights_and_optimizer_state_alone():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    accelerator = SimpleNamespace(device=torch.device("cpu"), scaler=None, reduce=lambda tensor, op: tensor,
                                  clip_grad_norm_=torch.nn.utils.clip_grad_norm_)
    run = SimpleNamespace(accelerator=accelerator, args=SimpleNamespace(max_grad_norm=1.0), model=model,
                          optimizer=optimizer, guard=NonFiniteGuard(max_consecutive=2))
    model(torch.randn(3, 4)).sum().backward()
    assert trainer_module.optimizer_step(run)  # a finite step is taken
    before = [p.detach().clone() for p in model.parameters()]
    state_before = {k: v.clone() for k, v in optimizer.state[model.weight].items()}
    loss = model(torch.randn(3, 4)).sum() * float("nan")
    run.guard.observe_loss(loss)
    loss.backward()
    assert not trainer_module.optimizer_step(run)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(torch.equal(state_before[k], optimizer.state[model.weight][k]) for k in state_before)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert run.guard.end_epoch() == 1
    run.guard.check(1, 2, ["a.wav"], model.parameters())  # one in a row: still fine
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteTrainingError, match="weights are no longer finite.*a.wav"):
        run.guard.check(1, 2, ["a.wav"], model.parameters())


LAUNCHED_SCRIPT = """
import hashlib, os, sys
from pathlib import Path
import torch
from audio_vit.modeling_audio_vit import AudioViTForAudioClassification
from audio_vit.training import parse_training_args, train, trainer

RANK = int(os.environ.get("RANK", "0"))
original = AudioViTForAudioClassification.compute_loss
calls = {"n": 0}

def compute_loss(self, logits, labels):
    loss = original(self, logits, labels)
    if self.training:
        calls["n"] += 1
        if calls["n"] == 2 and RANK == 0:
            # only this process sees it, and its gradients stay finite: without agreement only rank 1 would step
            return loss + float("inf")
    return loss

AudioViTForAudioClassification.compute_loss = compute_loss
end_epoch = trainer.end_epoch

def record_weights(run, train_loss, val):
    digest = hashlib.sha256()
    for p in run.accelerator.unwrap_model(run.model).parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    Path(os.environ["WEIGHTS_DIR"], f"rank{RANK}_epoch{run.state.epoch + 1}.txt").write_text(digest.hexdigest())
    return end_epoch(run, train_loss, val)

trainer.end_epoch = record_weights
train(*parse_training_args(sys.argv[1:]))
"""


def test_every_process_skips_the_same_step(tone_data, tmp_path):
    script = tmp_path / "launched.py"
    script.write_text(textwrap.dedent(LAUNCHED_SCRIPT))
    weights = tmp_path / "weights"
    weights.mkdir()
    argv = tiny_train_argv(tone_data, tmp_path / "out", tmp_path / "cache", "--num-train-epochs", "2",
                           "--per-device-train-batch-size", "4")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "WEIGHTS_DIR": str(weights), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script),
                             *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    state = read_json(tmp_path / "out" / "trainer_state.json")
    assert state["skipped_nonfinite_steps"] == 1
    for epoch in (1, 2):
        assert (weights / f"rank0_epoch{epoch}.txt").read_text() == (weights / f"rank1_epoch{epoch}.txt").read_text()
