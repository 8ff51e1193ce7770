"""timm backbones: construction, forward/backward, save/load, weight adaptation, fine-tuning controls.

Tiny inputs (32 mel bins x 64 frames, 3 labels); the models are timm's small ones, built once per module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForAudioClassification, pipeline

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification, AudioViTModel
from audio_vit.models.audio_vit.modeling_timm_encoder import SpectrogramPatchEmbed, TimmBackbone
from audio_vit.pretrained.weights import (
    PretrainedLoadReport,
    load_pretrained_backbone,
    read_pretrained_state_dict,
    reduce_stem,
    resize_patch_position_embeddings,
    timm_network,
)
from audio_vit.training.param_groups import (
    HeadOnlyThenUnfreeze,
    classifier_parameter_names,
    freeze_backbone,
    layerwise_lr_param_groups,
)
from tests.conftest import tiny_config_kwargs

MELS, FRAMES, LABELS = 32, 64, 3
# ViT/DeiT patches: 16x16; DeiT overlaps them (stride 8 along mel, 12 along time) as AST does.
BACKBONES = {
    "resnet18": dict(patch_size=16),
    "mobilenetv2_100": dict(patch_size=16),
    "efficientnet_b0": dict(patch_size=16),
    "vit_tiny_patch16_224": dict(patch_size=16),
    "deit_tiny_distilled_patch16_224": dict(patch_size=16, frequency_stride=8, time_stride=12),
}
VITS = ("vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224")


def timm_config(name: str, **overrides) -> AudioViTConfig:
    kwargs = dict(num_mel_bins=MELS, max_length=FRAMES, num_labels=LABELS, backbone="timm", timm_model_name=name)
    kwargs.update(BACKBONES[name])
    kwargs.update(overrides)
    return AudioViTConfig(**kwargs)


@pytest.fixture(scope="module")
def models():
    """One tiny classifier per backbone, in eval mode (tests that train switch mode and restore it)."""
    built = {}
    for index, name in enumerate(BACKBONES):
        torch.manual_seed(index)
        built[name] = AudioViTForAudioClassification(timm_config(name)).eval()
    return built


@pytest.fixture(scope="module")
def batch():
    return torch.randn(2, MELS, FRAMES, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(BACKBONES))
def test_forward_backward_shapes(models, batch, name):
    model = models[name]
    assert isinstance(model.audio_vit.timm_backbone, TimmBackbone)
    network = timm_network(model)
    assert network.num_classes == LABELS
    assert next(network.parameters()).shape[1] == 1  # 1-channel stem
    pooled = model.forward_features(batch)
    assert pooled.shape == (2, network.num_features)
    outputs = model.audio_vit(batch)
    assert torch.equal(outputs.pooler_output, pooled)

    model.train()
    try:
        out = model(batch, labels=torch.tensor([0, 2]))
        assert out.logits.shape == (2, LABELS) and torch.isfinite(out.logits).all()
        model.zero_grad()
        out.loss.backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    finally:
        model.zero_grad()
        model.eval()
    # (B, M, T) and (B, 1, M, T) are the same input
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, model(batch[:, None]).logits, atol=1e-6)


def test_vit_geometry_follows_config(models):
    vit = timm_network(models["vit_tiny_patch16_224"])
    assert isinstance(vit.patch_embed, SpectrogramPatchEmbed)
    assert vit.patch_embed.grid_size == (2, 4) and vit.pos_embed.shape == (1, 1 + 8, 192)
    deit = timm_network(models["deit_tiny_distilled_patch16_224"])
    # overlapping patches: ((32 - 16) // 8 + 1, (64 - 16) // 12 + 1) = (3, 5); cls + dist tokens first
    assert deit.patch_embed.grid_size == (3, 5) and deit.pos_embed.shape == (1, 2 + 15, 192)
    assert deit.patch_embed.proj.stride == (8, 12)
    # timm_kwargs win: patch 8x8, non-overlapping
    small = AudioViTForAudioClassification(timm_config("vit_tiny_patch16_224", timm_kwargs={"patch_size": 8}))
    assert timm_network(small).patch_embed.grid_size == (4, 8)


@pytest.mark.parametrize("name", VITS)
def test_vit_other_clip_lengths(models, name):
    model = models[name]
    network = timm_network(model)
    with torch.no_grad():
        for frames in (50, 100):  # 50 is not a multiple of the patch width or stride
            x = torch.randn(2, MELS, frames)
            logits = model(x).logits
            assert logits.shape == (2, LABELS) and torch.isfinite(logits).all()
            tokens = model.audio_vit.forward_features(x)
            grid = network.patch_embed.dynamic_feat_size((MELS, frames))
            assert tokens.shape == (2, network.num_prefix_tokens + grid[0] * grid[1], 192)
        with pytest.raises(ValueError, match="smaller than one patch"):
            model(torch.randn(1, MELS, 8))


def test_deit_logits_average_both_heads(models, batch):
    model = models["deit_tiny_distilled_patch16_224"]
    network = timm_network(model)
    with torch.no_grad():
        tokens = network.forward_features(batch[:, None])  # (B, 1, M, T)
        expected = (network.head(tokens[:, 0]) + network.head_dist(tokens[:, 1])) / 2
        assert torch.allclose(model(batch).logits, expected, atol=1e-6)
        network.set_distilled_training(True)
        model.train()
        try:  # timm returns a (cls, dist) tuple here; the model still gives one logits tensor
            assert torch.allclose(model(batch).logits, expected, atol=1e-5)
        finally:
            network.set_distilled_training(False)
            model.eval()


@pytest.mark.parametrize("name", list(BACKBONES))
def test_save_load_round_trip(models, batch, name, tmp_path):
    model = models[name]
    model.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, AudioViTForAudioClassification)
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, loaded(batch).logits, atol=1e-5)
    for key, value in model.state_dict().items():  # BatchNorm running statistics included
        assert torch.equal(value, loaded.state_dict()[key]), key
    bare = AudioViTModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(bare(batch).pooler_output, model.forward_features(batch), atol=1e-5)


def test_timm_init_is_kept_not_overwritten():
    # resnet's kaiming init (std sqrt(2 / fan_out)) must survive PreTrainedModel.post_init
    model = AudioViTForAudioClassification(timm_config("resnet18"))
    conv1 = timm_network(model).conv1.weight
    fan_out = conv1.shape[0] * conv1.shape[2] * conv1.shape[3]
    assert abs(conv1.std().item() - (2.0 / fan_out) ** 0.5) < 0.005


def test_config_errors():
    with pytest.raises(ValueError, match="in_chans"):
        AudioViTForAudioClassification(timm_config("resnet18", timm_kwargs={"in_chans": 3}))
    with pytest.raises(ValueError, match="patch_stride"):
        AudioViTForAudioClassification(timm_config("resnet18", timm_kwargs={"patch_stride": 4}))
    with pytest.raises(ValueError, match="mel bins"):
        AudioViTForAudioClassification(timm_config("resnet18"))(torch.randn(1, 16, FRAMES))


# ----------------------------------------------------------------------------------------------
# Pretrained weights: a 3-channel "ImageNet" timm model saved locally, then adapted
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory):
    """3-channel, 1000-class timm models saved the two ways the loader reads (no download)."""
    out = tmp_path_factory.mktemp("imagenet")
    files = {}
    for seed, name in enumerate(("resnet18", "deit_tiny_distilled_patch16_224")):
        torch.manual_seed(100 + seed)
        state = timm.create_model(name, pretrained=False).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, out / f"{name}.safetensors")
        torch.save({"state_dict": state, "epoch": 3}, out / f"{name}.pth")
        files[name] = state
    return out, files


@pytest.mark.parametrize("suffix,reduction", [(".safetensors", "sum"), (".pth", "mean")])
def test_load_deit_adapts_stem_and_positions(imagenet_weights, suffix, reduction):
    folder, states = imagenet_weights
    original = states["deit_tiny_distilled_patch16_224"]
    model = AudioViTForAudioClassification(timm_config("deit_tiny_distilled_patch16_224")).eval()
    report = load_pretrained_backbone(
        model, folder / f"deit_tiny_distilled_patch16_224{suffix}", stem_reduction=reduction
    )
    network = timm_network(model)
    assert isinstance(report, PretrainedLoadReport)

    stem = original["patch_embed.proj.weight"]  # (192, 3, 16, 16)
    expected_stem = stem.sum(1, keepdim=True) if reduction == "sum" else stem.mean(1, keepdim=True)
    assert torch.allclose(network.patch_embed.proj.weight, expected_stem, atol=1e-6)

    # cls and dist positions kept; the 14x14 ImageNet grid becomes the 3x5 (mel x time) grid
    pos = original["pos_embed"]
    assert torch.equal(network.pos_embed[:, :2], pos[:, :2])
    grid = pos[:, 2:].reshape(1, 14, 14, 192).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(3, 5), mode="bicubic", antialias=True, align_corners=False)
    assert torch.allclose(network.pos_embed[:, 2:], expected.permute(0, 2, 3, 1).reshape(1, 15, 192), atol=1e-6)

    assert torch.equal(network.dist_token, original["dist_token"])  # distillation token kept
    assert torch.equal(network.cls_token, original["cls_token"])
    assert torch.equal(network.blocks[1].attn.qkv.weight, original["blocks.1.attn.qkv.weight"])
    assert set(report.adapted) == {"patch_embed.proj.weight", "pos_embed"}
    # 1000-class heads do not fit 3 labels: skipped and reported, the fresh 3-label heads stay
    assert set(report.skipped) == {"head.weight", "head.bias", "head_dist.weight", "head_dist.bias"}
    assert "(1000, 192)" in report.skipped["head.weight"] and network.head.weight.shape == (LABELS, 192)
    assert report.missing == [] and report.unexpected == []
    assert "skipped head.weight" in str(report) and report.to_dict()["source"].endswith(suffix)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, MELS, 80)).logits).all()


def test_load_resnet_stem_sum_heads_and_batchnorm(imagenet_weights, tmp_path):
    folder, states = imagenet_weights
    original = states["resnet18"]
    model = AudioViTForAudioClassification(timm_config("resnet18"))
    report = load_pretrained_backbone(model, folder / "resnet18.safetensors")
    network = timm_network(model)
    assert torch.allclose(network.conv1.weight, original["conv1.weight"].sum(1, keepdim=True), atol=1e-6)
    assert torch.equal(network.layer2[0].bn1.running_var, original["layer2.0.bn1.running_var"])
    assert set(report.skipped) == {"fc.weight", "fc.bias"} and report.adapted == {
        "conv1.weight": "sum of 3 input channels"
    }

    # a source with the same number of classes brings its head along
    same = timm.create_model("resnet18", pretrained=False, num_classes=LABELS).state_dict()
    save_file(same, tmp_path / "three.safetensors")
    report = load_pretrained_backbone(model, tmp_path / "three.safetensors", stem_reduction="mean")
    assert not report.skipped and "fc.weight" in report.loaded
    assert torch.equal(network.fc.weight, same["fc.weight"])


def test_pos_embed_crop_mode_and_stride():
    # AST's recipe: centre crop where the new grid is smaller, interpolate where it is larger
    pos = torch.randn(1, 1 + 14 * 14, 8)
    cropped = resize_patch_position_embeddings(pos, (3, 5), 1, mode="crop")
    expected = pos[:, 1:].reshape(14, 14, 8)[6:9, 5:10].reshape(1, 15, 8)
    assert torch.equal(cropped[:, :1], pos[:, :1]) and torch.equal(cropped[:, 1:], expected)
    wider = resize_patch_position_embeddings(pos, (3, 20), 1, mode="crop")
    rows = pos[:, 1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2)[:, :, 6:9]
    expected = F.interpolate(rows, size=(3, 20), mode="bilinear", align_corners=False)
    assert torch.allclose(wider[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 60, 8), atol=1e-6)
    with pytest.raises(ValueError, match="square"):
        resize_patch_position_embeddings(torch.randn(1, 1 + 15, 8), (3, 5), 1)


def test_load_vit_with_other_patch_size_and_crop(imagenet_weights, tmp_path):
    """A ViT with 16x16 ImageNet patches loaded into 8x8 patches (FlexiViT resampling) and cropped positions."""
    torch.manual_seed(7)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    model = AudioViTForAudioClassification(timm_config("vit_tiny_patch16_224", patch_size=8))
    report = load_pretrained_backbone(model, tmp_path / "vit.pth", pos_embed_resize="crop")
    network = timm_network(model)
    assert network.patch_embed.proj.weight.shape == (192, 1, 8, 8)
    assert "patch kernel resampled (16, 16) -> (8, 8)" in report.adapted["patch_embed.proj.weight"]
    expected = resize_patch_position_embeddings(vit.pos_embed.detach(), (4, 8), 1, mode="crop")
    assert torch.equal(network.pos_embed, expected)


def test_pos_embed_resized_when_only_the_count_matches(tmp_path):
    # 14 x 14 ImageNet positions and a 4 x 49 (mel x time) grid have the same length: still resized
    torch.manual_seed(3)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    model = AudioViTForAudioClassification(timm_config("vit_tiny_patch16_224", patch_size=8, max_length=49 * 8))
    network = timm_network(model)
    assert network.patch_embed.grid_size == (4, 49) and network.pos_embed.shape == vit.pos_embed.shape
    report = load_pretrained_backbone(model, vit.state_dict())
    assert report.adapted["pos_embed"].startswith("interpolate (14, 14) -> (4, 49)")
    expected = resize_patch_position_embeddings(vit.pos_embed.detach(), (4, 49), 1)
    assert torch.equal(network.pos_embed, expected) and not torch.equal(network.pos_embed, vit.pos_embed)


def test_sources_hub_cache_and_errors(imagenet_weights, tmp_path, monkeypatch):
    import huggingface_hub.constants

    folder, states = imagenet_weights
    # An HF cache entry, as `hf_hub_download` leaves it; read with HF_HUB_OFFLINE=1 (no request is made).
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--timm--resnet18.fake"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes((folder / "resnet18.safetensors").read_bytes())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for source in ("hf-hub:timm/resnet18.fake", "timm/resnet18.fake"):
        state = read_pretrained_state_dict(source, cache_dir=tmp_path / "hub")
        assert torch.equal(state["conv1.weight"], states["resnet18"]["conv1.weight"])
    with pytest.raises(OSError, match="timm/not-cached"):
        read_pretrained_state_dict("hf-hub:timm/not-cached", cache_dir=tmp_path / "hub")

    # a directory holding model.safetensors, e.g. a saved AudioViT checkpoint: prefixes are stripped
    model = AudioViTForAudioClassification(timm_config("resnet18"))
    model.save_pretrained(tmp_path / "audio")
    state = read_pretrained_state_dict(tmp_path / "audio")
    assert torch.equal(state["conv1.weight"], timm_network(model).conv1.weight)

    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_pretrained_state_dict(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="timm model name"):
        read_pretrained_state_dict("no_such_architecture_xyz")
    with pytest.raises(ValueError, match="stem_reduction"):
        load_pretrained_backbone(model, folder / "resnet18.pth", stem_reduction="max")
    with pytest.raises(ValueError, match="no timm backbone"):
        load_pretrained_backbone(AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs())), folder / "resnet18.pth")


class NotATensor:
    def __reduce__(self):  # would run `print` when unpickled without weights_only
        return (print, ("unpickled!",))


def test_pth_is_never_unpickled(tmp_path):
    torch.save({"conv1.weight": torch.zeros(1), "evil": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="(?i)weights.only|unpickl|unsupported"):
        read_pretrained_state_dict(tmp_path / "evil.pth")


def test_reduce_stem_values():
    weight = torch.arange(24.0).reshape(2, 3, 2, 2)
    assert torch.equal(reduce_stem(weight, "sum"), weight.sum(1, keepdim=True))
    assert torch.equal(reduce_stem(weight, "mean"), weight.mean(1, keepdim=True))


# ----------------------------------------------------------------------------------------------
# Fine-tuning controls
# ----------------------------------------------------------------------------------------------


def test_freeze_backbone_and_schedule(batch):
    model = AudioViTForAudioClassification(timm_config("deit_tiny_distilled_patch16_224"))
    head = classifier_parameter_names(model)
    assert sorted(head) == sorted(
        f"audio_vit.timm_backbone.model.{m}.{p}" for m in ("head", "head_dist") for p in ("weight", "bias")
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # all parameters, frozen or not
    schedule = HeadOnlyThenUnfreeze(model, head_only_epochs=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for epoch, expect_frozen in ((0, True), (1, True)):
        assert schedule.on_epoch_start(epoch) is expect_frozen
        assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == sorted(head)
        optimizer.zero_grad(set_to_none=True)
        model(batch, labels=torch.tensor([0, 1])).loss.backward()
        optimizer.step()
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]) != (name in head), name  # only the heads moved
    assert schedule.on_epoch_start(2) is False
    assert all(p.requires_grad for p in model.parameters())
    optimizer.zero_grad(set_to_none=True)
    model(batch, labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    assert not torch.equal(timm_network(model).blocks[0].mlp.fc1.weight, before["audio_vit.timm_backbone.model.blocks.0.mlp.fc1.weight"])

    scratch = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs()))
    trainable = freeze_backbone(scratch)
    assert trainable == ["classifier.1.weight", "classifier.1.bias"]
    assert len(freeze_backbone(scratch, freeze=False)) == len(list(scratch.parameters()))
    resnet = AudioViTForAudioClassification(timm_config("resnet18"))
    assert freeze_backbone(resnet) == ["audio_vit.timm_backbone.model.fc.weight", "audio_vit.timm_backbone.model.fc.bias"]
    with pytest.raises(ValueError, match="head_only_epochs"):
        HeadOnlyThenUnfreeze(resnet, -1)


def _lr_of(groups, param) -> tuple[float, float]:
    for group in groups:
        if any(p is param for p in group["params"]):
            return group["lr"], group["weight_decay"]
    raise AssertionError("parameter in no group")


def test_layerwise_lr_scratch_vit():
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs()))  # 2 layers
    groups = layerwise_lr_param_groups(model, base_lr=1.0, decay=0.5, weight_decay=0.1)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len({id(p) for g in groups for p in g["params"]}) == len(list(model.parameters()))
    vit = model.audio_vit
    assert _lr_of(groups, model.classifier[1].weight) == (1.0, 0.1)
    assert _lr_of(groups, vit.layernorm.weight) == (1.0, 0.0)
    assert _lr_of(groups, vit.layers[1].mlp.fc1.weight) == (0.5, 0.1)
    assert _lr_of(groups, vit.layers[1].mlp.fc1.bias) == (0.5, 0.0)
    assert _lr_of(groups, vit.layers[0].attention.qkv.weight) == (0.25, 0.1)
    assert _lr_of(groups, vit.embeddings.patch_embeddings.projection.weight) == (0.125, 0.1)
    assert _lr_of(groups, vit.embeddings.position_embeddings) == (0.125, 0.0)
    assert _lr_of(groups, vit.embeddings.cls_token) == (0.125, 0.0)
    torch.optim.AdamW(groups)  # accepted as is


def test_layerwise_lr_timm_backbones(models):
    deit = models["deit_tiny_distilled_patch16_224"]
    network = timm_network(deit)
    groups = layerwise_lr_param_groups(deit, base_lr=1.0, decay=0.5, weight_decay=0.05)
    depth = len(network.blocks)  # 12
    assert _lr_of(groups, network.head.weight) == (1.0, 0.05)
    assert _lr_of(groups, network.blocks[depth - 1].attn.qkv.weight) == (0.5, 0.05)
    assert _lr_of(groups, network.blocks[0].attn.qkv.weight) == (0.5**depth, 0.05)
    assert _lr_of(groups, network.patch_embed.proj.weight) == (0.5 ** (depth + 1), 0.05)
    for token in (network.pos_embed, network.cls_token, network.dist_token):
        assert _lr_of(groups, token) == (0.5 ** (depth + 1), 0.0)
    resnet = models["resnet18"]
    groups = layerwise_lr_param_groups(resnet, base_lr=1.0, decay=0.5)
    net = timm_network(resnet)
    assert _lr_of(groups, net.fc.weight)[0] == 1.0
    assert _lr_of(groups, net.conv1.weight)[0] < _lr_of(groups, net.layer4[1].conv2.weight)[0] < 1.0
    assert sum(len(g["params"]) for g in groups) == len(list(resnet.parameters()))
    with pytest.raises(ValueError, match="decay"):
        layerwise_lr_param_groups(resnet, base_lr=1.0, decay=0.0)


def test_accelerate_step(batch):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = AudioViTForAudioClassification(timm_config("mobilenetv2_100"))
    optimizer = torch.optim.AdamW(layerwise_lr_param_groups(model, base_lr=1e-3, decay=0.8))
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    before = timm_network(accelerator.unwrap_model(model)).conv_stem.weight.detach().clone()
    loss = model(batch, labels=torch.tensor([1, 2])).loss
    accelerator.backward(loss)
    optimizer.step()
    assert not torch.equal(timm_network(accelerator.unwrap_model(model)).conv_stem.weight, before)


# ----------------------------------------------------------------------------------------------
# Loading where audio_vit is not installed, offline: the whole timm network is in the checkpoint
# ----------------------------------------------------------------------------------------------

REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    try:
        import audio_vit  # noqa: F401  (the fake package on PYTHONPATH raises ImportError)
        raise SystemExit("audio_vit should not be importable here")
    except ImportError:
        pass
    from transformers import AutoModelForAudioClassification, pipeline

    model_dir, x_path = sys.argv[1], sys.argv[2]
    model = AutoModelForAudioClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(x_path))).logits
    classifier = pipeline("audio-classification", model=model_dir, trust_remote_code=True, top_k=2)
    predictions = classifier(np.random.default_rng(0).standard_normal(16000).astype("float32") * 0.1)
    print(json.dumps({"module": type(model).__module__, "logits": logits.tolist(),
                      "labels": [p["label"] for p in predictions]}))
    """
)


def test_pretrained_checkpoint_loads_offline_without_audio_vit(imagenet_weights, tmp_path):
    folder, _ = imagenet_weights
    id2label = {0: "yes", 1: "no", 2: "maybe"}
    model = AudioViTForAudioClassification(
        timm_config("deit_tiny_distilled_patch16_224", id2label=id2label, label2id={v: k for k, v in id2label.items()})
    ).eval()
    load_pretrained_backbone(model, folder / "deit_tiny_distilled_patch16_224.safetensors")
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    AudioViTFeatureExtractor(num_mel_bins=MELS, max_length=FRAMES).save_pretrained(checkpoint)
    # the network code travels with the weights; pretrained-weight loading and training code do not
    assert (checkpoint / "modeling_timm_encoder.py").is_file() and (checkpoint / "modeling_layers.py").is_file()
    assert not (checkpoint / "pretrained_weights.py").exists() and not (checkpoint / "backbones.py").exists()

    x = torch.randn(2, MELS, FRAMES)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        expected = model(x).logits
    # The pipeline in this process, after `import audio_vit`
    in_process = pipeline("audio-classification", model=str(checkpoint), top_k=2)
    assert {p["label"] for p in in_process(np.zeros(8000, dtype="float32"))} <= set(id2label.values())

    blocker = tmp_path / "blocker" / "audio_vit"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('audio_vit is blocked in this test')\n")
    (tmp_path / "remote.py").write_text(REMOTE_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(blocker.parent), HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "remote.py"), str(checkpoint), str(tmp_path / "x.npy")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["module"].startswith("audio_vit")
    assert np.allclose(report["logits"], expected.numpy(), atol=1e-5)
    assert set(report["labels"]) <= set(id2label.values())


def test_timm_is_optional_for_scratch_checkpoints(monkeypatch):
    """modeling_timm_encoder.py travels with every checkpoint; remote-code loading must not demand timm for a scratch model."""
    from transformers.dynamic_module_utils import get_imports

    import audio_vit.models.audio_vit.modeling_timm_encoder as timm_encoder

    assert "timm" not in get_imports(timm_encoder.__file__)
    monkeypatch.setattr(timm_encoder, "timm", None)
    with pytest.raises(ImportError, match="pip install timm"):
        AudioViTForAudioClassification(timm_config("resnet18"))


# ----------------------------------------------------------------------------------------------
# One model type, two encoders; declarations the training code reads
# ----------------------------------------------------------------------------------------------


def test_audio_vit_model_builds_the_timm_encoder_for_timm_configs():
    from audio_vit.models.audio_vit.modeling_audio_vit import AudioViTTimmModel

    bare = AudioViTModel(timm_config("resnet18"))
    assert isinstance(bare, AudioViTTimmModel) and isinstance(bare, AudioViTModel)
    assert type(AudioViTModel(AudioViTConfig(**tiny_config_kwargs()))) is AudioViTModel


def test_timm_vit_attention_mask_ignores_padding(models):
    """Token-pooled timm ViT, patches not overlapping the padding: with a frame mask, whatever sits in the
    padding cannot change the logits (overlapping patches, as in the DeiT here, see a little of it)."""
    model = models["vit_tiny_patch16_224"]
    clip = torch.randn(1, MELS, 48, generator=torch.Generator().manual_seed(1))
    padded_a = torch.cat([clip, torch.zeros(1, MELS, 16)], dim=-1)
    padded_b = torch.cat([clip, 5 * torch.randn(1, MELS, 16)], dim=-1)
    mask = torch.cat([torch.ones(1, 48), torch.zeros(1, 16)], dim=-1).long()
    with torch.no_grad():
        logits_a = model(padded_a, attention_mask=mask).logits
        logits_b = model(padded_b, attention_mask=mask).logits
        assert torch.allclose(logits_a, logits_b, atol=1e-5)
        assert not torch.allclose(model(padded_a).logits, model(padded_b).logits, atol=1e-3)
        # an all-ones mask changes nothing
        torch.testing.assert_close(model(padded_a, attention_mask=torch.ones(1, 64)).logits, model(padded_a).logits)


def test_timm_cnn_attention_mask_pools_over_real_frames(models):
    model = models["resnet18"]
    backbone = model.audio_vit.timm_backbone
    x = torch.randn(2, MELS, FRAMES, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, FRAMES, dtype=torch.long)
    mask[1, 32:] = 0  # the second clip: half real audio
    with torch.no_grad():
        features = backbone.model.forward_features(x.unsqueeze(1))  # (B, C, h, w)
        width = features.shape[-1]
        expected = torch.stack([features[0].mean(dim=(1, 2)), features[1, :, :, : width // 2].mean(dim=(1, 2))])
        pooled = model.audio_vit(x, attention_mask=mask).pooler_output
        torch.testing.assert_close(pooled, expected)
        torch.testing.assert_close(model(x, attention_mask=mask).logits[0], model(x[:1]).logits[0])


def test_weight_decay_rule_is_the_models_declaration(models):
    from audio_vit.training.param_groups import no_decay_parameter_names, parameter_groups

    scratch = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs()))
    assert scratch.no_weight_decay() == {"audio_vit.embeddings.cls_token", "audio_vit.embeddings.position_embeddings"}
    deit = models["deit_tiny_distilled_patch16_224"]
    prefix = "audio_vit.timm_backbone.model."
    assert {prefix + n for n in ("pos_embed", "cls_token", "dist_token")} <= deit.no_weight_decay()
    for model in (scratch, deit, models["resnet18"]):
        no_decay = no_decay_parameter_names(model)
        plain = parameter_groups(model, weight_decay=0.1)
        assert {id(p) for p in plain[1]["params"]} == {id(p) for n, p in model.named_parameters() if n in no_decay}
        layered = layerwise_lr_param_groups(model, base_lr=1.0, decay=0.5, weight_decay=0.1)
        decayed = {id(p) for group in layered if group["weight_decay"] > 0 for p in group["params"]}
        assert decayed == {id(p) for p in plain[0]["params"]}  # --layer-decay does not change which parameters decay
    heads = classifier_parameter_names(deit)
    assert heads and all(".head" in name for name in heads)
