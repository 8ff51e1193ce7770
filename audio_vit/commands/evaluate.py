"""`audio-vit evaluate`: accuracy, macro-F1, loss and a confusion matrix of a trained model on a dataset split.

    audio-vit evaluate --model outputs/fsdd --data-dir fsdd --split test
    audio-vit evaluate --model outputs/fsdd --prepared-data-dir prepared/fsdd --output-file eval.json

The spectrograms are computed with the model's own feature extractor (its parameters and its mean/std);
the data's label names are mapped onto the model's `label2id`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Model folder written by `audio-vit train` (config, weights, preprocessor)."})
    split: str = field(default="test", metadata={"help": "Split to evaluate: train, validation or test."})
    prepared_data_dir: str | None = field(
        default=None, metadata={"help": "An `audio-vit prepare` output folder instead of --data-dir/--dataset."}
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Clips per forward pass."})
    output_file: str | None = field(default=None, metadata={"help": "Also write the results to this JSON file."})


def evaluate_folder(model_dir: str, data_args=None, prepared_data_dir: str | None = None, split: str = "test",
                    batch_size: int = 64) -> dict:
    """Evaluate the model in `model_dir` on `split`; returns accuracy, f1, loss, num_samples, labels, confusion_matrix."""
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from ..data import SpectrogramCollator, build_datasets, load_prepared
    from ..feature_extraction_audio_vit import AudioViTFeatureExtractor
    from ..modeling_audio_vit import AudioViTForAudioClassification
    from ..training.evaluation import ClassificationMetrics, evaluate_model
    from ..training.loop import resolve_data_dir

    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"--model {model_dir!r} is not a model folder (no config.json)")
    model = AudioViTForAudioClassification.from_pretrained(model_dir)
    feature_extractor = AudioViTFeatureExtractor.from_pretrained(model_dir)
    mean, std = feature_extractor.mean, feature_extractor.std
    if prepared_data_dir:
        prepared = load_prepared(prepared_data_dir, feature_extractor=feature_extractor)
    else:
        if data_args is None or not (data_args.data_dir or data_args.dataset):
            raise ValueError("no data: pass --data-dir DIR, --dataset NAME or --prepared-data-dir DIR")
        prepared = build_datasets(resolve_data_dir(data_args), feature_extractor)
    # build_datasets refits mean/std on its training split: the model was trained with its own.
    feature_extractor.mean, feature_extractor.std = mean, std
    if split not in prepared.splits:
        raise ValueError(f"--split {split!r} is not in the data; available splits: {list(prepared.splits)}")
    dataset = prepared.splits[split]
    if len(dataset) == 0:
        raise ValueError(f"the {split!r} split is empty")
    model_label2id = {str(k): int(v) for k, v in model.config.label2id.items()}
    unknown = sorted(set(prepared.id2label.values()) - set(model_label2id))
    if unknown:
        raise ValueError(f"the data has labels the model does not know: {unknown}; the model's labels: {sorted(model_label2id)}")
    to_model_id = torch.tensor([model_label2id[prepared.id2label[i]] for i in range(len(prepared.id2label))])
    collator = SpectrogramCollator(feature_extractor)

    def collate(examples):
        batch = collator(examples)
        batch["labels"] = to_model_id[batch["labels"]]
        return batch

    accelerator = Accelerator()
    model, loader = accelerator.prepare(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collate))
    num_labels = model.config.num_labels if hasattr(model, "config") else accelerator.unwrap_model(model).config.num_labels
    metrics = ClassificationMetrics(num_labels, with_confusion_matrix=True)
    results = evaluate_model(model, loader, accelerator, metrics, desc=split)
    config = accelerator.unwrap_model(model).config
    results["labels"] = [config.id2label[i] for i in range(num_labels)]
    results["split"] = split
    return results


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from ..data import DataArguments

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((EvaluateArguments, DataArguments), prog="audio-vit evaluate")
    eval_args, data_args = parser.parse_args_into_dataclasses(argv)
    try:
        results = evaluate_folder(eval_args.model, data_args, eval_args.prepared_data_dir, eval_args.split,
                                  eval_args.per_device_eval_batch_size)
    except (ValueError, FileNotFoundError) as err:
        print(f"audio-vit evaluate: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(results, indent=2)
    if eval_args.output_file:
        Path(eval_args.output_file).write_text(text + "\n", encoding="utf-8")
    summary = {k: results[k] for k in ("split", "accuracy", "f1", "loss", "num_samples")}
    print(json.dumps(summary, indent=2))
    return 0
