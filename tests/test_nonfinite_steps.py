"""A trainer that notices: non-finite steps are skipped and counted (with fp16's GradScaler too, and without leaving
NaN in batch norm's running statistics), persistent ones stop the run with an error that names the epoch, the step
and the clips, a non-finite validation epoch is never the best, a run without a finite one ends in an error naming
the epochs, the checks read the device once per optimizer step, and every process of an `accelerate launch` run
takes the same decision."""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from audio_vit.models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification
from audio_vit.training import parse_training_args, train
from audio_vit.training import components
from audio_vit.training import trainer as trainer_module
from audio_vit.training.nonfinite import NonFiniteGuard, NonFiniteTrainingError, RunningStatistics
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
    # Scripted scores: epoch 2 has the highest accuracy of the run but a NaN loss; epoch 3 beats epoch 1.
    scripted = {1: {"accuracy": 0.5, "loss": 1.0}, 2: {"accuracy": 1.0, "loss": float("nan")},
                3: {"accuracy": 0.6, "loss": 0.9}}

    def scripted_validation(run, metrics):
        return {**validate(run, metrics), **scripted[run.state.epoch + 1]}

    monkeypatch.setattr(trainer_module, "validate", scripted_validation)
    out = tmp_path / "out"
    results = train(*parse_training_args(tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs",
                                                         "3", "--metric-for-best-model", "accuracy")))
    state = read_json(out / "trainer_state.json")
    assert [entry["eval_accuracy"] for entry in state["log_history"]] == [0.5, 1.0, 0.6]  # 2 would win on accuracy
    assert [entry["best"] for entry in state["log_history"]] == [True, False, True]
    assert state["best_epoch"] == 3 and results["eval_accuracy"] == 0.6


def test_no_finite_validation_epoch_ends_in_an_error_naming_the_epochs(tone_data, tmp_path, monkeypatch):
    validate = trainer_module.validate

    def never_finite(run, metrics):
        return {**validate(run, metrics), "loss": float("nan")}

    monkeypatch.setattr(trainer_module, "validate", never_finite)
    out = tmp_path / "out"
    with pytest.raises(NonFiniteTrainingError, match=r"without a finite validation epoch.*epochs 1 \(loss nan, "
                                                     r"accuracy [0-9.]+\), 2 \(loss nan.*no model was saved"):
        train(*parse_training_args(tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs", "2",
                                                   "--metric-for-best-model", "accuracy")))
    assert not (out / "model.safetensors").exists() and not (out / "test_results.json").exists()


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one process-wide state: a run with other mixed precision needs it reset (before and after)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def fp16_accelerator_on_the_cpu(args):
    """accelerate's fp16 as on a GPU: float16 autocast and a GradScaler (accelerate makes no scaler on a CPU)."""
    accelerator = Accelerator(cpu=True, mixed_precision="fp16")
    accelerator.native_amp = True
    accelerator.scaler = torch.amp.GradScaler("cpu")
    fp16_accelerator_on_the_cpu.made = accelerator
    return accelerator


@pytest.mark.parametrize("max_grad_norm", ["1.0", "0"])  # clipping unscales the gradients; without it the step must
def test_fp16_a_skipped_step_lets_the_next_steps_run(tone_data, tmp_path, monkeypatch, max_grad_norm,
                                                     fresh_accelerator_state):
    monkeypatch.setattr(components, "make_accelerator", fp16_accelerator_on_the_cpu)  # start_run builds it
    poison_training_losses(monkeypatch, {2})
    out = tmp_path / "out"
    results = train(*parse_training_args(tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs", "2",
                                                         "--max-grad-norm", max_grad_norm)))
    assert results["finished"] and results["nonfinite_steps_skipped"] == 1 and results["global_step"] == 6
    assert fp16_accelerator_on_the_cpu.made.scaler.get_scale() < 2.0**16  # the scaler backed off on the NaN step
    assert all(math.isfinite(entry["eval_loss"]) for entry in read_json(out / "trainer_state.json")["log_history"])


def poison_stem_forward(monkeypatch, bad_calls):
    """Make the first conv-stem convolution's output NaN in the listed training forward passes (1-based): the
    batch norm after it updates its running statistics from that output before the loss is checked."""
    build_model = trainer_module.build_model
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] in bad_calls:
                return output * float("nan")
        return None

    def build_poisoned_model(*args, **kwargs):
        model = build_model(*args, **kwargs)
        model.audio_vit.embeddings.patch_embeddings.stem.layers[0].register_forward_hook(hook)
        return model

    monkeypatch.setattr(trainer_module, "build_model", build_poisoned_model)
    return calls


@pytest.mark.parametrize("ema", [False, True])
def test_a_nan_forward_pass_leaves_batch_norm_statistics_finite(tone_data, tmp_path, monkeypatch, ema):
    calls = poison_stem_forward(monkeypatch, {2})
    out = tmp_path / "out"
    argv = tiny_train_argv(tone_data, out, tmp_path / "cache", "--num-train-epochs", "2", "--stem", "conv",
                           "--stem-channels", "4", "8", "--patch-size", "4", "2",
                           *(["--ema-decay", "0.9"] if ema else []))
    results = train(*parse_training_args(argv))
    assert calls["n"] == 6 and results["finished"] and results["nonfinite_steps_skipped"] == 1
    history = read_json(out / "trainer_state.json")["log_history"]
    assert all(math.isfinite(entry["eval_loss"]) for entry in history), history  # evaluation reads the running stats
    model = AudioViTForAudioClassification.from_pretrained(out)  # the EMA weights and statistics when kept
    statistics = [b for name, b in model.named_buffers() if "running_" in name]
    assert statistics and all(torch.isfinite(b).all() for b in statistics)


@contextlib.contextmanager
def host_reads(files: tuple[str, ...]):
    """Record every read of a tensor's value on the host (item, tolist, bool, float, int) made by code in `files`."""
    reads = []
    with pytest.MonkeyPatch.context() as patch:
        for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            original = getattr(torch.Tensor, name)

            def counted(self, *args, _original=original, _name=name, **kwargs):
                caller = sys._getframe(1).f_code
                if caller.co_filename.endswith(files):
                    reads.append(f"{caller.co_name}: {_name}")
                return _original(self, *args, **kwargs)

            patch.setattr(torch.Tensor, name, counted)
        yield reads


def test_the_checks_read_the_device_once_per_optimizer_step(tone_data, tmp_path, monkeypatch):
    train_epoch = trainer_module.train_epoch
    reads: list[str] = []

    def counted_epoch(run):
        with host_reads(("training/trainer.py", "training/nonfinite.py")) as epoch_reads:
            loss = train_epoch(run)
        reads.extend(epoch_reads)
        return loss

    monkeypatch.setattr(trainer_module, "train_epoch", counted_epoch)
    # 24 clips in micro-batches of 4, two per optimizer step: 6 forward passes, 3 optimizer steps
    train(*parse_training_args(tiny_train_argv(tone_data, tmp_path / "out", tmp_path / "cache", "--num-train-epochs",
                                               "1", "--per-device-train-batch-size", "4",
                                               "--gradient-accumulation-steps", "2")))
    # one read per optimizer step (the step's decision), one for the weight check and one for the epoch's loss
    assert len(reads) <= 3 + 2, reads


def test_a_skipped_step_leaves_weights_optimizer_state_and_batch_norm_statistics_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    accelerator = SimpleNamespace(device=torch.device("cpu"), scaler=None, reduce=lambda tensor, op: tensor,
                                  clip_grad_norm_=torch.nn.utils.clip_grad_norm_)
    run = SimpleNamespace(accelerator=accelerator, args=SimpleNamespace(max_grad_norm=1.0), model=model,
                          optimizer=optimizer, guard=NonFiniteGuard(max_consecutive=2),
                          running_stats=RunningStatistics(model))
    model(torch.randn(3, 4)).sum().backward()
    assert trainer_module.optimizer_step(run)  # a finite step is taken
    before = [p.detach().clone() for p in model.parameters()]
    state_before = {k: v.clone() for k, v in optimizer.state[model[0].weight].items()}
    statistics_before = [b.clone() for b in model.buffers()]
    loss = model(torch.full((3, 4), float("nan"))).sum()
    assert not torch.isfinite(model[1].running_mean).any()  # the forward pass took the NaN into the statistics
    run.guard.observe_loss(loss)
    loss.backward()
    assert not trainer_module.optimizer_step(run)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(torch.equal(state_before[k], optimizer.state[model[0].weight][k]) for k in state_before)
    assert all(torch.equal(a, b) for a, b in zip(statistics_before, model.buffers()))  # put back
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert run.guard.end_epoch() == 1
    run.guard.check(1, 2, ["a.wav"], model)  # one in a row: still fine
    # A step taken that leaves a non-finite weight is reported with that step and its batch at the next read.
    model(torch.randn(3, 4)).sum().backward()
    assert trainer_module.optimizer_step(run)
    with torch.no_grad():
        model[0].weight[0, 0] = float("inf")
    run.guard.check(1, 3, ["b.wav"], model)
    with pytest.raises(NonFiniteTrainingError, match="no longer finite after the optimizer step at epoch 1, step 3.*b.wav"):
        run.guard.settle()


LAUNCHED_SCRIPT = """
import hashlib, os, sys
from pathlib import Path
import torch
from audio_vit.models.audio_vit.modeling_audio_vit import AudioViTForAudioClassification
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
