"""Scoring a saved model folder on a dataset split (`audio-vit evaluate`): single- or multi-label, with the
model's own feature extractor and label order.
"""
from __future__ import annotations

import dataclasses

import torch

from .task_metrics import EvaluationTask


def evaluate_folder(model_dir: str, data_args=None, prepared_data_dir: str | None = None, split: str = "test",
                    batch_size: int = 64, threshold: float = 0.5) -> dict:
    """Evaluate the model in `model_dir` on `split` of the data; returns accuracy, f1, loss, num_samples,
    labels, confusion_matrix, per_class (precision/recall/F1/support rows) and split. Multi-label models
    (`problem_type="multi_label_classification"`): mAP, micro_AP, micro_f1, macro_f1, subset_accuracy at
    `threshold`, loss, num_samples, labels, per_class (with AP) and split; single-label data is scored
    against one-hot targets.

    The spectrograms are computed with the model's own feature extractor (its parameters and its mean/std);
    the data's label names are mapped onto the model's `label2id`. Data come from `data_args`
    (`--data-dir`/`--dataset`) or from an `audio-vit prepare` folder `prepared_data_dir`.
    """
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from ..classification_report import per_class_scores
    from ..data import SpectrogramCollator, build_datasets, load_prepared, resolve_data_dir
    from ..model_folder import load_feature_extractor, load_model, require_model_folder

    require_model_folder(model_dir, "--model")
    model, feature_extractor = load_model(model_dir), load_feature_extractor(model_dir)
    if prepared_data_dir:
        prepared = load_prepared(prepared_data_dir, feature_extractor=feature_extractor)
    else:
        if data_args is None:
            raise ValueError("no data: pass --data-dir DIR, --dataset NAME or --prepared-data-dir DIR")
        data_args = resolve_data_dir(data_args)
        # Judge clips on as much of them as training did (the auto recipe caches several windows per clip).
        trained_windows = (getattr(model.config, "training_recipe", None) or {}).get("applied", {}).get("max_clip_windows", 1)
        if trained_windows > data_args.max_clip_windows:
            data_args = dataclasses.replace(data_args, max_clip_windows=int(trained_windows))
        prepared = build_datasets(data_args, feature_extractor)
    if split not in prepared.splits:
        raise ValueError(f"--split {split!r} is not in the data; available splits: {list(prepared.splits)}")
    dataset = prepared.splits[split]
    if len(dataset) == 0:
        raise ValueError(f"the {split!r} split is empty")
    multi_label = model.config.problem_type == "multi_label_classification"
    if prepared.multi_label and not multi_label:
        raise ValueError("the data has several labels per clip but the model is single-label (softmax); evaluate "
                         "a model trained on multi-label data, or pass --multi-label false if a cell is one label")
    to_model_id = label_mapping(prepared.id2label, model.config.label2id)
    num_labels = model.config.num_labels
    collator = SpectrogramCollator(feature_extractor)  # the model's mean/std, not the data's

    def collate(examples):
        batch = collator(examples)
        if multi_label:  # data columns -> the model's label order (labels the data lacks stay 0)
            labels = torch.zeros(len(examples), num_labels)
            if prepared.multi_label:
                labels[:, to_model_id] = batch["labels"]
            else:  # one label per clip: a one-hot target
                labels[torch.arange(len(examples)), to_model_id[batch["labels"]]] = 1.0
            batch["labels"] = labels
        else:
            batch["labels"] = to_model_id[batch["labels"]]
        return batch

    accelerator = Accelerator()
    model, loader = accelerator.prepare(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collate))
    config = accelerator.unwrap_model(model).config
    label_names = [config.id2label[i] for i in range(num_labels)]
    task = EvaluationTask(multi_label, label_names, threshold)
    results = task.evaluate(model, loader, accelerator, task.metrics(for_report=True), desc=split)
    if not multi_label:
        results["per_class"] = per_class_scores(results["confusion_matrix"], label_names)
    results["labels"] = label_names
    results["split"] = split
    return results


def label_mapping(data_id2label: dict[int, str], model_label2id: dict[str, int]) -> torch.Tensor:
    """Tensor mapping the data's label ids to the model's, by label name; refuses labels the model lacks."""
    model_label2id = {str(k): int(v) for k, v in model_label2id.items()}
    unknown = sorted(set(data_id2label.values()) - set(model_label2id))
    if unknown:
        raise ValueError(f"the data has labels the model does not know: {unknown}; the model's labels: {sorted(model_label2id)}")
    return torch.tensor([model_label2id[data_id2label[i]] for i in range(len(data_id2label))])
