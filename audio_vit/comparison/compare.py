"""Several models on the same folds, one table: `compare_models`.

    context = prepare_folds(data_args, "out/compare", num_folds=5)
    rows = compare_models(["logreg", "svm", "vit"], context, "out/compare")

Each model is cross-validated in `out/compare/models/<model>/` (resumable, see `cross_validate.py`; a
`vit-distilled:TEACHER` row trains or reuses the TEACHER row's fold runs there, so list the teacher first to have
both rows, or only the student to train the teachers quietly in the teacher's folder); the table
goes to `compare_results.json`, `compare_results.md` and `compare.png` (accuracy and macro F1, mean ± std).
"""
from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Optional, Sequence

from .cross_validate import check_finished_runs, cross_validate_model
from .model_names import check_model_name, describe, display_name, model_folder_name
from .models import FoldContext
from .processes import is_main_process
from .report import compare_markdown, plot_comparison, write_json

logger = logging.getLogger(__name__)


def comparison_row(name: str, summary: dict) -> dict:
    """The table row of one model from its cross-validation summary."""
    runs = summary["runs"]
    speeds = [r["inference_clips_per_second"] for r in runs if r.get("inference_clips_per_second") is not None]
    parameters = [r["parameters"] for r in runs if r.get("parameters") is not None]
    return {
        "model": display_name(name), "description": describe(name), "accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"], "train_seconds": summary["train_seconds"],
        "parameters": int(round(statistics.mean(parameters))) if parameters else None,
        "inference_clips_per_second": statistics.median(speeds) if speeds else None,
        "runs": len(runs),
        **({"routes": [r.get("route") for r in runs]} if any(r.get("route") for r in runs) else {}),
    }


def compare_models(models: Sequence[str], context: FoldContext, output_dir, seeds: Sequence[int] = (42,),
                   command: Optional[str] = None) -> dict:
    """Cross-validate every model of `models` on `context`'s folds; write and return the comparison.

    A model that fails is reported (its error in the JSON and the markdown) and the others still run.
    """
    output_dir = Path(output_dir)
    context.models_dir = output_dir / "models"  # a distilled ViT reuses its teacher row's fold runs
    for name in models:
        check_model_name(name)
        check_finished_runs(name, context, output_dir / "models" / model_folder_name(name))
    rows, failures = [], {}
    for name in models:
        try:
            summary = cross_validate_model(name, context, output_dir / "models" / model_folder_name(name), seeds,
                                           title=f"Cross-validation: {name}")
        except Exception as error:  # noqa: BLE001 -- one broken model must not discard the others' hours
            logger.exception("model %s failed", name)
            failures[name] = f"{type(error).__name__}: {error}"
            continue
        rows.append(comparison_row(name, summary))
        write_comparison(rows, failures, output_dir, command, context)  # the table grows as models finish
    write_comparison(rows, failures, output_dir, command, context)
    return {"models": rows, "failures": failures}


def write_comparison(rows: list[dict], failures: dict, output_dir: Path, command: Optional[str],
                     context: FoldContext) -> None:
    if not is_main_process():
        return
    write_json(output_dir / "compare_results.json",
               {"command": command, "folds_csv": str(context.folds_csv), "models": rows, "failures": failures})
    text = compare_markdown(rows) if rows else "# Model comparison\n\nNo model finished.\n"
    if command:
        text += f"\nCommand:\n\n```\n{command}\n```\n"
    if failures:
        text += "\nFailed:\n\n" + "".join(f"- {name}: {error}\n" for name, error in failures.items())
    (output_dir / "compare_results.md").write_text(text, encoding="utf-8")
    if rows:
        plot_comparison(rows, output_dir / "compare.png")
