"""A package checkpoint fine-tuned by transformers' official audio-classification example, unchanged, against
`audio-vit train` for the same epochs from the same start, both scored on the FSDD test split.

    python benchmarks/hf_trainer_example.py --example outputs/run_audio_classification.py --output-dir outputs/hf-example
    python benchmarks/hf_trainer_example.py ... --steps example --num-processes 2   # the example under accelerate launch

`--example` is examples/pytorch/audio-classification/run_audio_classification.py of transformers (not shipped with
the wheel: take it from the transformers repository at the installed version). Decoding the audiofolder needs
`pip install torchcodec` and FFmpeg (`apt-get install ffmpeg`); audio_vit itself needs neither.

Steps (`--steps`, in this order; one whose output folder exists is skipped, so a run can be split over several calls):

- `start`: `audio-vit train --config audio_vit/recipes/fsdd.yaml --num-train-epochs START_EPOCHS` (a short run of the
  FSDD recipe) -> OUT/start, the checkpoint both fine-tunings start from.
- `audiofolder`: OUT/fsdd-audiofolder/{train,validation,test}/<digit>/<clip>.flac, symlinks to the FSDD clips, split
  as `audio-vit train` splits them (the official test split; validation the same stratified 10% of the rest).
- `package`: `audio-vit train --config audio_vit/recipes/fsdd.yaml --model-name-or-path OUT/start --num-train-epochs
  EPOCHS --seed SEED`: the package's fine-tuning recipe for a trained start (`--recipe auto`) -> OUT/package-seedSEED;
  and the same with `--layer-decay 1.0` (one learning rate for the whole network, as the example has) ->
  OUT/package-one-lr-seedSEED.
- `example`: the example with `--freeze_feature_encoder True` and `False` -> OUT/example-freeze-{true,false}-seedSEED;
  its flags mirror the package recipe where the example has one (learning rate, one warmup epoch, cosine schedule,
  weight decay, batch 32, random 1 s crops); it evaluates on the test split (`--eval_split_name test`).
  `--num-processes 2` runs it under `accelerate launch --multi_gpu --num_processes 2` (gloo on a CPU), each process
  with half the batch -> OUT/example-...-2proc.
- `evaluate`: `audio-vit evaluate --split test` of every folder above (one scorer for all), and the accuracy of
  transformers' own `pipeline("audio-classification", trust_remote_code=True)` on the same test clips, in a process
  that does not import audio_vit -> OUT/results.json.

The example loads its metric with `evaluate.load("accuracy")`, which downloads a script from the Hub; it runs here
from OUT/run, where `accuracy/accuracy.py` (the package's copy of that script) makes the load work offline.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "audio_vit" / "recipes" / "fsdd.yaml"
STEPS = ("start", "audiofolder", "package", "example", "evaluate")
BATCH_SIZE = 32  # audio-vit train's --per-device-train-batch-size default
# `audio-vit train` runs from the start: the package's fine-tuning recipe, and the same with one learning rate for the
# whole network (the recipe decays it layer-wise to a tenth at the stem; the example has one LR), a control row.
PACKAGE_VARIANTS = {"package": [], "package-one-lr": ["--layer-decay", "1.0"]}


def run(command: list[str], cwd: Path | None = None) -> float:
    """Run `command`, echoing it; return its wall time in seconds."""
    print("+", " ".join(command), flush=True)
    began = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd)
    return time.perf_counter() - began


def build_audiofolder(out: Path) -> dict[str, int]:
    """FSDD as an audiofolder split as `audio-vit train --config audio_vit/recipes/fsdd.yaml` splits it."""
    from audio_vit.data import DataArguments, resolve_data_dir
    from audio_vit.data.sources import build_manifest
    from audio_vit.data.splits import assign_splits
    from audio_vit.training import read_config_file

    recipe = read_config_file(RECIPE)
    data_args = resolve_data_dir(DataArguments(data_dir=recipe["data_dir"], validation_fraction=recipe["validation_fraction"]))
    manifest = build_manifest(data_args)
    split_rows, _ = assign_splits(manifest, data_args)
    paths = manifest.audio["audio"]
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for split, rows in split_rows.items():
        for row in rows:
            target = partial / split / manifest.labels[row] / Path(paths[row]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(paths[row]).resolve())
    partial.rename(out)
    return {split: len(rows) for split, rows in split_rows.items()}


# transformers' own pipeline on the folder, through its code files (trust_remote_code), on the audiofolder's test clips
PIPELINE_ACCURACY = """
import json, sys
from pathlib import Path
import soundfile as sf
from transformers import pipeline
folder, test_dir = sys.argv[1:3]
classifier = pipeline("audio-classification", model=folder, trust_remote_code=True)
clips = sorted(Path(test_dir).glob("*/*.flac"))
hits = [classifier(sf.read(clip, dtype="float32")[0], top_k=1)[0]["label"] == clip.parent.name for clip in clips]
assert "audio_vit" not in sys.modules
print(json.dumps(sum(hits) / len(hits)))
"""


def pipeline_accuracy(folder: Path, audiofolder: Path) -> float:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", PIPELINE_ACCURACY, str(folder), str(audiofolder / "test")],
                          check=True, capture_output=True, text=True, env=env, cwd=folder.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def example_command(args, start: Path, audiofolder: Path, output_dir: Path, freeze: bool, seed: int) -> list[str]:
    from audio_vit.training.transfer_recipe import AUDIO_START

    per_device = BATCH_SIZE // args.num_processes
    launcher = [sys.executable, args.example]
    if args.num_processes > 1:
        # --multi_gpu: several processes (gloo on a machine without GPUs); accelerate's --cpu would start only one
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                    str(args.num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    args.example]
    return launcher + [
        "--model_name_or_path", str(start), "--trust_remote_code", "True",
        "--dataset_name", str(audiofolder), "--train_split_name", "train", "--eval_split_name", "test",
        "--audio_column_name", "audio", "--label_column_name", "label", "--remove_unused_columns", "False",
        "--freeze_feature_encoder", str(freeze), "--max_length_seconds", "1",
        "--do_train", "--do_eval", "--num_train_epochs", str(args.epochs), "--learning_rate", str(AUDIO_START.learning_rate),
        "--lr_scheduler_type", "cosine", "--warmup_steps", str(round(1 / args.epochs, 4)), "--weight_decay", "0.05",
        "--per_device_train_batch_size", str(per_device), "--per_device_eval_batch_size", "64",
        "--eval_strategy", "epoch", "--save_strategy", "no", "--logging_strategy", "epoch", "--report_to", "none",
        "--use_cpu", "True", "--seed", str(seed), "--output_dir", str(output_dir),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", help="path of transformers' run_audio_classification.py (for the 'example' step)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/hf-example"))
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--start-epochs", type=int, default=4, help="epochs of the start checkpoint's short run")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs of both routes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--freeze", choices=("true", "false"), nargs="+", default=["true", "false"],
                        help="--freeze_feature_encoder values the example runs with")
    parser.add_argument("--num-processes", type=int, default=1, help="> 1: the example under accelerate launch")
    args = parser.parse_args(argv)
    if args.example:
        args.example = str(Path(args.example).resolve())  # the example runs from OUT/run
    out = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start, audiofolder = out / "start", out / "fsdd-audiofolder"
    times_file = out / "seconds.json"
    seconds = json.loads(times_file.read_text()) if times_file.is_file() else {}
    train = [sys.executable, "-m", "audio_vit.cli", "train", "--config", str(RECIPE), "--report-to", "none",
             "--disable-tqdm"]

    if "start" in args.steps and not start.exists():
        seconds["start"] = run(train + ["--num-train-epochs", str(args.start_epochs), "--output-dir", str(start)])
        times_file.write_text(json.dumps(seconds, indent=1))
    if "audiofolder" in args.steps and not audiofolder.exists():
        print("audiofolder clips:", build_audiofolder(audiofolder))
    for seed in args.seeds:
        for variant, extra in PACKAGE_VARIANTS.items():
            package = out / f"{variant}-seed{seed}"
            if "package" in args.steps and not package.exists():
                seconds[package.name] = run(train + ["--model-name-or-path", str(start), "--num-train-epochs",
                                                     str(args.epochs), "--seed", str(seed), "--output-dir", str(package),
                                                     *extra])
                times_file.write_text(json.dumps(seconds, indent=1))
        for freeze in args.freeze if "example" in args.steps else ():
            if not args.example:
                parser.error("the 'example' step needs --example PATH/run_audio_classification.py")
            name = f"example-freeze-{freeze}-seed{seed}" + (f"-{args.num_processes}proc" if args.num_processes > 1 else "")
            if (out / name).exists():
                continue
            workdir = out / "run"
            if not (workdir / "accuracy" / "accuracy.py").is_file():
                shutil.copytree(REPO / "audio_vit" / "metrics" / "accuracy", workdir / "accuracy", dirs_exist_ok=True)
            seconds[name] = run(example_command(args, start, audiofolder, out / name, freeze == "true", seed), cwd=workdir)
            times_file.write_text(json.dumps(seconds, indent=1))

    if "evaluate" in args.steps:
        from audio_vit.training import read_config_file

        results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
        folders = sorted(p for p in out.iterdir() if (p / "config.json").is_file())
        for folder in folders:
            if folder.name in results:
                continue
            report = out / "evaluations" / f"{folder.name}.json"
            report.parent.mkdir(exist_ok=True)
            run([sys.executable, "-m", "audio_vit.cli", "evaluate", "--model", str(folder), "--data-dir",
                 read_config_file(RECIPE)["data_dir"], "--split", "test", "--output-file", str(report)])
            scores = json.loads(report.read_text())
            example_eval = folder / "eval_results.json"
            results[folder.name] = {
                "accuracy": scores["accuracy"], "f1": scores["f1"], "seconds": seconds.get(folder.name),
                "pipeline_accuracy": pipeline_accuracy(folder, audiofolder),
                "example_eval_accuracy": json.loads(example_eval.read_text())["eval_accuracy"] if example_eval.is_file() else None,
            }
            (out / "results.json").write_text(json.dumps(results, indent=1))
        print("| model folder | audio-vit evaluate | transformers pipeline (trust_remote_code) | the example's own eval "
              "| seconds |")
        print("| --- | --- | --- | --- | --- |")
        for name, row in results.items():
            own = "" if row["example_eval_accuracy"] is None else f"{100 * row['example_eval_accuracy']:.2f}%"
            took = "" if row["seconds"] is None else f"{row['seconds']:.0f}"
            print(f"| {name} | {100 * row['accuracy']:.2f}% | {100 * row['pipeline_accuracy']:.2f}% | {own} | {took} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
