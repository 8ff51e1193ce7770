"""`audio-vit pretrain`: masking, the masked spectrogram model, unlabeled sources, the loop (loss, resume, time
budget), the encoder folder and fine-tuning from it. Tiny configs (16 mel bins, hidden 32, 2 layers) on 24 tones."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from audio_vit import AudioViTConfig, AudioViTModel
from audio_vit.data import DataArguments, build_manifest
from audio_vit.data.manifest import UNLABELED
from audio_vit.pretraining import MaskedSpectrogramModel, parse_pretraining_args, pretrain, sample_token_mask
from audio_vit.pretraining.masking import masked_counts
from audio_vit.pretraining.modeling_masked_spectrogram import token_grid, token_validity
from audio_vit.training import parse_training_args, train
from audio_vit.training.checkpointing import list_checkpoints
from test_training_helpers import make_tone_dataset, read_json

TINY_ENCODER = ["--sampling-rate", "8000", "--n-fft", "256", "--hop-length", "128", "--num-mel-bins", "16",
                "--max-length", "24", "--stem", "conv", "--stem-channels", "8", "16", "--patch-size", "4", "1",
                "--hidden-size", "32", "--num-hidden-layers", "2", "--num-attention-heads", "2",
                "--intermediate-size", "64", "--pooling", "mean_max"]


def tiny_pretrain_argv(data_dir, output_dir, cache_dir, *extra: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--output-dir", str(output_dir), "--cache-dir", str(cache_dir),
            *TINY_ENCODER, "--decoder-hidden-size", "32", "--decoder-layers", "1", "--decoder-heads", "2",
            "--per-device-train-batch-size", "8", "--learning-rate", "0.003", "--disable-tqdm", *extra]


def tiny_config(**overrides) -> AudioViTConfig:
    kwargs = dict(num_mel_bins=16, max_length=32, stem="conv", stem_channels=[8, 16], patch_size=(4, 1),
                  hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return AudioViTConfig(**{**kwargs, **overrides})


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("pattern", ["random", "span"])
def test_masking_covers_the_ratio_asked_and_never_a_padding_only_token(pattern):
    config = tiny_config()
    frames = torch.tensor([32, 31, 9, 4, 1, 0])  # real frames per clip; the last is all padding
    attention_mask = (torch.arange(32)[None, :] < frames[:, None]).long()
    grid = token_grid(config, 32)
    assert grid == (1, 8)  # the stem's map: 16 / 4 mel rows, 32 / 4 time steps; patches 4 x 1
    valid = token_validity(config, attention_mask, grid, len(frames))
    # a token (4 frames) is valid when it sees a real frame; an all-padding clip counts as all real (the model's rule)
    assert valid.sum(dim=1).tolist() == [8, 8, 3, 1, 1, 8]
    for ratio in (0.5, 0.75, 0.9):
        for seed in range(5):
            mask = sample_token_mask(valid, grid, ratio, pattern, span_length=2,
                                     generator=torch.Generator().manual_seed(seed))
            assert not (mask & ~valid).any(), "a padding-only token was hidden"
            assert mask.sum(dim=1).tolist() == masked_counts(valid, ratio).tolist()
    assert masked_counts(valid, 0.75).tolist() == [6, 6, 2, 0, 0, 6]  # round(0.75 n), at most n - 1


def test_span_masking_hides_whole_time_steps_in_runs():
    config = tiny_config(num_mel_bins=32, patch_size=(4, 1))  # 2 frequency rows of tokens
    grid = token_grid(config, 64)
    assert grid == (2, 16)
    valid = torch.ones(64, grid[0] * grid[1], dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    span = sample_token_mask(valid, grid, 0.5, "span", span_length=4, generator=generator).reshape(64, *grid)
    random = sample_token_mask(valid, grid, 0.5, "random", generator=generator).reshape(64, *grid)
    # every row of a hidden time step is hidden (one partly hidden step at most, where the count ends)
    assert ((span[:, 0] != span[:, 1]).sum(dim=1) <= 1).all()
    def runs(mask):  # hidden runs along time in the first row
        row = mask[:, 0].int()
        return int((row[:, 1:] > row[:, :-1]).sum() + row[:, 0].sum())
    assert runs(span) < 0.6 * runs(random)


# --------------------------------------------------------------------------- the model


def test_hidden_audio_never_reaches_the_encoder():
    """The sparse conv stem: changing the hidden frames changes nothing the encoder computes, in training mode too
    (batch norm takes its statistics over visible positions only)."""
    torch.manual_seed(0)
    model = MaskedSpectrogramModel(AudioViTModel(tiny_config()), decoder_hidden_size=32, decoder_layers=1,
                                   decoder_heads=2).train()
    for module in model.modules():  # no dropout / stochastic depth in this comparison
        if hasattr(module, "drop_prob"):
            module.drop_prob = 0.0
    values = torch.randn(3, 16, 32)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, [1, 2, 5]] = True
    encoded = []
    hook = model.encoder.layernorm.register_forward_hook(lambda module, args, output: encoded.append(output.detach()))
    changed = values.clone()
    for token in (1, 2, 5):
        changed[:, :, 4 * token: 4 * token + 4] = torch.randn(3, 16, 4) * 10
    statistics = [model(v, mask) for v in (values, changed)]
    hook.remove()
    torch.testing.assert_close(encoded[0], encoded[1])
    assert statistics[0].loss != statistics[1].loss  # the targets did change


def test_reconstruction_loss_reads_hidden_audio_pixels_only():
    predictions, targets = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    weights = torch.ones(2, 4, 6)
    weights[1, 3, 3:] = 0  # half of a partly padded patch
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    loss = MaskedSpectrogramModel._reconstruction_loss(predictions, targets, weights, mask)
    moved = predictions.clone()
    moved[:, 1] += 100  # a visible patch
    moved[1, 3, 3:] += 100  # the padded half of a hidden patch
    assert MaskedSpectrogramModel._reconstruction_loss(moved, targets, weights, mask) == loss
    expected = torch.stack([(predictions[0, 0] - targets[0, 0]).square().mean(),
                            (predictions[0, 2] - targets[0, 2]).square().mean(),
                            (predictions[1, 3, :3] - targets[1, 3, :3]).square().mean()]).mean()
    torch.testing.assert_close(loss, expected)


def test_contrastive_term_picks_the_right_hidden_patch():
    targets = torch.randn(2, 5, 8)
    mask = torch.tensor([[True, True, False, True, False], [False, True, True, False, False]])
    # no visible token here: the hidden ones come first in the model's token order
    order = torch.argsort(torch.where(mask, 0, 1).to(torch.int8), dim=1, stable=True)
    visible = torch.zeros(2, dtype=torch.long)
    perfect, accuracy = MaskedSpectrogramModel._contrastive_loss(targets * 50, targets, order, visible, mask)
    assert accuracy == 1.0 and perfect < 1e-3
    shuffled, _ = MaskedSpectrogramModel._contrastive_loss(-targets * 50, targets, order, visible, mask)
    assert shuffled > 1.0


def test_model_refuses_overlapping_patches_and_hidden_padding():
    with pytest.raises(ValueError, match="non-overlapping"):
        MaskedSpectrogramModel(AudioViTModel(tiny_config(stem="patch", patch_size=(16, 4), time_stride=2)))
    model = MaskedSpectrogramModel(AudioViTModel(tiny_config()), decoder_hidden_size=32, decoder_heads=2)
    attention_mask = torch.ones(1, 32, dtype=torch.long)
    attention_mask[0, 8:] = 0
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 6] = True
    with pytest.raises(ValueError, match="padding-only"):
        model(torch.randn(1, 16, 32), mask, attention_mask)


# --------------------------------------------------------------------------- unlabeled sources


def test_unlabeled_sources_read_no_labels(tmp_path, fsdd_clips):
    import shutil

    nested = tmp_path / "folder" / "a" / "b"
    nested.mkdir(parents=True)
    for clip in fsdd_clips[:3]:
        shutil.copy(clip, nested / clip.name)
    shutil.copy(fsdd_clips[3], tmp_path / "folder" / fsdd_clips[3].name)  # at the top: a class folder reader skips it
    (tmp_path / "folder" / "notes.txt").write_text("not audio")
    manifest = build_manifest(DataArguments(data_dir=str(tmp_path / "folder")), unlabeled=True)
    assert len(manifest) == 4 and set(manifest.labels) == {UNLABELED} and manifest.label_names == [UNLABELED]
    assert [clip.file for clip in manifest.skipped] == ["notes.txt"]
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    with open(csv_dir / "metadata.csv", "w", newline="") as handle:  # no label column at all
        writer = csv.writer(handle)
        writer.writerow(["file_name", "fold"])
        writer.writerows([(str(clip), i % 2) for i, clip in enumerate(fsdd_clips)])
    manifest = build_manifest(DataArguments(data_dir=str(csv_dir)), unlabeled=True)
    assert len(manifest) == len(fsdd_clips) and manifest.folds == ["0", "1"] * 4
    with pytest.raises(Exception, match="label"):
        build_manifest(DataArguments(data_dir=str(csv_dir)))  # a classifier's reader still needs labels


def test_pretrain_options_that_do_not_apply_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--backbone"):
        parse_pretraining_args(["--data-dir", str(tmp_path), "--backbone", "timm"])
    with pytest.raises(ValueError, match="--labels"):
        parse_pretraining_args(["--data-dir", str(tmp_path), "--labels", "a,b"])
    with pytest.raises(ValueError, match="mask_pattern"):
        parse_pretraining_args(["--mask-pattern", "blocks"])
    _, data_args, args, explicit = parse_pretraining_args(["--data-dir", str(tmp_path), "--mask-ratio", "0.6"])
    assert data_args.test_fraction == data_args.validation_fraction == 0.0  # nothing held out of a plain folder
    assert args.mask_ratio == 0.6 and "mask_ratio" in explicit and "decoder_layers" not in explicit


# --------------------------------------------------------------------------- the loop and the encoder folder


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def pretrained(tones, tmp_path_factory):
    """An uninterrupted 6-epoch pretraining of the tiny ViT on the 24 training tones (3 steps an epoch)."""
    root = tmp_path_factory.mktemp("pretrain")
    argv = tiny_pretrain_argv(tones, root / "out", root / "cache", "--num-train-epochs", "6", "--contrastive-weight",
                              "0.5", "--mask-pattern", "span", "--mask-span-length", "2", "--drop-path-rate", "0.1")
    results = pretrain(*parse_pretraining_args(argv))
    return argv, root / "out", results


def test_pretraining_writes_an_encoder_folder_with_a_card(pretrained, tones):
    _, out, results = pretrained
    assert results["finished"] and results["epoch"] == 6 and results["num_clips"] == 24  # the split column's train
    config = read_json(out / "config.json")
    assert config["architectures"] == ["AudioViTModel"] and config["stem"] == "conv"
    assert config["pretraining"]["data"]["clips"] == 24 and config["pretraining"]["options"]["mask_pattern"] == "span"
    assert config["pretraining"]["data"]["left_out"] == {"validation": 12, "test": 12}
    features = read_json(out / "preprocessor_config.json")
    assert features["num_mel_bins"] == 16 and features["std"] != 1.0  # the pretraining clips' statistics
    card = (out / "README.md").read_text()
    assert "24 |" in card and "span" in card and "audio-vit train --model-name-or-path" in card
    assert not any(name.startswith(("decoder", "mask_token")) for name in load_file(out / "model.safetensors"))
    from transformers import AutoModel

    loaded = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert type(loaded).__name__ == "AudioViTModel"


def test_reconstruction_loss_falls_on_a_tiny_set(pretrained):
    _, out, _ = pretrained
    history = read_json(out / "trainer_state.json")["log_history"]
    assert [entry["epoch"] for entry in history] == list(range(1, 7))
    first, last = history[0], history[-1]
    assert last["reconstruction_loss"] < 0.9 * first["reconstruction_loss"]
    assert last["contrastive_loss"] < first["contrastive_loss"]


def test_the_saved_encoder_loads_into_the_classifier_with_every_tensor(pretrained):
    from audio_vit.training.components import encoder_with_new_head

    _, out, _ = pretrained
    model = encoder_with_new_head(str(out), {0: "high", 1: "low", 2: "mid"})
    saved = load_file(out / "model.safetensors")
    state = model.audio_vit.state_dict()
    assert set(state) == set(saved)  # every encoder tensor, batch-norm statistics included
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor), name
    assert model.config.num_labels == 3 and model.config.pretraining["data"]["clips"] == 24


def test_fine_tuning_from_the_pretrained_encoder_runs(pretrained, tones, tmp_path):
    from audio_vit.training import explicit_option_names

    _, out, _ = pretrained
    argv = ["--model-name-or-path", str(out), "--data-dir", str(tones), "--cache-dir", str(tmp_path / "cache"),
            "--output-dir", str(tmp_path / "ft"), "--num-train-epochs", "2", "--per-device-train-batch-size", "8",
            "--report-to", "none", "--disable-tqdm", "--log-examples", "0"]
    results = train(*parse_training_args(argv), explicit=explicit_option_names(argv))  # the recipe derives the rest
    assert results["finished"] and 0.0 <= results["test_accuracy"] <= 1.0
    config = read_json(tmp_path / "ft" / "config.json")
    assert config["architectures"] == ["AudioViTForAudioClassification"] and config["num_mel_bins"] == 16
    assert config["pretraining"]["data"]["clips"] == 24  # where its encoder came from
    recipe = read_json(tmp_path / "ft" / "recipe.json")
    assert recipe["transfer"]["start"].endswith("(new head)") and recipe["applied"]["head_only_epochs"] == 1


def test_resume_within_an_epoch_is_exact_and_max_minutes_stops_with_a_saved_encoder(pretrained, tmp_path):
    argv, uninterrupted, _ = pretrained
    argv = [str(tmp_path / "out") if a == str(uninterrupted) else a for a in argv]
    stopped = pretrain(*parse_pretraining_args(argv + ["--max-minutes", "0"]))  # spent after the first step
    assert stopped["stopped_by_time_budget"] and not stopped["finished"] and stopped["global_step"] == 1
    assert [p.name for p in list_checkpoints(tmp_path / "out")] == ["step_1"]
    assert AudioViTModel.from_pretrained(tmp_path / "out").config.pretraining["result"]["finished"] is False
    assert "time budget" in (tmp_path / "out" / "README.md").read_text()
    resumed = pretrain(*parse_pretraining_args(argv + ["--resume-from-checkpoint", "latest"]))
    assert resumed["finished"] and resumed["global_step"] == 18
    expected, got = load_file(uninterrupted / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert set(expected) == set(got)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    history = [read_json(folder / "trainer_state.json")["log_history"] for folder in (uninterrupted, tmp_path / "out")]
    for a, b in zip(*history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6), a["epoch"]
    with pytest.raises(FileExistsError, match="already holds a pretrained encoder"):
        pretrain(*parse_pretraining_args(argv))


def test_pretrain_command_prints_results(tones, tmp_path, capsys):
    from audio_vit.commands import pretrain as command

    argv = tiny_pretrain_argv(tones, tmp_path / "out", tmp_path / "cache", "--num-train-epochs", "1",
                              "--recipe", "none")
    assert command.main(argv) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["finished"] is True
    assert not (tmp_path / "out" / "recipe.json").exists()  # --recipe none derives nothing


def test_route_selection_can_offer_a_pretrained_encoder_as_its_start(pretrained, tones, tmp_path, monkeypatch):
    """The hook for an audio start: `audio_vit_folder_start` makes an encoder folder the `pretrained` candidate,
    fine-tuned with --model-name-or-path (the default candidates are untouched: `find_pretrained_start` offers none)."""
    from audio_vit.pretrained.starts import audio_vit_folder_start
    from audio_vit.training import explicit_option_names, route_selection, train_with_route

    _, out, _ = pretrained
    start = audio_vit_folder_start(out)
    assert (start.kind, start.weights, start.timm_model_name) == ("model_folder", str(out), None)
    monkeypatch.setattr(route_selection, "find_pretrained_start", lambda model_args: start)
    argv = ["--data-dir", str(tones), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "run"),
            *TINY_ENCODER, "--num-train-epochs", "2", "--per-device-train-batch-size", "8", "--report-to", "none",
            "--disable-tqdm", "--log-examples", "0"]
    results = train_with_route(*parse_training_args(argv), explicit=explicit_option_names(argv))
    record = results["route"]
    assert set(record["candidates"]) == {"scratch", "pretrained"} and record["pretrained_start"]["weights"] == str(out)
    pretrained_run = read_json(tmp_path / "run" / "routes" / "pretrained" / "config.json")
    assert pretrained_run["pretraining"]["data"]["clips"] == 24  # the candidate started from the encoder
    assert "pretraining" not in read_json(tmp_path / "run" / "routes" / "scratch" / "config.json")


def test_pretraining_under_accelerate_launch_with_two_processes(tones, tmp_path):
    """`accelerate launch --num_processes 2 scripts/pretrain.py` (two CPU processes, gloo): each trains on its share of
    every batch, the main process writes one encoder folder that loads."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "scripts/pretrain.py"]
    argv = tiny_pretrain_argv(tones, tmp_path / "out", tmp_path / "cache", "--num-train-epochs", "2",
                              "--save-steps", "1")
    result = subprocess.run([*launch, *argv], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"STDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-5000:]}"
    assert "on 2 process(es)" in result.stdout
    results = read_json(tmp_path / "out" / "all_results.json")
    assert results["finished"] and results["global_step"] == 4  # 24 clips, 8 a batch per process: 2 steps an epoch
    assert [entry["epoch"] for entry in read_json(tmp_path / "out" / "trainer_state.json")["log_history"]] == [1, 2]
    assert AudioViTModel.from_pretrained(tmp_path / "out").config.pretraining["result"]["finished"]


def test_the_corpus_builder_cuts_long_recordings_into_pieces_and_keeps_every_sample(tmp_path, monkeypatch):
    """scripts/build_general_audio_corpus.py: a 70.5 s recording -> 30 + 30 + 10.5 s FLAC pieces (a last piece under
    1 s would join the one before), every sample written once."""
    import importlib.util
    import sys
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    spec = importlib.util.spec_from_file_location(
        "build_general_audio_corpus", Path(__file__).resolve().parents[1] / "scripts" / "build_general_audio_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, corpus)  # its dataclasses look their module up there
    spec.loader.exec_module(corpus)
    rate = 8000
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, int(70.5 * rate)).astype(np.float32)
    pieces = corpus.write_pieces(audio, rate, tmp_path / "long", max_seconds=30.0)
    assert [round(seconds, 3) for _, seconds in pieces] == [30.0, 30.0, 10.5]
    joined = np.concatenate([sf.read(str(path), dtype="float32")[0] for path, _ in pieces])
    np.testing.assert_allclose(joined, audio, atol=1 / 32768)  # 16-bit FLAC
    short_tail = corpus.write_pieces(audio[: int(60.5 * rate)], rate, tmp_path / "tail", max_seconds=30.0)
    assert [round(seconds, 3) for _, seconds in short_tail] == [30.0, 30.5]
