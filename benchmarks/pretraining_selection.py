"""How the defaults of `audio-vit pretrain` and of fine-tuning from it were chosen: by what fine-tuning gains on a
validation fold, never by the reconstruction loss and never on a test fold.

For each candidate, on one (test fold, validation fold) pair of a dataset with a fold column:
1. pretrain on the fold's own training clips (every fold but the test and the validation fold; `audio-vit pretrain
   --test-fold T --validation-fold V` leaves both out) with the candidate's pretraining flags;
2. fine-tune from that encoder with `audio-vit train --model-name-or-path ... --test-fold T --validation-fold V
   --do-test false` and the candidate's fine-tuning flags;
3. read the validation scores of the best epoch (the epoch the training keeps: lowest validation loss).
`scratch` trains the scratch ViT on the same split (`--route scratch`), the reference. Every run is resumable and
skipped once finished, so the candidates can run one at a time (each a few minutes on 2 CPU cores):

    python benchmarks/pretraining_selection.py --data-dir outputs/variants/instruments-small --test-fold 1 \\
        --candidates scratch mae --output-dir outputs/pretraining-selection
    python benchmarks/pretraining_selection.py --data-dir ... --test-fold 1 --report   # the table of what finished

Candidates: NAME = pretraining flags + fine-tuning flags (`CANDIDATES`); the pretraining of a name before its first
`+` is shared by every candidate that starts with it (e.g. `mae` and `mae+scratch-optim`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EPOCHS = ["--num-train-epochs", "150"]  # pretraining epochs of every candidate (about 4 min on 179 clips of 5 s)
PRETRAININGS = {
    "mae": [*EPOCHS],  # the defaults: random masking of 75%, decoder 2 x 128, no contrastive term
    "span": [*EPOCHS, "--mask-pattern", "span"],
    "mask50": [*EPOCHS, "--mask-ratio", "0.5"],
    "mask90": [*EPOCHS, "--mask-ratio", "0.9"],
    "contrastive": [*EPOCHS, "--contrastive-weight", "1.0"],
    "decoder64x1": [*EPOCHS, "--decoder-hidden-size", "64", "--decoder-layers", "1"],
    "decoder192x4": [*EPOCHS, "--decoder-hidden-size", "192", "--decoder-layers", "4"],
    "mae400": ["--num-train-epochs", "400"],
}
# Fine-tuning flags after the `+`: none = the transfer recipe's AUDIO_START values for a model folder.
FINE_TUNINGS = {
    "": [],
    # the scratch recipe's optimisation: one LR of 1e-3 for all layers, plateau schedule, its 80 epochs, no head-only
    "scratch-optim": ["--learning-rate", "1e-3", "--layer-decay", "1.0", "--lr-scheduler", "plateau",
                      "--head-only-epochs", "0", "--warmup-epochs", "2", "--num-train-epochs", "80"],
    # AUDIO_START with the scratch recipe's LR (1e-3 at the head, decayed layer-wise to a tenth at the stem)
    "lr1e-3": ["--learning-rate", "1e-3"],
}


def split_flags(data_dir: Path, test_fold: str, validation_fold: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--fold-column", "fold", "--split-strategy", "kfold", "--test-fold",
            test_fold, "--validation-fold", validation_fold]


def run_candidate(name: str, data_dir: Path, test_fold: str, validation_fold: str, root: Path, cache: Path) -> dict:
    from audio_vit.pretraining import parse_pretraining_args, pretrain
    from audio_vit.training import explicit_option_names, parse_training_args, train_with_route

    split = split_flags(data_dir, test_fold, validation_fold)
    common = ["--cache-dir", str(cache), "--disable-tqdm", "--seed", "42"]
    pretraining, _, fine_tuning = name.partition("+")
    run_dir = root / f"test{test_fold}-val{validation_fold}" / name
    result_file = run_dir / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    record = {"candidate": name, "test_fold": test_fold, "validation_fold": validation_fold}
    started = time.time()
    if pretraining == "scratch":
        train_argv = [*split, *common, "--route", "scratch", "--report-to", "none", "--do-test", "false"]
    else:
        encoder = root / f"test{test_fold}-val{validation_fold}" / f"pretrained-{pretraining}"
        if not (encoder / "all_results.json").is_file():
            argv = [*split, *common, *PRETRAININGS[pretraining], "--output-dir", str(encoder), "--overwrite-output-dir"]
            pretrain(*parse_pretraining_args(argv))
        pretrained = json.loads((encoder / "all_results.json").read_text())
        record["pretraining"] = {key: pretrained.get(key) for key in ("epoch", "loss", "train_seconds", "num_clips")}
        train_argv = [*split, *common, "--model-name-or-path", str(encoder), "--report-to", "none", "--do-test",
                      "false", *FINE_TUNINGS[fine_tuning]]
    train_argv += ["--output-dir", str(run_dir / "model"), "--overwrite-output-dir"]
    results = train_with_route(*parse_training_args(train_argv), explicit=explicit_option_names(train_argv))
    record.update({key: results.get(key) for key in ("eval_accuracy", "eval_f1", "eval_loss", "best_epoch", "epoch",
                                                    "train_runtime_this_run")})
    record["seconds"] = time.time() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(record, indent=2) + "\n")
    return record


def report(root: Path) -> str:
    rows = ["| split | candidate | val accuracy | val F1 | val loss | best epoch | pretraining loss / s | fine-tune s |",
            "|---|---|---|---|---|---|---|---|"]
    for path in sorted(root.glob("*/*/result.json")):
        r = json.loads(path.read_text())
        pre = r.get("pretraining") or {}
        pre_text = f"{pre['loss']:.3f} / {pre['train_seconds']:.0f}" if pre.get("loss") is not None else "-"
        rows.append(f"| test {r['test_fold']} val {r['validation_fold']} | {r['candidate']} | "
                    f"{100 * r['eval_accuracy']:.1f} | {100 * r['eval_f1']:.1f} | {r['eval_loss']:.4f} | "
                    f"{r['best_epoch']}/{r['epoch']} | {pre_text} | {r['train_runtime_this_run']:.0f} |")
    return "\n".join(rows)


def next_fold(data_dir: Path, test_fold: str) -> str:
    """The validation fold `audio-vit train --recipe auto` picks for `test_fold`: the next one in fold order."""
    import csv

    with open(data_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        folds = sorted({row["fold"] for row in csv.DictReader(handle)}, key=lambda f: (len(f), f))
    return folds[(folds.index(str(test_fold)) + 1) % len(folds)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--test-fold", required=True)
    parser.add_argument("--validation-fold", default=None, help="default: the fold the recipe picks (the next one)")
    parser.add_argument("--candidates", nargs="+", default=[])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/pretraining-selection"))
    parser.add_argument("--report", action="store_true", help="print the table of the finished runs")
    args = parser.parse_args()
    validation_fold = args.validation_fold or next_fold(args.data_dir, args.test_fold)
    root = args.output_dir / args.data_dir.name
    for name in args.candidates:
        pretraining, _, fine_tuning = name.partition("+")
        if (pretraining != "scratch" and pretraining not in PRETRAININGS) or fine_tuning not in FINE_TUNINGS:
            parser.error(f"unknown candidate {name!r}: PRETRAINING[+FINE_TUNING] with PRETRAINING one of scratch, "
                         f"{', '.join(PRETRAININGS)} and FINE_TUNING one of {', '.join(f for f in FINE_TUNINGS if f)}")
        record = run_candidate(name, args.data_dir.resolve(), args.test_fold, validation_fold, root,
                               args.output_dir / "cache")
        print(json.dumps(record, indent=2), flush=True)
    if args.report or not args.candidates:
        print(report(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
