"""Multi-label end to end on real audio: FSDD two-digit mixtures train with BCE, score mAP above the
label-frequency baseline, and `evaluate`, `predict` and the pipeline give per-label sigmoid scores.

Small on purpose (160 training mixtures, a 2-layer ViT, 6 epochs) so it stays fast on 2 CPU cores; the
larger run is in BENCHMARKS.md (## Multi-label).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audio_vit.data.fsdd_mix import build_fsdd_mixtures
from audio_vit.training import parse_training_args, train
from test_training_helpers import read_json

# Two of ten digits per clip: a model that ignores the audio scores mAP = 0.2 (the label frequency).
MAP_MARGIN_OVER_BASELINE = 0.15


def mixture_train_argv(data_dir, output_dir, cache_dir, *extra):
    return [
        "--data-dir", str(data_dir), "--cache-dir", str(cache_dir), "--output-dir", str(output_dir),
        "--sampling-rate", "8000", "--n-fft", "256", "--hop-length", "128", "--num-mel-bins", "32",
        "--max-length", "64", "--patch-size", "32", "2",
        "--hidden-size", "64", "--num-hidden-layers", "2", "--num-attention-heads", "2", "--intermediate-size", "128",
        "--per-device-train-batch-size", "16", "--learning-rate", "0.002", "--warmup-epochs", "1",
        "--num-train-epochs", "6", "--report-to", "none", "--disable-tqdm", "--log-examples", "0", "--recipe", "none",
        *extra,
    ]


@pytest.fixture(scope="module")
def mixture_model(fsdd_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd_mix")
    build_fsdd_mixtures(fsdd_dir, root / "data", {"train": 160, "test": 40}, seed=0)
    out = root / "model"
    results = train(*parse_training_args(mixture_train_argv(root / "data", out, root / "cache")))
    return root, out, results


def test_multi_label_training_beats_the_label_frequency_baseline(mixture_model):
    _, out, results = mixture_model
    config = read_json(out / "config.json")
    assert config["problem_type"] == "multi_label_classification"
    assert results["best_eval_mAP"] == max(e["eval_mAP"] for e in read_json(out / "trainer_state.json")["log_history"])
    test = read_json(out / "test_results.json")
    assert test["num_samples"] == 40 and test["labels"] == [str(d) for d in range(10)]
    baseline = test["label_frequency_baseline"]
    assert baseline["mAP"] == pytest.approx(0.2, abs=0.05)
    assert test["mAP"] >= baseline["mAP"] + MAP_MARGIN_OVER_BASELINE, (test["mAP"], baseline)
    assert len(test["per_class"]) == 10 and sum(row["support"] for row in test["per_class"]) == 80  # 2 per clip
    card = (out / "README.md").read_text()
    assert "mAP" in card


def test_evaluate_command_reports_multi_label_metrics(mixture_model, capsys):
    from audio_vit.commands import evaluate

    root, out, _ = mixture_model
    code = evaluate.main(["--model", str(out), "--data-dir", str(root / "data"), "--cache-dir", str(root / "cache"),
                          "--split", "test", "--output-file", str(root / "eval.json"), "--report-dir",
                          str(root / "report")])
    assert code == 0
    results, expected = read_json(root / "eval.json"), read_json(out / "test_results.json")
    assert results["mAP"] == pytest.approx(expected["mAP"], rel=1e-5)
    assert results["micro_f1"] == pytest.approx(expected["micro_f1"], rel=1e-5)
    assert '"mAP"' in capsys.readouterr().out
    rows = read_json(root / "report" / "per_class.json")["per_class"]
    assert [row["label"] for row in rows] == [str(d) for d in range(10)] and "average_precision" in rows[0]
    assert "| label | average_precision |" in (root / "report" / "per_class.md").read_text()
    # a stricter threshold predicts fewer labels: recall cannot rise
    evaluate.main(["--model", str(out), "--data-dir", str(root / "data"), "--cache-dir", str(root / "cache"),
                   "--output-file", str(root / "strict.json"), "--threshold", "0.9", "--report-dir", str(root / "r9")])
    strict = read_json(root / "strict.json")
    assert strict["mAP"] == pytest.approx(results["mAP"])  # mAP does not depend on the threshold
    assert sum(r["recall"] for r in strict["per_class"]) <= sum(r["recall"] for r in rows)


def test_predict_and_pipeline_return_sigmoid_scores(mixture_model, capsys):
    from audio_vit import AudioViTFeatureExtractor, AudioViTForAudioClassification, audio_classification_pipeline
    from audio_vit.data.audio_decoding import load_audio
    from audio_vit.commands import predict

    root, out, _ = mixture_model
    clip = str(root / "data" / "clips" / "test_00000.flac")
    model = AudioViTForAudioClassification.from_pretrained(str(out)).eval()
    extractor = AudioViTFeatureExtractor.from_pretrained(str(out))
    waveform, rate = load_audio(clip)
    inputs = extractor(waveform, sampling_rate=rate, padding="max_length", truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(input_values=inputs["input_values"]).logits[0].sigmoid()

    scores = audio_classification_pipeline(str(out))(clip, top_k=10)
    by_label = {s["label"]: s["score"] for s in scores}
    # the pipeline judges the whole clip (window logits averaged, padding masked), so its scores are close to,
    # not equal to, the single padded window's; they are independent sigmoids, not a softmax
    assert len(by_label) == 10 and all(0.0 < v < 1.0 for v in by_label.values())
    np.testing.assert_allclose([by_label[model.config.id2label[i]] for i in range(10)], expected.numpy(), atol=0.1)
    assert abs(sum(by_label.values()) - 1.0) > 0.05

    assert predict.main([clip, "--model", str(out), "--json", "--top-k", "10", "--threshold", "0.3"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    predicted = {s["label"]: s["score"] for s in record["scores"]}
    np.testing.assert_allclose([predicted[model.config.id2label[i]] for i in range(10)], expected.numpy(), atol=0.1)
    assert abs(sum(predicted.values()) - 1.0) > 0.05
    assert record["labels"] == [s["label"] for s in record["scores"] if s["score"] >= 0.3]
    assert predict.main([clip, "--model", str(out)]) == 0
    assert "labels >= 0.5:" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--threshold"):
        predict.main([clip, "--model", str(out), "--threshold", "1.5"])


def test_metric_for_best_model_is_checked_against_the_data():
    from audio_vit.training.task_metrics import EvaluationTask

    multi = EvaluationTask(True, ["a", "b"])
    assert multi.metric_for_best_model("accuracy") == "mAP" and multi.metric_for_best_model("f1") == "micro_f1"
    with pytest.raises(ValueError, match="multi-label data"):
        EvaluationTask(False, ["a", "b"]).metric_for_best_model("mAP")


def test_cross_validate_scores_multi_label_folds_with_map(fsdd_dir, tmp_path):
    """cross-validate on multi-label data: random folds, BCE training per fold, mAP / micro-F1 per fold and as
    mean ± std, per-label rows averaged over folds; compare refuses (its baselines are single-label)."""
    from audio_vit.commands import compare, cross_validate

    build_fsdd_mixtures(fsdd_dir, tmp_path / "data", {"train": 40, "test": 20}, seed=1)
    out = tmp_path / "cv"
    flags = ["--data-dir", str(tmp_path / "data"), "--num-folds", "2", "--cache-dir", str(tmp_path / "cache")]
    train_flags = mixture_train_argv(tmp_path / "unused", tmp_path / "unused", tmp_path / "cache",
                                     "--num-train-epochs", "1")[6:]  # the model and training options only
    assert cross_validate.main([*flags, "--output-dir", str(out), *train_flags]) == 0
    summary = read_json(out / "cv_results.json")
    assert summary["multi_label"] and len(summary["runs"]) == 2
    assert summary["labels"] == [str(d) for d in range(10)]
    maps = [run["mAP"] for run in summary["runs"]]
    assert summary["mAP"]["mean"] == pytest.approx(np.mean(maps))
    assert summary["mAP"]["std"] == pytest.approx(np.std(maps, ddof=1))
    assert sum(run["num_test_clips"] for run in summary["runs"]) == 60
    assert len(summary["per_class"]) == 10 and sum(row["support"] for row in summary["per_class"]) == 120
    assert "**mAP:" in (out / "cv_results.md").read_text()
    assert not (out / "confusion_matrix.png").exists()
    with pytest.raises(ValueError, match="single-label.*cross-validate"):
        compare.main([*flags, "--output-dir", str(tmp_path / "cmp"), "--models", "logreg"])
