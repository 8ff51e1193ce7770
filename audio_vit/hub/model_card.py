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

The card's tables (results, data, preprocessing, architecture, hyperparameters) are read from the folder by
`model_card_tables.py`; this file adds the Hub metadata, renders, writes and validates. The text itself lives
in the template. The confusion-matrix image comes from `classification_report.plot_confusion_matrix`, the
package's one writer of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..classification_report import plot_confusion_matrix
from .model_card_tables import (
    architecture_table,
    data_summary_table,
    hyperparameter_table,
    preprocessing_tables,
    read_model_folder,
    read_route,
    results_table,
)
from ..model_folder import CARD_NAME

CONFUSION_MATRIX_IMAGE = "confusion_matrix.png"
DEFAULT_TAGS = ["audio-classification", "audio_vit", "vision-transformer", "log-mel-spectrogram"]
PACKAGED_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "model_card.md"
SOURCE_TEMPLATE = Path(__file__).resolve().parents[2] / "model_cards" / "template.md"

# Metric types the Hub knows; others still go to the results table.
_MODEL_INDEX_METRICS = {"accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "recall",
                        "top_5_accuracy", "top_k_accuracy", "balanced_accuracy", "roc_auc", "map", "mAP"}


def template_path() -> Path:
    """The card template: the packaged copy, else the repository's `model_cards/template.md`."""
    for path in (PACKAGED_TEMPLATE, SOURCE_TEMPLATE):
        if path.is_file():
            return path
    raise FileNotFoundError(f"model card template not found at {PACKAGED_TEMPLATE} or {SOURCE_TEMPLATE}")


def _framework_versions() -> dict[str, str]:
    import huggingface_hub
    import torch
    import transformers

    from .. import __version__

    return {"audio_vit": __version__, "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
            "huggingface_hub": huggingface_hub.__version__}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "dataset"


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
    from huggingface_hub import ModelCard

    output_dir = Path(output_dir)
    config, preprocessing, parsed, labels = read_model_folder(output_dir, results, split)
    repo_id = repo_id or f"<user>/{output_dir.resolve().name}"
    model_name = model_name or repo_id.split("/")[-1]
    dataset_name = dataset_name or dataset_id or "the training data"
    if model_description is None:
        model_description = _describe_model(config, base_model, dataset_name, len(labels))
    clip_seconds, preprocessing_view, preprocessing_table = preprocessing_tables(preprocessing, config)
    architecture = architecture_table(config)
    hyperparameters = hyperparameter_table(training_args)
    data_table = data_summary_table(output_dir, data_summary)
    metrics = parsed["metrics"]
    card_data = _card_metadata(metrics, model_name=model_name, license=license, tags=tags, base_model=base_model,
                               dataset_name=dataset_name, dataset_id=dataset_id, split=split)

    image = None
    if parsed["confusion_matrix"] is not None and confusion_matrix_image:
        plot_confusion_matrix(parsed["confusion_matrix"], labels, output_dir / confusion_matrix_image,
                              title=f"{model_name} ({split})")
        image = confusion_matrix_image

    return ModelCard.from_template(
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
        data_summary=data_table,
        preprocessing=preprocessing_view,
        preprocessing_table=preprocessing_table,
        architecture=architecture,
        hyperparameters=hyperparameters,
        derived_options=sorted((config.get("training_recipe") or {}).get("applied", {})),
        route=read_route(output_dir),
        results_table=results_table(metrics),
        results_split=split,
        results_examples=parsed["num_examples"],
        confusion_matrix_image=image,
        repo_id=repo_id,
        limitations=list(limitations or []),
        framework_versions=_framework_versions(),
    )


def _card_metadata(metrics: Mapping[str, float], *, model_name: str, license: str, tags: Sequence[str] | None,
                   base_model: str | None, dataset_name: str, dataset_id: str | None, split: str):
    """The card's YAML header (`ModelCardData`): Hub tags, and a model-index of the metrics the Hub knows."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset_type = dataset_id or _slug(dataset_name)
    eval_results = [
        EvalResult(task_type="audio-classification", task_name="Audio Classification", dataset_type=dataset_type,
                   dataset_name=dataset_name, dataset_split=split, metric_type=name, metric_name=name.replace("_", " "),
                   metric_value=round(value, 6))
        for name, value in metrics.items()
        if name in _MODEL_INDEX_METRICS
    ]
    return ModelCardData(
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
    "validate_model_card",
    "write_model_card",
]

