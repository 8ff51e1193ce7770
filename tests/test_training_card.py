"""The end of training: the best model folder is complete, with a model card built from the measured results."""
from __future__ import annotations

from huggingface_hub import ModelCard

from audio_vit.training import parse_training_args, train
from test_training_helpers import make_tone_dataset, read_json, tiny_train_argv


def test_training_writes_a_model_card_with_the_test_results(tmp_path):
    data = make_tone_dataset(tmp_path / "tones")
    out = tmp_path / "out"
    train(*parse_training_args(tiny_train_argv(data, out, tmp_path / "cache", "--num-train-epochs", "2")))

    assert not (out / ".tmp_best_model").exists()  # the staging folder of the atomic best-model save is gone
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md",
            "confusion_matrix.png"} <= {p.name for p in out.iterdir()}
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "audio-classification"
    test = read_json(out / "test_results.json")
    results = card.data.eval_results
    accuracy = next(r for r in results if r.metric_type == "accuracy")
    assert abs(accuracy.metric_value - test["accuracy"]) < 1e-3
    assert "confusion_matrix.png" in card.text and "trust_remote_code" in card.text
