"""Model cards for trained audio_vit folders: README.md with Hub metadata + a confusion-matrix image.

Training calls `write_model_card(output_dir, results=..., training_args=..., data_summary=..., dataset_name=...)`
at the end of a run; it reads `config.json` and `preprocessor_config.json` from the folder, plots the
confusion matrix of `results` to `confusion_matrix.png`, renders the Jinja2 template
(`model_cards/template.md`, shipped as `audio_vit/templates/model_card.md`) and checks the result with
huggingface_hub's `ModelCard` parser.

Metadata choices: `library_name: transformers` because the checkpoints load with transformers'
`from_pretrained` / `pipeline` (after `import audio_vit`, or with `trust_remote_code=True` from the code
stored next to the weights); the Hub then shows the right snippet. `audio_vit` is added as a tag so the
models can be found.

Over 400 lines because a card is many small parts (results parsing, five tables, metadata, validation), each a
short function; the text itself lives in the template. The confusion-matrix image comes from
`classification_report.plot_confusion_matrix`, the package's one writer of it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .classification_report import plot_confusion_matrix
from .model_folder import CARD_NAME, CONFIG_NAME, DATA_REPORT_NAME, PREPROCESSOR_NAME, TEST_RESULTS_NAME

CONFUSION_MATRIX_IMAGE = "confusion_matrix.png"
DEFAULT_TAGS = ["audio-classification", "audio_vit", "vision-transformer", "log-mel-spectrogram"]
PACKAGED_TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
SOURCE_TEMPLATE = Path(__file__).resolve().parents[1] / "model_cards" / "template.md"

# Keys of a results dict that are bookkeeping, not metrics.
_NON_METRIC_KEYS = {"epoch", "step", "global_step", "samples", "num_samples", "num_examples", "examples", "runtime",
                    "samples_per_second", "steps_per_second", "seconds", "best_epoch", "finished", "stopped_early"}
# Training options that say nothing about the model (paths, logging, resuming).
_NON_HYPERPARAMETERS = {"config", "model_name_or_path", "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "report_to", "logging_steps",
                        "disable_tqdm", "log_examples", "dataloader_num_workers", "save_total_limit", "cpu", "do_test",
                        "max_epochs_this_run", "push_to_hub", "hub_model_id", "hub_token", "logging_dir", "cache_dir"}
# Metric types the Hub knows; others still go to the results table.
_MODEL_INDEX_METRICS = {"accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "recall",
                        "top_5_accuracy", "top_k_accuracy", "balanced_accuracy", "roc_auc", "map", "mAP"}


def template_path() -> Path:
    """The card template: the packaged copy, else the repository's `model_cards/template.md`."""
    for path in (PACKAGED_TEMPLATE, SOURCE_TEMPLATE):
        if path.is_file():
            return path
    raise FileNotFoundError(f"model card template not found at {PACKAGED_TEMPLATE} or {SOURCE_TEMPLATE}")


# ----------------------------------------------------------------------------------------------
# Reading the training outputs
# ----------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(payload, dict):
        raise ValueError(f"{what} {str(path)!r} must hold a JSON object, got {type(payload).__name__}")
    return payload


def _as_dict(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "to_dict"):
        return dict(value.to_dict())
    if isinstance(value, argparse.Namespace):
        return vars(value)
    raise TypeError(f"{name} must be a dict, a dataclass or an argparse.Namespace; got {type(value).__name__}")


def _metric_name(key: str, split: str) -> str:
    for prefix in (f"{split}_", "test_", "eval_", "validation_"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def parse_results(results: Mapping[str, Any], split: str = "test") -> dict[str, Any]:
    """Normalise a `test_results.json`-like dict: `{"metrics": {...}, "confusion_matrix": [[...]] | None,
    "labels": [...] | None, "num_examples": int | None}`. Metric keys lose their `test_`/`eval_` prefix."""
    metrics: dict[str, float] = {}
    for key, value in results.items():
        name = _metric_name(key, split)
        if (name in _NON_METRIC_KEYS or name.endswith(("_runtime", "_per_second", "_this_run"))
                or name.startswith(("train_", "best_"))):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, Mapping) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()) and name == "metrics":
                metrics.update({_metric_name(k, split): float(v) for k, v in value.items()})
            continue
        if not math.isfinite(float(value)):
            raise ValueError(f"results[{key!r}]={value!r} is not a finite number")
        metrics[name] = float(value)
    matrix = None
    for key in ("confusion_matrix", f"{split}_confusion_matrix", "test_confusion_matrix", "eval_confusion_matrix"):
        if key in results and results[key] is not None:
            matrix = results[key]
            if isinstance(matrix, Mapping):
                matrix = matrix.get("confusion_matrix", matrix.get("matrix"))
            break
    labels = None
    for key in ("label_names", "labels", "class_names", "id2label"):
        if key in results and results[key]:
            labels = results[key]
            if isinstance(labels, Mapping):
                labels = [labels[k] for k in sorted(labels, key=lambda k: int(k))]
            labels = [str(label) for label in labels]
            break
    num_examples = None
    for key in (f"{split}_num_samples", f"{split}_samples", "num_samples", "test_samples", "num_examples", "samples",
                "examples"):
        if isinstance(results.get(key), int):
            num_examples = int(results[key])
            break
    if num_examples is None and matrix is not None:
        num_examples = int(sum(sum(row) for row in matrix))
    return {"metrics": metrics, "confusion_matrix": matrix, "labels": labels, "num_examples": num_examples}


def summarize_data_report(report: Mapping[str, Any]) -> dict[str, str]:
    """Rows for the card's data table from a `DataReport.to_dict()` (`data_report.json`, `audio-vit prepare`'s summary)."""
    rows: dict[str, str] = {}
    if report.get("source"):
        source = str(report["source"])
        # a local absolute path says nothing to readers of a published card (and leaks the directory layout)
        rows["source"] = Path(source).name if os.path.isabs(source) else source
    if report.get("split_strategy"):
        rows["split"] = str(report["split_strategy"])
    for split, count in (report.get("num_clips") or {}).items():
        durations = (report.get("durations") or {}).get(split) or {}
        detail = ""
        if {"min", "mean", "max"} <= set(durations):
            detail = f" ({durations['min']:.2f}-{durations['max']:.2f} s, mean {durations['mean']:.2f} s)"
        rows[f"{split} clips"] = f"{count}{detail}"
    if report.get("sampling_rates"):
        rows["original sampling rates"] = ", ".join(f"{rate} Hz: {n}" for rate, n in report["sampling_rates"].items())
    truncated = {split: n for split, n in (report.get("truncated") or {}).items() if n}
    if truncated:
        rows["clips longer than the input (cut)"] = ", ".join(f"{split}: {n}" for split, n in truncated.items())
    if report.get("num_skipped"):
        reasons = ", ".join(f"{reason}: {n}" for reason, n in (report.get("skipped_by_reason") or {}).items())
        rows["skipped clips"] = f"{report['num_skipped']} ({reasons})" if reasons else str(report["num_skipped"])
    normalization = report.get("normalization") or {}
    if "mean" in normalization and "std" in normalization:
        rows["normalization (train log-mel)"] = f"mean {float(normalization['mean']):.3f} dB, std {float(normalization['std']):.3f} dB"
    return rows


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _framework_versions() -> dict[str, str]:
    import huggingface_hub
    import torch
    import transformers

    from . import __version__

    return {"audio_vit": __version__, "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
            "huggingface_hub": huggingface_hub.__version__}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "dataset"


# ----------------------------------------------------------------------------------------------
# Building, writing and validating the card
# ----------------------------------------------------------------------------------------------


def build_model_card(
    output_dir: str | os.PathLike,
    *,
    results: Mapping[str, Any] | str | os.PathLike | None = None,
    training_args: Any = None,
    data_summary: Mapping[str, Any] | None = None,
    base_model: str | None = None,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    model_description: str | None = None,
    license: str = "apache-2.0",
    split: str = "test",
    tags: Sequence[str] | None = None,
    intended_use: str | None = None,
    limitations: Sequence[str] | None = None,
    confusion_matrix_image: str | None = CONFUSION_MATRIX_IMAGE,
    template: str | os.PathLike | None = None,
):
    """Everything `write_model_card` does except writing README.md; returns the `huggingface_hub.ModelCard`."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    output_dir = Path(output_dir)
    config, preprocessing, parsed, labels = _read_model_folder(output_dir, results, split)
    repo_id = repo_id or f"<user>/{output_dir.resolve().name}"
    model_name = model_name or repo_id.split("/")[-1]
    dataset_name = dataset_name or dataset_id or "the training data"
    if model_description is None:
        model_description = _describe_model(config, base_model, dataset_name, len(labels))
    clip_seconds, preprocessing_view, preprocessing_table = _preprocessing_tables(preprocessing, config)
    architecture = {
        key: _format_value(config[key])
        for key in ("backbone", "timm_model_name", "num_mel_bins", "max_length", "patch_size", "frequency_stride",
                    "time_stride", "stem", "stem_channels", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "pooling", "drop_path_rate", "hidden_dropout_prob", "classifier_dropout")
        if config.get(key) not in (None, "", {})
    }
    hyperparameters = _hyperparameters(training_args)
    if data_summary is None and (output_dir / DATA_REPORT_NAME).is_file():
        data_summary = _read_json(output_dir / DATA_REPORT_NAME, "data report")
    if data_summary and "num_clips" in data_summary and "counts" in data_summary:
        data_summary = summarize_data_report(data_summary)

    metrics = parsed["metrics"]
    dataset_type = dataset_id or _slug(dataset_name)
    eval_results = [
        EvalResult(task_type="audio-classification", task_name="Audio Classification", dataset_type=dataset_type,
                   dataset_name=dataset_name, dataset_split=split, metric_type=name, metric_name=name.replace("_", " "),
                   metric_value=round(value, 6))
        for name, value in metrics.items()
        if name in _MODEL_INDEX_METRICS
    ]
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="audio-classification",
        license=license,
        tags=list(dict.fromkeys([*DEFAULT_TAGS, *(tags or [])])),
        datasets=[dataset_id] if dataset_id else None,
        metrics=[name for name in metrics if name in _MODEL_INDEX_METRICS] or None,
        base_model=base_model,
        eval_results=eval_results or None,
    )

    image = None
    if parsed["confusion_matrix"] is not None and confusion_matrix_image:
        plot_confusion_matrix(parsed["confusion_matrix"], labels, output_dir / confusion_matrix_image,
                              title=f"{model_name} ({split})")
        image = confusion_matrix_image

    card = ModelCard.from_template(
        card_data,
        template_path=str(template or template_path()),
        model_name=model_name,
        model_description=model_description,
        base_model=base_model,
        labels=labels,
        intended_use=intended_use,
        clip_seconds=clip_seconds,
        dataset_name=dataset_name,
        dataset_id=dataset_id,
        data_summary={str(k): _format_value(v) for k, v in (data_summary or {}).items()},
        preprocessing=preprocessing_view,
        preprocessing_table=preprocessing_table,
        architecture=architecture,
        hyperparameters=hyperparameters,
        derived_options=sorted((config.get("training_recipe") or {}).get("applied", {})),
        results_table=[(name, _format_value(value)) for name, value in metrics.items()],
        results_split=split,
        results_examples=parsed["num_examples"],
        confusion_matrix_image=image,
        repo_id=repo_id,
        limitations=list(limitations or []),
        framework_versions=_framework_versions(),
    )
    return card


def _read_model_folder(output_dir: Path, results, split: str):
    """(config, preprocessing, parsed results, label names) of a model folder, the labels checked against the results."""
    config = _read_json(output_dir / CONFIG_NAME, "model config")
    preprocessing = {}
    if (output_dir / PREPROCESSOR_NAME).is_file():
        preprocessing = _read_json(output_dir / PREPROCESSOR_NAME, "feature extractor config")
    if results is None and (output_dir / TEST_RESULTS_NAME).is_file():
        results = output_dir / TEST_RESULTS_NAME
    if isinstance(results, (str, os.PathLike)):
        results = _read_json(Path(results), "results file")
    parsed = parse_results(results or {}, split=split)
    id2label = config.get("id2label") or {}
    labels = [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    if parsed["labels"] is not None and labels and parsed["labels"] != labels:
        raise ValueError(
            f"results label names {parsed['labels']} differ from config.json id2label {labels}; "
            "the results belong to another model or label order"
        )
    return config, preprocessing, parsed, labels or parsed["labels"] or []


def _describe_model(config: Mapping[str, Any], base_model: str | None, dataset_name: str, num_labels: int) -> str:
    if config.get("backbone", "scratch") == "timm":
        arch = f"a timm `{config.get('timm_model_name')}` backbone"
    elif base_model is None:
        arch = (f"a Vision Transformer ({config.get('num_hidden_layers')} layers, hidden size "
                f"{config.get('hidden_size')}) trained from scratch")
    else:
        arch = "a Vision Transformer"
    return (f"An audio classifier built with audio_vit: {arch} over log-mel spectrograms, classifying clips of "
            f"{dataset_name} into {num_labels} classes.")


def _preprocessing_tables(preprocessing: Mapping[str, Any], config: Mapping[str, Any]):
    """(clip length in seconds, the few values the card's text uses, the full preprocessing table)."""
    sampling_rate = preprocessing.get("sampling_rate")
    hop_length = preprocessing.get("hop_length")
    max_frames = preprocessing.get("max_length", config.get("max_length"))
    clip_seconds = "?"
    if sampling_rate and hop_length and max_frames:
        clip_seconds = f"{(int(max_frames) - 1) * int(hop_length) / int(sampling_rate):.2f}"
    table = {
        key: _format_value(preprocessing[key])
        for key in ("sampling_rate", "n_fft", "win_length", "hop_length", "num_mel_bins", "f_min", "f_max", "mel_scale",
                    "mel_norm", "top_db", "max_length", "padding_value", "do_normalize", "mean", "std")
        if key in preprocessing and preprocessing[key] is not None
    }
    view = {"sampling_rate": sampling_rate or "?",
            "num_mel_bins": preprocessing.get("num_mel_bins", config.get("num_mel_bins")), "max_length": max_frames}
    return clip_seconds, view, table or {"(no preprocessor_config.json)": "-"}


def _hyperparameters(training_args) -> dict[str, str]:
    """The training options worth a row in the card (paths and logging options left out)."""
    merged: dict[str, Any] = {}
    for group in (training_args if isinstance(training_args, (list, tuple)) else [training_args]):
        merged.update(_as_dict(group, "training_args"))
    return {
        key: _format_value(value)
        for key, value in sorted(merged.items())
        if key not in _NON_HYPERPARAMETERS and value is not None and value != {} and not key.startswith("_")
    }


def write_model_card(
    output_dir: str | os.PathLike,
    *,
    results: Mapping[str, Any] | str | os.PathLike | None = None,
    training_args: Any = None,
    data_summary: Mapping[str, Any] | None = None,
    base_model: str | None = None,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    repo_id: str | None = None,
    **kwargs: Any,
) -> Path:
    """Write `output_dir/README.md` (and `confusion_matrix.png`) for a trained model folder; return the card path.

    Args:
        output_dir (`str` or `os.PathLike`): the save_pretrained folder (config.json, preprocessor_config.json).
        results (`dict` or path, *optional*): final evaluation, e.g. the `test_results.json` dict: metric values
            (`test_accuracy` or `accuracy`, ...), `confusion_matrix` (n x n, rows true) and `label_names`.
            Defaults to `output_dir/test_results.json` when present.
        training_args (`dict`, dataclass, `argparse.Namespace` or a list of them, *optional*): hyperparameters
            for the card (paths and logging options are left out).
        data_summary (`dict`, *optional*): a `DataReport.to_dict()` (summarised: clips per split, durations,
            skipped clips) or free-form rows, e.g. `{"train clips": 2430}`. Defaults to `output_dir/data_report.json`.
        base_model (`str`, *optional*): Hub id of the checkpoint this one was fine-tuned from.
        dataset_name (`str`, *optional*): human-readable dataset name. dataset_id (`str`, *optional*): Hub dataset id.
        repo_id (`str`, *optional*): where it will be pushed, used in the usage snippets (default `<user>/<folder>`).
        kwargs: `model_name`, `model_description`, `license`, `split`, `tags`, `intended_use`, `limitations`,
            `confusion_matrix_image`, `template` (see `build_model_card`).
    """
    card = build_model_card(
        output_dir, results=results, training_args=training_args, data_summary=data_summary, base_model=base_model,
        dataset_name=dataset_name, dataset_id=dataset_id, repo_id=repo_id, **kwargs,
    )
    path = Path(output_dir) / CARD_NAME
    card.save(path)
    validate_model_card(path)
    return path


def validate_model_card(card: str | os.PathLike | Any) -> Any:
    """Parse a card back with huggingface_hub and check its metadata offline; return the `ModelCard`.

    `ModelCard.validate` asks the Hub's server, so this checks locally what matters to us: the YAML parses,
    `library_name`, `pipeline_tag` and `license` are set, `model-index` is present and every eval result
    has a task, dataset and numeric value, and images the card links to exist next to it.
    """
    from huggingface_hub import ModelCard

    source_dir = None
    if isinstance(card, str) and card.lstrip().startswith("---"):
        card = ModelCard(card)  # card text
    elif isinstance(card, (str, os.PathLike)):
        if not Path(card).is_file():
            raise FileNotFoundError(f"model card {str(card)!r} does not exist")
        source_dir = Path(card).parent
        card = ModelCard.load(Path(card))
    data = card.data
    problems = []
    if data.library_name != "transformers":
        problems.append(f"library_name={data.library_name!r}, expected 'transformers'")
    if data.pipeline_tag != "audio-classification":
        problems.append(f"pipeline_tag={data.pipeline_tag!r}, expected 'audio-classification'")
    if not data.license:
        problems.append("license is not set")
    header = card.content.split("---", 2)[1] if card.content.startswith("---") else ""
    if "model-index" in header:
        if not data.eval_results:
            problems.append("model-index is present but no eval results parse from it")
        for result in data.eval_results or []:
            if not (result.task_type and result.dataset_type and result.dataset_name and result.metric_type):
                problems.append(f"eval result {result} lacks a task, dataset or metric type")
            if isinstance(result.metric_value, bool) or not isinstance(result.metric_value, (int, float)):
                problems.append(f"eval result {result.metric_type} has non-numeric value {result.metric_value!r}")
    elif data.eval_results is None and "No evaluation results" not in card.text:
        problems.append("no model-index (eval results) in the metadata")
    if source_dir is not None:
        import re

        for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.text):
            if "://" not in image and not (source_dir / image).is_file():
                problems.append(f"the card shows {image!r} but {source_dir / image} does not exist")
    if problems:
        raise ValueError("invalid model card: " + "; ".join(problems))
    return card


__all__ = [
    "build_model_card",
    "parse_results",
    "summarize_data_report",
    "validate_model_card",
    "write_model_card",
]

