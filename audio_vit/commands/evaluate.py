"""`audio-vit evaluate`: accuracy, macro-F1, loss and a confusion matrix of a trained model on a dataset split
(multi-label models: mAP, micro-AP, micro/macro-F1 and subset accuracy at --threshold), plus a per-class report.

    audio-vit evaluate --model outputs/fsdd --data-dir fsdd --split test
    audio-vit evaluate --model outputs/fsdd --prepared-data-dir prepared/fsdd --output-file eval.json

The spectrograms are computed with the model's own feature extractor (its parameters and its mean/std);
the data's label names are mapped onto the model's `label2id`. The report (`per_class.json`, `per_class.md`,
`confusion_matrix.png` for single-label models) goes to --report-dir, by default MODEL/eval_SPLIT.
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
    report_dir: str | None = field(
        default=None,
        metadata={"help": "Folder for the per-class report (per_class.json, per_class.md) and confusion_matrix.png "
                  "(single-label models); default: MODEL/eval_SPLIT."},
    )
    threshold: float = field(
        default=0.5, metadata={"help": "Multi-label models: decision threshold on sigmoid scores for F1 and subset "
                               "accuracy (mAP uses no threshold)."}
    )


def write_report(results: dict, report_dir: str | Path, model_dir: str) -> dict:
    """`per_class.json`, `per_class.md` (and `confusion_matrix.png`) of `evaluate_folder`'s results."""
    from ..classification_report import write_classification_report

    overall = ("mAP", "micro_AP", "micro_f1", "macro_f1", "subset_accuracy", "threshold", "loss", "num_samples") \
        if "mAP" in results else ("accuracy", "f1", "loss", "num_samples")
    return write_classification_report(
        report_dir, results["per_class"], confusion_matrix=results.get("confusion_matrix"), labels=results["labels"],
        title=f"{Path(model_dir).name}, {results['split']} split", summary={k: results[k] for k in overall},
    )


def main(argv: list[str] | None = None) -> int:
    from ..argparsing import DataclassArgumentParser
    from ..data.arguments import DataArguments

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = DataclassArgumentParser((EvaluateArguments, DataArguments), prog="audio-vit evaluate")
    eval_args, data_args = parser.parse_args_into_dataclasses(argv)
    from ..training import evaluate_folder  # torch, datasets: after --help had its chance
    try:
        results = evaluate_folder(eval_args.model, data_args, eval_args.prepared_data_dir, eval_args.split,
                                  eval_args.per_device_eval_batch_size, eval_args.threshold)
    except (ValueError, FileNotFoundError) as err:  # includes ModelFolderError
        print(f"audio-vit evaluate: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(results, indent=2)
    if eval_args.output_file:
        Path(eval_args.output_file).write_text(text + "\n", encoding="utf-8")
    report_dir = eval_args.report_dir or str(Path(eval_args.model) / f"eval_{eval_args.split}")
    written = write_report(results, report_dir, eval_args.model)
    headline = ("mAP", "micro_f1", "macro_f1", "subset_accuracy") if "mAP" in results else ("accuracy", "f1")
    summary = {k: results[k] for k in ("split", *headline, "loss", "num_samples")}
    summary["report"] = [str(path) for path in written.values()]
    print(json.dumps(summary, indent=2))
    return 0
