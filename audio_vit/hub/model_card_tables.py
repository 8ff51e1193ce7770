"""The model card's tables, read from a trained model folder: results, data, preprocessing, architecture and
hyperparameters, as rows of strings for the template.

`model_card.build_model_card` renders them with the Hub metadata. Nothing here imports huggingface_hub or
writes a file; a file that does not parse raises with its path.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from ..model_folder import CONFIG_NAME, DATA_REPORT_NAME, PREPROCESSOR_NAME, ROUTE_NAME, TEST_RESULTS_NAME

# Keys of a results dict that are bookkeeping, not metrics.
_NON_METRIC_KEYS = {"epoch", "step", "global_step", "samples", "num_samples", "num_examples", "examples", "runtime",
                    "samples_per_second", "steps_per_second", "seconds", "best_epoch", "finished", "stopped_early"}
# Training options that say nothing about the model (paths, logging, resuming).
_NON_HYPERPARAMETERS = {"config", "model_name_or_path", "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "report_to", "logging_steps",
                        "disable_tqdm", "log_examples", "dataloader_num_workers", "save_total_limit", "cpu", "do_test",
                        "max_epochs_this_run", "push_to_hub", "hub_model_id", "hub_token", "logging_dir", "cache_dir"}


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


def read_model_folder(output_dir: Path, results, split: str):
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


def preprocessing_tables(preprocessing: Mapping[str, Any], config: Mapping[str, Any]):
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


def hyperparameter_table(training_args) -> dict[str, str]:
    """The training options worth a row in the card (paths and logging options left out)."""
    merged: dict[str, Any] = {}
    for group in (training_args if isinstance(training_args, (list, tuple)) else [training_args]):
        merged.update(_as_dict(group, "training_args"))
    return {
        key: _format_value(value)
        for key, value in sorted(merged.items())
        if key not in _NON_HYPERPARAMETERS and value is not None and value != {} and not key.startswith("_")
    }


def architecture_table(config: Mapping[str, Any]) -> dict[str, str]:
    """The config values that describe the network (unset ones left out)."""
    return {
        key: _format_value(config[key])
        for key in ("backbone", "timm_model_name", "num_mel_bins", "max_length", "patch_size", "frequency_stride",
                    "time_stride", "stem", "stem_channels", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "pooling", "drop_path_rate", "hidden_dropout_prob", "classifier_dropout")
        if config.get(key) not in (None, "", {})
    }


def data_summary_table(output_dir: Path, data_summary: Mapping[str, Any] | None) -> dict[str, str]:
    """The data table: `data_summary` (a `DataReport.to_dict()` is summarised, other dicts are rows as given),
    else the folder's `data_report.json` when there is one."""
    if data_summary is None and (output_dir / DATA_REPORT_NAME).is_file():
        data_summary = _read_json(output_dir / DATA_REPORT_NAME, "data report")
    if data_summary and "num_clips" in data_summary and "counts" in data_summary:
        data_summary = summarize_data_report(data_summary)
    return {str(k): _format_value(v) for k, v in (data_summary or {}).items()}


def results_table(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    """(metric name, formatted value) rows, in the order of `metrics`."""
    return [(name, _format_value(value)) for name, value in metrics.items()]


__all__ = [
    "architecture_table",
    "read_route",
    "data_summary_table",
    "hyperparameter_table",
    "parse_results",
    "preprocessing_tables",
    "read_model_folder",
    "results_table",
    "summarize_data_report",
]


def read_route(output_dir: Path) -> dict | None:
    """The route choice of `audio-vit train --route auto` (`route.json`) as the card shows it: the chosen route, why,
    the pretrained start and one row per candidate; None for a model trained without a choice."""
    path = Path(output_dir) / ROUTE_NAME
    if not path.is_file():
        return None
    record = _read_json(path, "route record")
    rows = []
    metric = "accuracy"
    for name, candidate in record["candidates"].items():
        validation = candidate.get("validation", {})
        metric = "accuracy" if "accuracy" in validation else "mAP"
        rows.append([f"{name} (chosen)" if name == record["route"] else name,
                     f"{100 * validation.get(metric, float('nan')):.2f}%", f"{validation.get('loss', float('nan')):.4f}",
                     f"{candidate.get('best_epoch')} / {candidate.get('epochs')}",
                     f"{candidate.get('train_seconds') or 0:.0f}"])
    return {"route": record["route"], "why": record["why"], "metric": metric, "rows": rows,
            "start": record.get("pretrained_start", {}).get("description", "none")}

