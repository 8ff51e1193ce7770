"""Training with timm backbones: explicit pretrained weights, head-only epochs, frozen backbones, layer decay."""
from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from audio_vit.training import parse_training_args, train
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv

RESNET = ["--backbone", "timm", "--timm-model-name", "resnet18"]


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def imagenet_like_weights(tmp_path_factory):
    """A 3-channel resnet18 state dict saved locally, standing in for downloaded ImageNet weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    save_file(timm.create_model("resnet18", pretrained=False).state_dict(), str(path))
    return path


def saved_weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_pretrained_backbone_head_only_then_unfreeze(tone_data, imagenet_like_weights, tmp_path):
    source = load_file(str(imagenet_like_weights))
    out = tmp_path / "out"
    argv = tiny_train_argv(tone_data, out, tmp_path / "cache", *RESNET,
                           "--pretrained-backbone", str(imagenet_like_weights), "--stem-reduction", "mean",
                           "--head-only-epochs", "1", "--layer-decay", "0.8", "--num-train-epochs", "2")

    # Epoch 1 trains the head only: the saved backbone is exactly the adapted pretrained one.
    train(*parse_training_args(argv + ["--max-epochs-this-run", "1"]))
    after_head_only = saved_weights(out)
    stem = after_head_only["audio_vit.timm_backbone.model.conv1.weight"]
    assert torch.equal(stem, source["conv1.weight"].mean(dim=1, keepdim=True))
    assert torch.equal(after_head_only["audio_vit.timm_backbone.model.layer4.1.conv2.weight"],
                       source["layer4.1.conv2.weight"])
    assert not torch.equal(after_head_only["audio_vit.timm_backbone.model.fc.weight"][:1], source["fc.weight"][:1])
    report = read_json(out / "pretrained_backbone.json")
    assert any("conv1.weight" in key for key in report["adapted"])
    assert any("fc." in key for key in report["skipped"])  # 1000-class head: shape differs, not loaded

    # Epoch 2 (resumed) trains everything.
    train(*parse_training_args(argv + ["--resume-from-checkpoint", "latest"]))
    state = read_json(out / "trainer_state.json")
    assert [e["epoch"] for e in state["log_history"]] == [1, 2]
    final = saved_weights(out)
    if state["best_epoch"] == 2:
        assert not torch.equal(final["audio_vit.timm_backbone.model.layer4.1.conv2.weight"],
                               source["layer4.1.conv2.weight"])


def test_frozen_backbone_stays_frozen(tone_data, imagenet_like_weights, tmp_path):
    source = load_file(str(imagenet_like_weights))
    out = tmp_path / "out"
    argv = tiny_train_argv(tone_data, out, tmp_path / "cache", *RESNET,
                           "--pretrained-backbone", str(imagenet_like_weights), "--freeze-backbone",
                           "--num-train-epochs", "1")
    results = train(*parse_training_args(argv))
    assert results["finished"]
    weights = saved_weights(out)
    assert torch.equal(weights["audio_vit.timm_backbone.model.layer1.0.conv1.weight"], source["layer1.0.conv1.weight"])
    assert torch.equal(weights["audio_vit.timm_backbone.model.conv1.weight"],
                       source["conv1.weight"].sum(dim=1, keepdim=True))  # default stem reduction: sum


def test_timm_kwargs_and_bad_combinations(tone_data, imagenet_like_weights, tmp_path):
    model_args, *_ = parse_training_args(["--timm-kwargs", '{"drop_rate": 0.2}', *RESNET])
    assert model_args.config_kwargs()["timm_kwargs"] == {"drop_rate": 0.2}
    with pytest.raises(ValueError, match="is not a JSON object"):
        parse_training_args(["--timm-kwargs", "drop_rate=0.2"])[0].config_kwargs()

    trained = tmp_path / "trained"
    train(*parse_training_args(tiny_train_argv(tone_data, trained, tmp_path / "cache",
                                                           "--num-train-epochs", "1")))
    argv = tiny_train_argv(tone_data, tmp_path / "out", tmp_path / "cache", "--model-name-or-path", str(trained),
                           "--pretrained-backbone", str(imagenet_like_weights))
    with pytest.raises(ValueError, match="cannot be combined with --model-name-or-path"):
        train(*parse_training_args(argv))
