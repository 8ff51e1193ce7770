"""Sharing: model cards, checked loading (bad folders, pickles), push (dry run, real path with a fake API), hub cache."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification
from audio_vit.classification_report import plot_confusion_matrix
from audio_vit.hub.sharing import check_shareable_folder, place_in_hub_cache, push_folder, upload_file_list
from audio_vit.model_folder import (
    ModelFolderError,
    is_model_folder,
    load_feature_extractor,
    load_model,
    require_model_folder,
)
from audio_vit.hub.model_card import (
    PACKAGED_TEMPLATE,
    SOURCE_TEMPLATE,
    build_model_card,
    validate_model_card,
    write_model_card,
)
from audio_vit.hub.model_card_tables import parse_results
from tests.conftest import REPO_ROOT, tiny_config_kwargs

LABELS = ["zero", "one", "two"]
# what training writes to test_results.json (audio_vit/training/trainer.py)
RESULTS = {
    "accuracy": 0.9,
    "f1": 0.8812,
    "loss": 0.3141,
    "num_samples": 30,
    "labels": LABELS,
    "confusion_matrix": [[9, 1, 0], [0, 10, 0], [1, 1, 8]],
    "best_epoch": 3,
}
# what training writes to data_report.json (DataReport.to_dict())
DATA_REPORT = {
    "source": "metadata.csv", "split_strategy": "column 'split'", "num_labels": 3,
    "id2label": {"0": "zero", "1": "one", "2": "two"}, "num_clips": {"train": 240, "test": 30},
    "counts": {"train": {"zero": 80, "one": 80, "two": 80}, "test": {"zero": 10, "one": 10, "two": 10}},
    "durations": {"train": {"min": 0.14, "mean": 0.44, "max": 2.28, "total": 105.6},
                  "test": {"min": 0.2, "mean": 0.43, "max": 1.1, "total": 12.9}},
    "sampling_rates": {"8000": 270}, "truncated": {"train": 4, "test": 0}, "num_skipped": 1,
    "skipped_by_reason": {"unreadable or corrupt audio": 1}, "skipped": [],
    "normalization": {"mean": -41.5, "std": 18.25}, "notes": [],
}


def save_tiny_model(folder: Path, seed: int = 0, **config_overrides) -> AudioViTForAudioClassification:
    torch.manual_seed(seed)
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs(**config_overrides))).eval()
    model.save_pretrained(folder)
    AudioViTFeatureExtractor(
        sampling_rate=8000, n_fft=256, hop_length=80, num_mel_bins=model.config.num_mel_bins,
        max_length=model.config.max_length,
    ).save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A trained-looking output folder: model, feature extractor, results, and training leftovers."""
    folder = tmp_path_factory.mktemp("sharing") / "tiny-fsdd"
    save_tiny_model(folder)
    (folder / "test_results.json").write_text(json.dumps(RESULTS))
    (folder / "trainer_state.json").write_text(json.dumps({"epoch": 3, "log_history": []}))
    for leftover in ("checkpoints/epoch_3/optimizer.bin", "checkpoints/epoch_3/model.safetensors",
                     "checkpoints/epoch_3/random_states_0.pkl", "runs/Nov22/events.out.tfevents.1.host"):
        (folder / leftover).parent.mkdir(parents=True, exist_ok=True)
        (folder / leftover).write_bytes(b"x")
    (folder / "data_report.json").write_text(json.dumps(DATA_REPORT))
    write_model_card(
        folder, training_args=[{"learning_rate": 1e-3, "num_train_epochs": 3, "output_dir": str(folder)}, {"seed": 42}],
        dataset_name="Free Spoken Digit Dataset", repo_id="someone/tiny-fsdd",
    )
    return folder


def copy_model_files(source: Path, target: Path, names=("config.json", "model.safetensors")) -> Path:
    target.mkdir(parents=True)
    for name in names:
        shutil.copyfile(source / name, target / name)
    return target


# ----------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------


def test_card_metadata_parses_back(model_dir):
    card = validate_model_card(model_dir / "README.md")
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "audio-classification"
    assert "audio_vit" in data.tags and data.license == "apache-2.0"
    assert data.metrics == ["accuracy", "f1"]
    results = {r.metric_type: r for r in data.eval_results}
    assert results["accuracy"].metric_value == pytest.approx(0.9)
    assert results["f1"].metric_value == pytest.approx(0.8812)
    assert {r.dataset_split for r in data.eval_results} == {"test"}
    assert all(r.task_type == "audio-classification" for r in data.eval_results)
    assert "model-index" in data.to_dict()
    assert data.base_model is None


def test_card_body_sections(model_dir):
    text = (model_dir / "README.md").read_text()
    for heading in ("## Intended use and labels", "## Training data", "## Preprocessing", "## Training hyperparameters",
                    "## Results", "## How to use", "## Limitations"):
        assert heading in text
    for label_row in ("| 0 | zero |", "| 1 | one |", "| 2 | two |"):
        assert label_row in text
    # preprocessing comes from preprocessor_config.json, hyperparameters from training_args (paths dropped)
    assert "| `sampling_rate` | 8000 |" in text and "| `hop_length` | 80 |" in text
    assert "| `learning_rate` | 0.001 |" in text and "output_dir" not in text
    assert "| accuracy | 0.9 |" in text and "| loss | 0.3141 |" in text and "(30 clips)" in text
    assert "![confusion matrix](confusion_matrix.png)" in text
    assert 'audio_classification_pipeline("someone/tiny-fsdd")' in text
    assert "trust_remote_code=True" in text and "from_pretrained" in text
    assert "| `seed` | 42 |" in text
    # data table from data_report.json
    assert "| train clips | 240 (0.14-2.28 s, mean 0.44 s) |" in text and "| test clips | 30 (0.20-1.10 s, mean 0.43 s) |" in text
    assert "| skipped clips | 1 (unreadable or corrupt audio: 1) |" in text
    assert "| clips longer than the input (cut) | train: 4 |" in text
    assert "num_samples" not in text and "best_epoch" not in text


def test_confusion_matrix_image(model_dir, tmp_path):
    image = model_dir / "confusion_matrix.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(image)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    path = plot_confusion_matrix(np.eye(12, dtype=int) * 5, [f"c{i}" for i in range(12)], tmp_path / "sub" / "cm.png",
                                 normalize=True)
    assert path.is_file()
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix([[1, 2, 3]], ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 labels given for a 3x3"):
        plot_confusion_matrix(np.ones((3, 3)), ["a", "b"], tmp_path / "x.png")


def test_card_for_fine_tuned_model_and_missing_results(tmp_path):
    folder = tmp_path / "ft"
    save_tiny_model(folder)
    card = build_model_card(folder, base_model="someone/audio-vit-base", dataset_id="someone/digits",
                            dataset_name="Digits", tags=["digits"])
    assert card.data.base_model == "someone/audio-vit-base"
    assert card.data.datasets == ["someone/digits"]
    assert "digits" in card.data.tags and card.data.eval_results is None
    assert "No evaluation results" in card.text and "fine-tuned from" in card.text
    card.save(folder / "README.md")
    validate_model_card(folder / "README.md")
    assert not (folder / "confusion_matrix.png").exists()


def test_card_takes_hyperparameters_from_an_argparse_namespace(tmp_path):
    import argparse

    folder = tmp_path / "ns"
    save_tiny_model(folder)
    card = build_model_card(folder, training_args=argparse.Namespace(learning_rate=0.002, output_dir="x"))
    assert "| `learning_rate` | 0.002 |" in card.text and "output_dir" not in card.text


def test_card_rejects_results_of_another_model(tmp_path):
    folder = tmp_path / "m"
    save_tiny_model(folder)
    with pytest.raises(ValueError, match="differ from config.json id2label"):
        write_model_card(folder, results={**RESULTS, "labels": ["a", "b", "c"]})


def test_model_card_from_a_recipe_file(model_dir, tmp_path):
    from audio_vit.training import read_config_file

    folder = tmp_path / "copy"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns("checkpoints", "runs", "README.md"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  hidden_size: 32\ntraining:\n  learning_rate: 0.002\n  output_dir: x\n"
                      "augmentation:\n  mixup_alpha: 0.2\n")
    write_model_card(folder, training_args=read_config_file(recipe), repo_id="someone/x", dataset_name="FSDD",
                     limitations=["Six speakers only."], intended_use="Digit demos.")
    text = (folder / "README.md").read_text()
    assert "- Six speakers only.\n" in text and "\nDigit demos.\n" in text
    assert "| `learning_rate` | 0.002 |" in text and "| `mixup_alpha` | 0.2 |" in text and "output_dir" not in text
    assert validate_model_card(folder / "README.md").data.eval_results[0].dataset_name == "FSDD"


def test_validate_model_card_catches_bad_metadata(model_dir):
    text = (model_dir / "README.md").read_text()
    with pytest.raises(ValueError, match="pipeline_tag"):
        validate_model_card(text.replace("pipeline_tag: audio-classification", "pipeline_tag: text-classification"))
    with pytest.raises(ValueError, match="library_name"):
        validate_model_card(text.replace("library_name: transformers", "library_name: audio_vit"))
    with pytest.raises(ValueError, match="non-numeric"):
        validate_model_card(text.replace("value: 0.9\n", "value: high\n"))


def test_parse_results_prefixes_and_nested_matrix():
    parsed = parse_results({"eval_accuracy": 1.0, "epoch": 3, "test_runtime": 1.2, "best_eval_accuracy": 0.5,
                            "confusion_matrix": {"confusion_matrix": [[2, 0], [0, 3]]}, "id2label": {"1": "b", "0": "a"}})
    assert parsed["metrics"] == {"accuracy": 1.0}
    assert parsed["confusion_matrix"] == [[2, 0], [0, 3]] and parsed["labels"] == ["a", "b"]
    assert parsed["num_examples"] == 5
    # all_results.json style: prefixed keys, bookkeeping dropped
    parsed = parse_results({"test_accuracy": 0.5, "test_num_samples": 4, "train_runtime_this_run": 3.0, "global_step": 9})
    assert parsed["metrics"] == {"accuracy": 0.5} and parsed["num_examples"] == 4
    with pytest.raises(ValueError, match="finite"):
        parse_results({"test_accuracy": float("nan")})


def test_released_fsdd_card_is_valid():
    card = validate_model_card(REPO_ROOT / "model_cards" / "audio-vit-fsdd.md")  # also checks the image exists
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert set(results) == {"accuracy", "f1"} and all(0.0 <= v <= 1.0 for v in results.values())
    assert "| 9 | 9 |" in card.text and "300 clips" in card.text


def test_packaged_template_matches_source():
    # model_cards/template.md is the source of truth; audio_vit/templates/model_card.md ships in the wheel.
    assert PACKAGED_TEMPLATE.read_text() == SOURCE_TEMPLATE.read_text()
    assert SOURCE_TEMPLATE == REPO_ROOT / "model_cards" / "template.md"


# ----------------------------------------------------------------------------------------------
# Loading: clear errors and no unpickling
# ----------------------------------------------------------------------------------------------


def test_load_model_round_trip(model_dir):
    model = load_model(model_dir)
    assert not model.training and model.config.id2label[2] == "two"
    reference = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=0, atol=1e-6)
    assert load_feature_extractor(model_dir).sampling_rate == 8000


def test_missing_files_are_named(model_dir, tmp_path):
    no_weights = copy_model_files(model_dir, tmp_path / "no_weights", names=("config.json",))
    with pytest.raises(ModelFolderError, match=r"has no weights: expected model\.safetensors"):
        load_model(no_weights)
    no_config = copy_model_files(model_dir, tmp_path / "no_config", names=("model.safetensors",))
    with pytest.raises(ModelFolderError, match=r"has no config\.json"):
        load_model(no_config)
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelFolderError, match=r"no preprocessor_config\.json"):
        load_feature_extractor(no_weights)
    assert is_model_folder(model_dir) and not is_model_folder(no_weights.parent / "nowhere")
    assert require_model_folder(model_dir, "--model") == Path(model_dir)
    with pytest.raises(ModelFolderError, match=r"--model '.*no_config' is not a model folder \(no config\.json\)"):
        require_model_folder(no_config, "--model")
    bad_json = copy_model_files(model_dir, tmp_path / "bad_json")
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"config\.json' is not valid JSON"):
        load_model(bad_json)


def test_sharded_checkpoint(model_dir, tmp_path):
    reference = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    folder = tmp_path / "sharded"
    reference.save_pretrained(folder, max_shard_size="20KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    x = torch.randn(1, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_model(folder)(x).logits, reference(x).logits, rtol=0, atol=1e-6)
    shards[-1].unlink()
    with pytest.raises(ModelFolderError, match=f"{shards[-1].name}' is listed in the shard index but missing"):
        load_model(folder)


def test_truncated_safetensors(model_dir, tmp_path):
    folder = copy_model_files(model_dir, tmp_path / "truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelFolderError, match=r"model\.safetensors' \(\d+ bytes\) is not a readable safetensors file"):
        load_model(folder)


def test_config_weight_shape_mismatch_names_parameter_and_shapes(model_dir, tmp_path):
    folder = copy_model_files(model_dir, tmp_path / "mismatch")
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=64, intermediate_size=128)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError) as err:
        load_model(folder)
    message = str(err.value)
    assert "do not match config.json" in message
    assert "audio_vit.embeddings.cls_token: model.safetensors has [1, 1, 32], config.json implies [1, 1, 64]" in message
    # more labels in the config than the head was trained with
    folder = copy_model_files(model_dir, tmp_path / "labels")
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"c{i}" for i in range(5)}
    config["label2id"] = {f"c{i}": i for i in range(5)}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"classifier\.1\.weight: model\.safetensors has \[3, 32\], config\.json implies \[5, 32\]"):
        load_model(folder)


class _Exploit:
    """Unpickling this runs `os.system`-like code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_never_executed(model_dir, tmp_path):
    folder = copy_model_files(model_dir, tmp_path / "pickle_only", names=("config.json",))
    marker = tmp_path / "marker.txt"
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"audio_vit.embeddings.cls_token": _Exploit(marker)}, f)
    # default: refused before anything is read
    with pytest.raises(ModelFolderError, match="pickle files can run code when loaded, so they are refused"):
        load_model(folder)
    assert not marker.exists()
    # opted in: read with torch.load(weights_only=True), which rejects the payload without running it
    with pytest.raises(ModelFolderError, match=r"could not be loaded with torch\.load\(weights_only=True\)"):
        load_model(folder, allow_pickle=True)
    assert not marker.exists()
    # transformers' own from_pretrained also loads .bin with weights_only=True
    with pytest.raises(Exception):
        AudioViTForAudioClassification.from_pretrained(folder)
    assert not marker.exists()
    # the payload is real: a plain unpickle runs it
    with open(folder / "pytorch_model.bin", "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "pwned"


def test_plain_pickle_weights_load_when_allowed(model_dir, tmp_path):
    folder = copy_model_files(model_dir, tmp_path / "bin", names=("config.json",))
    reference = AudioViTForAudioClassification.from_pretrained(model_dir).eval()
    torch.save(reference.state_dict(), folder / "pytorch_model.bin")
    model = load_model(folder, allow_pickle=True)
    x = torch.randn(1, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Push
# ----------------------------------------------------------------------------------------------

EXPECTED_UPLOAD = [
    "README.md", "audio_utils.py", "config.json", "configuration_audio_vit.py", "confusion_matrix.png", "data_report.json",
    "feature_extraction_audio_vit.py", "log_mel_frontends.py", "model.safetensors", "modeling_audio_vit.py",
    "modeling_layers.py", "modeling_spectrogram_embeddings.py", "modeling_timm_encoder.py", "preprocessor_config.json",
    "raw_audio_input.py", "test_results.json", "trainer_state.json",
]


def test_upload_file_list_skips_training_state(model_dir):
    files = upload_file_list(model_dir)
    remote_code = {p.name for p in model_dir.glob("*.py")}
    assert set(files) == set(EXPECTED_UPLOAD) | remote_code
    assert not any(f.startswith(("checkpoints/", "runs/")) for f in files)
    assert upload_file_list(model_dir, allow_patterns=["*.json"]) == [
        "config.json", "data_report.json", "preprocessor_config.json", "test_results.json", "trainer_state.json"]
    assert "test_results.json" not in upload_file_list(model_dir, ignore_patterns=["test_results.json"])


def test_push_dry_run_lists_files_without_network(model_dir, capsys, monkeypatch):
    from huggingface_hub import HfApi

    from audio_vit.cli import main

    def no_network(*args, **kwargs):
        raise AssertionError("the dry run must not call the Hub")

    for name in ("create_repo", "upload_folder", "create_commit", "create_branch"):
        monkeypatch.setattr(HfApi, name, no_network)
    assert main(["push", "--model", str(model_dir), "--repo-id", "someone/tiny-fsdd", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = [line.strip() for line in out.splitlines()[1:]]
    assert listed == upload_file_list(model_dir)
    assert "would upload" in out and "someone/tiny-fsdd@main" in out


def test_push_command_errors(model_dir, tmp_path, capsys):
    from audio_vit.cli import main

    assert main(["push", "--model", str(model_dir), "--repo-id", "no-namespace", "--dry-run"]) == 2
    assert "must look like USER/NAME" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["push", "--model", str(empty), "--repo-id", "a/b", "--dry-run"]) == 1
    assert "has no config.json" in capsys.readouterr().err


def recording_hf_api(monkeypatch):
    """A real `HfApi` whose network calls are recorded instead of sent: `upload_folder` itself runs, so the
    files it commits are selected by huggingface_hub's own code from the patterns push_folder passes."""
    import huggingface_hub.hf_api as hf_api_module
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

    monkeypatch.setattr(hf_api_module, "is_xet_available", lambda: False)  # the single-commit upload path

    class RecordingHfApi(HfApi):
        calls: list = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def create_branch(self, repo_id, **kwargs):
            self.calls.append(("create_branch", repo_id, kwargs))

        def _validate_yaml(self, *args, **kwargs):  # asks the Hub's server; checked locally by validate_model_card
            pass

        def create_commit(self, repo_id, operations, **kwargs):
            self.calls.append(("create_commit", repo_id, kwargs, sorted(op.path_in_repo for op in operations)))
            return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/0", commit_message="",
                              commit_description="", oid="0" * 40)

    return RecordingHfApi()


def test_push_folder_uploads_what_the_dry_run_lists(model_dir, monkeypatch):
    api = recording_hf_api(monkeypatch)
    result = push_folder(model_dir, "someone/tiny-fsdd", private=True, revision="v1", commit_message="first",
                         token="hf_x", api=api)
    assert result.commit_url.endswith("/commit/0")
    (create, repo, create_kwargs), (branch, _, branch_kwargs), (commit, _, commit_kwargs, uploaded) = api.calls
    assert create == "create_repo" and repo == "someone/tiny-fsdd"
    assert create_kwargs["private"] is True and create_kwargs["exist_ok"] is True and create_kwargs["token"] == "hf_x"
    assert branch == "create_branch" and branch_kwargs["branch"] == "v1"
    assert commit == "create_commit" and commit_kwargs["revision"] == "v1" and commit_kwargs["commit_message"] == "first"
    assert uploaded == upload_file_list(model_dir)
    assert "model.safetensors" in uploaded and not any(p.startswith("checkpoints/") for p in uploaded)


def test_push_command_real_path(model_dir, monkeypatch, capsys):
    from audio_vit.cli import main

    api = recording_hf_api(monkeypatch)
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token=None: api)
    assert main(["push", "--model", str(model_dir), "--repo-id", "someone/tiny-fsdd", "--exclude", "*.json"]) == 0
    uploaded = api.calls[-1][3]
    assert "config.json" not in uploaded and "model.safetensors" in uploaded
    assert uploaded == upload_file_list(model_dir, ignore_patterns=["*.json"])
    assert "uploaded" in capsys.readouterr().out


def test_check_shareable_folder_warns_without_card(tmp_path):
    folder = tmp_path / "nocard"
    save_tiny_model(folder)
    assert any("no README.md" in w for w in check_shareable_folder(folder))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# my model\n")
    assert any("pipeline_tag=None" in w for w in check_shareable_folder(folder))


def test_model_push_to_hub_sends_weights_and_remote_code(monkeypatch, tmp_path):
    """transformers' PushToHubMixin path, against a recording fake of the Hub API (a real push needs the network)."""
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import ModelCard

    sent = {}

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            from huggingface_hub import RepoUrl

            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def create_commit(self, repo_id, operations, **kwargs):
            for op in operations:
                sent[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
            return "commit"

    def no_remote_card(*args, **kwargs):
        from huggingface_hub.errors import EntryNotFoundError

        raise EntryNotFoundError("no README.md yet")

    monkeypatch.setattr(transformers_hub, "hf_api", lambda: FakeApi())
    monkeypatch.setattr(ModelCard, "load", classmethod(lambda cls, *a, **k: no_remote_card()))
    model = AudioViTForAudioClassification(AudioViTConfig(**tiny_config_kwargs()))
    model.push_to_hub("someone/tiny", commit_message="push")
    assert {"config.json", "model.safetensors", "README.md", "modeling_audio_vit.py",
            "configuration_audio_vit.py"} <= set(sent)
    config = json.loads(sent["config.json"])
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_audio_vit.AudioViTForAudioClassification"
    fe_sent = sent.copy()
    sent.clear()
    AudioViTFeatureExtractor(num_mel_bins=16, max_length=32).push_to_hub("someone/tiny")
    assert {"preprocessor_config.json", "feature_extraction_audio_vit.py"} <= set(sent)
    assert fe_sent  # the model push happened first


# ----------------------------------------------------------------------------------------------
# Offline loading by repo id from the hub cache
# ----------------------------------------------------------------------------------------------


def test_offline_load_from_hub_cache(model_dir, tmp_path):
    cache = tmp_path / "hub"
    snapshot = place_in_hub_cache(model_dir, "someone/tiny-fsdd", cache_dir=cache)
    repo = cache / "models--someone--tiny-fsdd"
    assert (repo / "refs" / "main").read_text() == snapshot.name
    assert (snapshot / "model.safetensors").is_symlink() and not (snapshot / "checkpoints").exists()
    script = """
import numpy as np, torch, audio_vit
from transformers import AutoModelForAudioClassification, pipeline
from audio_vit.model_folder import load_model
model = AutoModelForAudioClassification.from_pretrained("someone/tiny-fsdd").eval()
assert type(model).__name__ == "AudioViTForAudioClassification", type(model)
checked = load_model("someone/tiny-fsdd")
x = torch.randn(1, 16, 32)
with torch.no_grad():
    assert torch.equal(model(x).logits, checked(x).logits)
classifier = pipeline("audio-classification", model="someone/tiny-fsdd")
scores = classifier(np.zeros(4000, dtype=np.float32), top_k=3)
assert sorted(s["label"] for s in scores) == ["one", "two", "zero"], scores
print("OFFLINE-OK")
"""
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf_home")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT)
    assert "OFFLINE-OK" in done.stdout, done.stderr[-3000:]


REMOTE_CODE_SCRIPT = """
import sys, numpy as np, torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
model = AutoModelForAudioClassification.from_pretrained("someone/tiny-fsdd", trust_remote_code=True).eval()
extractor = AutoFeatureExtractor.from_pretrained("someone/tiny-fsdd", trust_remote_code=True)
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
inputs = extractor(np.zeros(4000, dtype=np.float32), sampling_rate=8000, return_tensors="pt")
with torch.no_grad():
    assert model(**inputs).logits.shape == (1, 3)
scores = pipeline("audio-classification", model="someone/tiny-fsdd", trust_remote_code=True)(
    np.zeros(4000, dtype=np.float32), top_k=3)
assert len(scores) == 3
assert "audio_vit" not in sys.modules, "the remote code must not need the installed package"
print("REMOTE-CODE-OK")
"""


def test_offline_trust_remote_code_without_audio_vit(model_dir, tmp_path):
    """The card's `trust_remote_code=True` snippet: the code files pushed with the weights are enough."""
    cache = tmp_path / "hub"
    place_in_hub_cache(model_dir, "someone/tiny-fsdd", cache_dir=cache)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    done = subprocess.run([sys.executable, "-c", REMOTE_CODE_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert "REMOTE-CODE-OK" in done.stdout, done.stderr[-3000:]
