"""`audio-vit demo`: train the from-scratch AudioViT on FSDD (recipe `audio_vit/recipes/fsdd.yaml`: the FSDD
location and the data-derived defaults, as `audio-vit train --data-dir fsdd`), print the test accuracy and write
a loadable model folder.

    audio-vit demo                                  # -> outputs/fsdd-demo
    audio-vit demo --output-dir my_model --num-train-epochs 10
    audio-vit demo --seeds 0 1 2                    # three runs, test accuracy as mean ± std
    FSDD_DIR=/data/fsdd audio-vit demo

The demo trains the package's ViT alone (`--route scratch`, about 8 minutes on 2 CPU cores); `audio-vit demo --route
auto` also fine-tunes the ImageNet EfficientNet-Lite0 and keeps the better on validation, as `audio-vit train`
does by default. Any `audio-vit train` option overrides the recipe. FSDD is located (FSDD_DIR, AUDIO_VIT_DATA_DIR/fsdd,
../shared/data/fsdd next to the checkout, ~/.cache/audio_vit/fsdd) or downloaded (FSDD_URL overrides the URL).
"""
from __future__ import annotations

import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "fsdd.yaml"
DEFAULT_OUTPUT_DIR = "outputs/fsdd-demo"


def main(argv: list[str] | None = None) -> int:
    import logging

    from ..training import explicit_option_names, parse_training_args  # the options only: --help loads no torch

    argv = list(sys.argv[1:] if argv is None else argv)
    # Recipe first, then our defaults, then the user's options (argparse keeps the last value given).
    full_argv = ["--config", str(RECIPE), "--output-dir", DEFAULT_OUTPUT_DIR, "--overwrite-output-dir",
                 "--route", "scratch", *argv]
    try:
        model_args, data_args, aug_config, training_args = parse_training_args(full_argv, prog="audio-vit demo")
    except (ValueError, FileNotFoundError) as err:
        print(f"audio-vit demo: error: {err}", file=sys.stderr)
        return 2
    from ..training import format_summary, train_seeds, train_with_route

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    explicit = explicit_option_names(full_argv)
    if training_args.seeds:  # e.g. `audio-vit demo --seeds 0 1 2`: one model folder per seed, mean ± std
        summary = train_seeds(model_args, data_args, aug_config, training_args, training_args.seeds, explicit)
        print(f"\nFSDD test accuracy over seeds {training_args.seeds}:\n{format_summary(summary)}")
        print(f"model folders: {Path(training_args.output_dir).resolve()}/seed-N")
        return 0
    results = train_with_route(model_args, data_args, aug_config, training_args, explicit=explicit)
    output_dir = Path(training_args.output_dir)
    if "test_accuracy" in results:
        print(f"\nFSDD test accuracy: {results['test_accuracy'] * 100:.2f}% ({results['test_num_samples']} clips, "
              f"macro-F1 {results['test_f1']:.4f}, best epoch {results['best_epoch']})")
    print(f"model folder: {output_dir.resolve()}")
    print(f'load it with: audio_vit.audio_classification_pipeline("{output_dir}")')
    return 0
