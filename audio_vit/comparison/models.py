"""The models `compare` and `cross-validate` can run on one fold, behind one function: `run_fold`.

The model names and what each means are in `model_names.py`. Every run returns the test fold's confusion matrix,
the training seconds, the parameter count and the inference speed (clips per second of the model's forward pass /
predict on precomputed inputs, batch 64, decoding and feature extraction excluded).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .classic import CLASSIC_MODELS
from .cnn import CNN_MODELS
from .model_names import (AUTO_MODEL, PACKAGE_MODELS, SSL_OWN_MODEL, check_model_name, model_folder_name,
                          pretrained_dir_of, split_timm_name, teacher_of)
from .processes import is_main_process, wait_for_everyone
from .report import MULTI_LABEL_SCORES, confusion_from_predictions, write_json

logger = logging.getLogger(__name__)
RESULT_NAME = "result.json"  # one finished (model, seed, fold) run

INFERENCE_BATCH = 64
PRETRAINED_DIR = "pretrained"  # a vit-ssl-own fold run's encoder, beside its fine-tuned `model`


@dataclass
class FoldContext:
    """What every run of one cross-validation shares: the folds CSV, its labels and lazily computed inputs."""

    folds_csv: Path
    label_names: list[str]
    has_groups: bool
    multi_label: bool = False  # several labels per clip: only the package's training applies, scored with mAP
    data_flags: list[str] = field(default_factory=list)  # processing flags handed to the package's training
    train_flags: list[str] = field(default_factory=list)  # extra `audio-vit train` flags for vit/timm models
    cnn_epochs: int = 30
    pretraining_flags: list[str] = field(default_factory=list)  # extra `audio-vit pretrain` flags for vit-ssl-own
    # Where the runs of the other models of a comparison live (`<models_dir>/<model>/seed<S>/fold<F>`): a distilled
    # ViT reuses its teacher's fold run from there. None (cross-validate): the teacher is trained in the run folder.
    models_dir: Optional[Path] = None
    _clips: object = None
    _inputs: dict = field(default_factory=dict)
    _window_extractor: object = None

    def clips(self):
        if self._clips is None:
            from .features import load_clips
            from .folds import read_folds_csv

            self._clips = load_clips(read_folds_csv(self.folds_csv), self.label_names)
        return self._clips

    def window_extractor(self):
        """The CNN baselines' feature extractor (`features.window_feature_extractor`), derived once."""
        if self._window_extractor is None:
            from .features import window_feature_extractor

            self._window_extractor = window_feature_extractor(self.clips())
        return self._window_extractor

    def inputs(self, kind: str) -> np.ndarray:
        """"mfcc" (N, 160), "waveform" (N, samples) or "log_mel" (N, mels, frames), computed once."""
        if kind not in self._inputs:
            from . import features

            clips = self.clips()
            if kind == "mfcc":
                self._inputs[kind] = features.mfcc_matrix(clips)
            elif kind == "waveform":  # the stretch of audio the data-derived window of max_length frames covers
                extractor = self.window_extractor()
                self._inputs[kind] = features.fixed_waveforms(clips, extractor.samples_for(extractor.max_length))
            elif kind == "log_mel":
                self._inputs[kind] = features.log_mel_images(clips, self.window_extractor())
            else:
                raise ValueError(f"unknown input kind {kind!r}")
        return self._inputs[kind]


def _timed_predict(predict, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    """Predictions of `inputs` and clips per second of `predict` over batches of INFERENCE_BATCH (after one
    untimed warm-up batch: first calls pay for lazy initialisation)."""
    predict(inputs[:INFERENCE_BATCH])
    started = time.perf_counter()
    parts = [predict(inputs[i:i + INFERENCE_BATCH]) for i in range(0, len(inputs), INFERENCE_BATCH)]
    elapsed = time.perf_counter() - started
    return np.concatenate(parts), len(inputs) / elapsed if elapsed > 0 else float("inf")


def _run_in_memory(name: str, context: FoldContext, test_fold: str, seed: int) -> dict:
    """Classic and CNN models: train on every fold but `test_fold`, predict `test_fold`."""
    from .classic import count_parameters, make_classifier
    from .cnn import CNNClassifier

    clips = context.clips()
    if name in CLASSIC_MODELS:
        inputs = context.inputs("mfcc")
        model = make_classifier(name, seed=seed)
    else:
        inputs = context.inputs("waveform" if name == "cnn1d" else "log_mel")
        model = CNNClassifier(name, len(context.label_names), epochs=context.cnn_epochs, seed=seed)
    test = clips.folds == test_fold
    if not test.any():
        raise ValueError(f"fold {test_fold!r} has no decodable clips in {context.folds_csv}")
    started = time.perf_counter()
    model.fit(inputs[~test], clips.label_ids[~test])
    train_seconds = time.perf_counter() - started
    predictions, speed = _timed_predict(model.predict, inputs[test])
    parameters = count_parameters(model) if name in CLASSIC_MODELS else model.num_parameters()
    result = {
        "confusion_matrix": confusion_from_predictions(clips.label_ids[test], predictions,
                                                       len(context.label_names)).tolist(),
        "train_seconds": train_seconds, "parameters": parameters, "inference_clips_per_second": speed,
        "num_train_clips": int((~test).sum()),
    }
    if name in CNN_MODELS:  # what the CNN saw of each clip
        extractor = context.window_extractor()
        result["input"] = {"sampling_rate": extractor.sampling_rate, "hop_length": extractor.hop_length,
                           "frames": extractor.max_length,
                           "seconds": extractor.samples_for(extractor.max_length) / extractor.sampling_rate}
    return result


def training_argv(name: str, context: FoldContext, test_fold: str, seed: int, model_dir: Path) -> list[str]:
    """`audio-vit train` arguments of one fold: the folds CSV with `test_fold` held out; validation is carved
    from the training folds by the package's splitter (group-disjoint when the data has groups)."""
    argv = ["--data-dir", str(context.folds_csv.parent), "--metadata-file", str(context.folds_csv),
            "--fold-column", "fold", "--split-strategy", "kfold", "--test-fold", str(test_fold),
            *(["--group-column", "group"] if context.has_groups else []),
            *(["--multi-label", "true", "--label-separator", ","] if context.multi_label else []), *context.data_flags,
            *context.train_flags, "--seed", str(seed), "--output-dir", str(model_dir)]
    if name.startswith("timm:"):
        architecture, source = split_timm_name(name)
        argv += ["--backbone", "timm", "--timm-model-name", architecture]
        argv += ["--pretrained-backbone", source, "--route", "pretrained"] if source else []
    elif pretrained_dir_of(name) is not None:
        argv += ["--model-name-or-path", pretrained_dir_of(name)]
    elif name == SSL_OWN_MODEL:
        argv += ["--model-name-or-path", str(model_dir.parent / PRETRAINED_DIR)]
    elif teacher_of(name) is None:
        argv += PACKAGE_MODELS[name]
    if (model_dir / "checkpoints").is_dir() and any((model_dir / "checkpoints").iterdir()):
        argv += ["--resume-from-checkpoint", "latest"]  # an interrupted fold continues where it stopped
    return argv


def _run_package_training(name: str, context: FoldContext, test_fold: str, seed: int, run_dir: Path) -> dict:
    """vit / timm:NAME: the package's own training (what `audio-vit train` runs), then its test results."""
    import torch

    from ..model_folder import TEST_RESULTS_NAME, load_model
    from ..training import explicit_option_names, parse_training_args, train_with_route
    from .auto_route import route_summary

    model_dir = run_dir / "model"
    started = time.perf_counter()
    argv = training_argv(name, context, test_fold, seed, model_dir)
    teacher = teacher_of(name)
    if teacher is not None:
        argv += ["--teacher", teacher_model_dir(teacher, context, test_fold, seed, run_dir)]
    reused = reuse_route_candidates(argv, context, test_fold, seed, model_dir) if name == AUTO_MODEL else []
    pretrain_seconds, pretrained_earlier = (pretrain_on_fold(argv, context, seed, run_dir) if name == SSL_OWN_MODEL
                                            else (None, False))
    # The user's flags win even where their value is a plain default (`--stem patch`), as in `audio-vit train`.
    results = train_with_route(*parse_training_args(argv), explicit=explicit_option_names(argv))
    train_seconds = time.perf_counter() - started
    if reused:  # the candidates trained in their own rows: the default's time is theirs plus the choice and test
        train_seconds += sum(results["route"]["candidates"][route]["train_seconds"] or 0.0 for route in reused)
    if pretrained_earlier:  # vit-ssl-own's time is its pretraining's plus its fine-tuning's
        train_seconds += pretrain_seconds
    if not is_main_process():
        return {}  # the main process wrote the test results and reads them; the others are done
    test_file = model_dir / TEST_RESULTS_NAME
    if not results.get("finished") or not test_file.is_file():
        raise RuntimeError(f"training of fold {test_fold} in {model_dir} ended without test results ({results})")
    test = json.loads(test_file.read_text(encoding="utf-8"))
    if test["labels"] != context.label_names:
        raise RuntimeError(f"{test_file}: labels {test['labels']} differ from the folds' {context.label_names}")
    if context.multi_label:
        scores = {key: test[key] for key in MULTI_LABEL_SCORES}
        scores.update(per_class=test.get("per_class"), num_test_clips=test["num_samples"],
                      label_frequency_baseline=test.get("label_frequency_baseline"))
    else:
        scores = {"confusion_matrix": test["confusion_matrix"]}
    model = load_model(model_dir)
    config = model.config
    sample = torch.randn(INFERENCE_BATCH, config.num_mel_bins, config.max_length)
    with torch.no_grad():
        _, speed = _timed_predict(lambda x: model(input_values=torch.from_numpy(x)).logits.numpy(),
                                  np.repeat(sample.numpy(), 4, axis=0))
    return {
        **scores, "train_seconds": train_seconds,
        "parameters": sum(p.numel() for p in model.parameters()), "inference_clips_per_second": speed,
        "best_epoch": test.get("best_epoch"), "model_dir": str(model_dir.resolve()),
        "nonfinite_steps_skipped": results.get("nonfinite_steps_skipped", 0),
        **route_summary(results.get("route")),
        **({"pretrain_seconds": pretrain_seconds} if pretrain_seconds is not None else {}),
    }


def fold_training_files(argv: list[str]) -> list[str]:
    """The audio files of the training split that `audio-vit train argv` trains on: the split of its data options
    with the validation fold `--recipe auto` picks (`feature_recipe.validation_defaults`, applied as `resolve_recipe`
    applies it). Never a validation or test clip: what a fold's own pretraining may see."""
    from ..data import build_manifest, column_values, resolve_data_dir
    from ..data.splits import assign_splits
    from ..training import explicit_option_names, parse_training_args
    from ..data.feature_recipe import apply_defaults, validation_defaults

    _, data_args, _, args = parse_training_args(argv)
    data_args = resolve_data_dir(data_args)
    manifest = build_manifest(data_args)
    if args.recipe == "auto":
        apply_defaults((data_args,), validation_defaults(manifest, data_args), explicit_option_names(argv))
    splits, _ = assign_splits(manifest, data_args)
    audio = column_values(manifest.audio, "audio")
    return [audio[int(row)] for row in splits["train"]]


def pretrain_on_fold(train_argv: list[str], context: FoldContext, seed: int, run_dir: Path) -> tuple[float, bool]:
    """`vit-ssl-own`: pretrain an encoder (into `run_dir/pretrained`) on the training clips of the fold training
    `train_argv` (written to `run_dir/pretraining_clips.csv`); a finished pretraining is reused, an interrupted one
    resumed. Returns the pretraining seconds and whether it had finished earlier (reused)."""
    import csv

    from ..pretraining import parse_pretraining_args, pretrain
    from ..training.checkpointing import list_checkpoints

    encoder_dir = run_dir / PRETRAINED_DIR
    results_file = encoder_dir / "all_results.json"
    if results_file.is_file() and json.loads(results_file.read_text(encoding="utf-8")).get("finished"):
        return json.loads(results_file.read_text(encoding="utf-8"))["train_seconds"], True
    clips_csv = run_dir / "pretraining_clips.csv"
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(clips_csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name"])
            writer.writerows([str(Path(path).resolve())] for path in fold_training_files(train_argv))
    wait_for_everyone()  # the other processes read the list the main process wrote
    argv = ["--data-dir", str(run_dir), "--metadata-file", str(clips_csv), *context.data_flags,
            "--validation-fraction", "0", "--test-fraction", "0", "--seed", str(seed), "--disable-tqdm",
            *context.pretraining_flags, "--output-dir", str(encoder_dir)]
    argv += ["--resume-from-checkpoint", "latest"] if list_checkpoints(encoder_dir) else ["--overwrite-output-dir"]
    started = time.perf_counter()
    pretrain(*parse_pretraining_args(argv))
    return time.perf_counter() - started, False


def reuse_route_candidates(argv: list[str], context: FoldContext, test_fold: str, seed: int,
                           model_dir: Path) -> list[str]:
    """`vit-auto` in a comparison that also runs its candidates as rows (`vit`, `timm:NAME@WEIGHTS` of the start it
    finds): their finished fold runs, made with the same flags, seed and folds, are the candidate runs (copied into
    `model_dir/routes/`), so the route choice trains nothing twice. Returns the routes reused."""
    from ..training.route_selection import ROUTES_DIR
    from .auto_route import route_candidate_rows

    if context.models_dir is None:
        return []
    reused = []
    for route, row in route_candidate_rows(argv).items():
        row_dir = context.models_dir / model_folder_name(row) / f"seed{seed}" / f"fold{test_fold}"
        target = model_dir / ROUTES_DIR / route
        result_file = row_dir / RESULT_NAME
        if target.exists() or not result_file.is_file():
            continue
        if json.loads(result_file.read_text(encoding="utf-8")).get("settings") != run_settings(row, context):
            continue
        shutil.copytree(row_dir / "model", target)
        logger.info("vit-auto seed %s fold %s: the %s route is the %s row's run (%s)", seed, test_fold, route, row, row_dir)
        reused.append(route)
    return reused


def run_settings(name: str, context: FoldContext) -> dict:
    """What, besides the folds and the seed, decides a run's result: stored with it, so a re-run with other
    settings does not silently reuse it."""
    if name in CNN_MODELS:
        return {"epochs": context.cnn_epochs}
    if name in CLASSIC_MODELS:
        return {}
    settings = {"train_flags": list(context.data_flags) + list(context.train_flags)}
    if name.startswith("timm:") and split_timm_name(name)[1]:
        settings["pretrained_backbone"] = str(Path(split_timm_name(name)[1]).expanduser().resolve())
    teacher = teacher_of(name)
    if teacher is not None:
        settings["teacher"] = {"model": teacher, **run_settings(teacher, context)}
    if pretrained_dir_of(name) is not None:
        settings["pretrained"] = str(Path(pretrained_dir_of(name)).expanduser().resolve())
    if name == SSL_OWN_MODEL:
        settings["pretraining_flags"] = list(context.pretraining_flags)
    return settings


def teacher_model_dir(teacher: str, context: FoldContext, test_fold: str, seed: int, run_dir: Path) -> str:
    """The model folder of `teacher` trained on this fold's training folds: the teacher row's run of the same
    comparison (or an earlier one in the same folder) when finished, else trained now (into that row's folder, which
    the row then reuses; into `run_dir/teacher` under cross-validate)."""
    from .processes import num_processes

    teacher_dir = (context.models_dir / model_folder_name(teacher) / f"seed{seed}" / f"fold{test_fold}"
                   if context.models_dir is not None else run_dir / "teacher")
    if not (teacher_dir / RESULT_NAME).is_file() and num_processes() > 1:
        raise ValueError(f"the teacher {teacher} of fold {test_fold} is not trained yet ({teacher_dir}); under several "
                         "processes train the teacher's folds first (compare/cross-validate it alone), then the student")
    fold_result(teacher, context, test_fold, seed, teacher_dir)
    # The run folder's own layout, not the result's stored `model_dir`: an earlier run may have stored it relative
    # to another working directory.
    return str((Path(teacher_dir) / "model").resolve())


def fold_result(name: str, context: FoldContext, test_fold: str, seed: int, run_dir: Path) -> dict:
    """The result of `name` on (seed, test fold) in `run_dir`: read from its `result.json` when that run finished
    (with the same settings), else trained now and written there (by the main process; the others get {})."""
    result_file = Path(run_dir) / RESULT_NAME
    settings = run_settings(name, context)
    if result_file.is_file():
        result = json.loads(result_file.read_text(encoding="utf-8"))
        if result.get("settings", {}) != settings:
            raise ValueError(f"{result_file} was made with {result.get('settings')}, this run asks for {settings}; "
                             f"use another --output-dir (or delete {run_dir} to redo it)")
        logger.info("%s seed %s fold %s: finished earlier, reused (%s)", name, seed, test_fold, result_file)
        return result
    logger.info("%s seed %s fold %s: training", name, seed, test_fold)
    result = {"model": name, "seed": seed, "fold": test_fold, "settings": settings,
              **run_fold(name, context, test_fold, seed, run_dir)}
    if not is_main_process():
        return {}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json(result_file, result)
    return result


def run_fold(name: str, context: FoldContext, test_fold: str, seed: int, run_dir: Optional[Path] = None) -> dict:
    """Train model `name` on every fold but `test_fold` and score it on `test_fold` (see module docstring)."""
    check_model_name(name)
    if name in CLASSIC_MODELS or name in CNN_MODELS:
        if context.multi_label:
            raise ValueError(f"{name} is a single-label baseline; the data has several labels per clip (multi-label): "
                             f"use {', '.join(PACKAGE_MODELS)} or timm:NAME")
        return _run_in_memory(name, context, test_fold, seed)
    if run_dir is None:
        raise ValueError(f"model {name!r} saves a model folder: pass run_dir")
    return _run_package_training(name, context, test_fold, seed, Path(run_dir))
