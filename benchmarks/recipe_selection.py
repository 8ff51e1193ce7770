"""Choosing a default of the data-derived recipe on validation folds only.

Each candidate is a set of `audio-vit train` flags added to the data flags; every candidate trains on the same test
folds with `audio-vit cross-validate --folds ...`, and this script reads, per fold, the validation scores of the
epoch the training selected (`all_results.json`: `eval_accuracy`, `eval_f1`, `eval_loss` of the best epoch; the
validation fold is another whole fold, never the test fold). Test scores are not printed: they are not for choosing.

    python benchmarks/recipe_selection.py --data-dir outputs/variants/mixed --fold-column fold --folds 2 3 4 \\
        --candidate derived= \\
        --candidate "window2.5s=--max-length 251 --hop-length 160 --max-clip-windows 16" \\
        --output-dir outputs/selection/mixed

A candidate with an empty flag list is the recipe as it derives itself. Runs are resumable (cross-validate skips
finished folds). Prints one table: validation accuracy / macro-F1 / loss per fold and their mean per candidate.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path


def parse_candidate(text: str) -> tuple[str, list[str]]:
    name, _, flags = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"candidate {text!r} must be NAME=FLAGS (FLAGS may be empty)")
    return name, shlex.split(flags)


def run_candidate(name: str, flags: list[str], args) -> Path:
    out = Path(args.output_dir) / name
    command = ["audio-vit", "cross-validate", "--data-dir", args.data_dir, *args.data_flags, "--folds", *args.folds,
               "--output-dir", str(out), "--disable-tqdm", "--seeds", str(args.seed), *flags]
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, check=False)
    return out


def validation_scores(out: Path, folds: list[str], seed: int) -> dict[str, dict]:
    scores = {}
    for fold in folds:
        results_file = out / f"seed{seed}" / f"fold{fold}" / "model" / "all_results.json"
        if results_file.is_file():
            results = json.loads(results_file.read_text(encoding="utf-8"))
            scores[fold] = {key: results.get(f"eval_{key}") for key in ("accuracy", "f1", "loss")}
            scores[fold].update(best_epoch=results.get("best_epoch"), epochs=results.get("epoch"),
                                skipped=results.get("nonfinite_steps_skipped"))
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--folds", nargs="+", required=True, help="test folds to train (validation: the next fold)")
    parser.add_argument("--candidate", action="append", type=parse_candidate, required=True,
                        help="NAME=FLAGS, repeatable; FLAGS are audio-vit train flags (empty: the derived recipe)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--report-only", action="store_true", help="read finished runs, train nothing")
    args, data_flags = parser.parse_known_args(argv)
    args.data_flags = data_flags  # e.g. --fold-column fold, --group-column speaker --num-folds 5
    lines = ["| candidate | " + " | ".join(f"fold {f} acc / F1 / loss (best epoch)" for f in args.folds)
             + " | mean acc | mean F1 | skipped steps |", "|---" * (len(args.folds) + 4) + "|"]
    for name, flags in args.candidate:
        out = Path(args.output_dir) / name if args.report_only else run_candidate(name, flags, args)
        scores = validation_scores(out, args.folds, args.seed)
        cells = [f"{s['accuracy'] * 100:.1f} / {s['f1'] * 100:.1f} / {s['loss']:.3f} ({s['best_epoch']}/{s['epochs']})"
                 if (s := scores.get(fold)) else "-" for fold in args.folds]
        done = list(scores.values())
        mean = (lambda key: sum(s[key] for s in done) / len(done) * 100) if done else (lambda key: float("nan"))
        skipped = sum(s["skipped"] or 0 for s in done)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean('accuracy'):.2f} | {mean('f1'):.2f} | {skipped} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
