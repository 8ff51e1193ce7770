"""`audio-vit` command line: one subcommand per module in `audio_vit.commands`.

Each command module exposes `main(argv: list[str]) -> int` and builds its own parser, so
`audio-vit COMMAND --help` is owned by the module that implements the command. Command modules import only
the standard library at the top (torch, transformers and datasets inside `main`, after parsing), so `--help`
answers at once; `benchmarks/startup.py` measures it.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "prepare": ("audio_vit.commands.prepare", "decode, split and cache a dataset as log-mel spectrograms"),
    "train": ("audio_vit.commands.train", "train a classifier (one process; use scripts/train.py with accelerate launch for more)"),
    "pretrain": ("audio_vit.commands.pretrain",
                 "pretrain the ViT on unlabeled audio (masked spectrogram modeling) into an encoder to fine-tune"),
    "evaluate": ("audio_vit.commands.evaluate", "evaluate a trained model folder on a dataset split"),
    "cross-validate": ("audio_vit.commands.cross_validate",
                       "k-fold cross-validation of the training (given or made folds), tables + confusion matrix"),
    "compare": ("audio_vit.commands.compare",
                "baselines (scikit-learn, CNNs, timm) and the ViT on the same folds: table + bar chart"),
    "demo": ("audio_vit.commands.demo", "train + evaluate the from-scratch ViT on FSDD and write a model folder"),
    "predict": ("audio_vit.commands.predict", "classify audio files, with sliding windows for long recordings"),
    "push": ("audio_vit.commands.push", "upload a model folder to the Hugging Face Hub"),
    "export": ("audio_vit.commands.export", "export a model folder to ONNX or TorchScript"),
    "convert-ast": ("audio_vit.commands.convert_ast", "convert an AST (AudioSet) checkpoint into an audio_vit model folder"),
    "serve": ("audio_vit.commands.serve", "serve a web demo of a model folder (upload or record a clip)"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: audio-vit COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `audio-vit COMMAND --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"audio-vit: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    finally:
        if "accelerate" in sys.modules:  # a command that trained under `accelerate launch`: close its process group
            from .training import end_distributed

            end_distributed()


def console_main() -> int:
    """Entry point of the `audio-vit` script: user errors print one line instead of a traceback
    (set AUDIO_VIT_DEBUG=1 to see the traceback)."""
    import os

    # The per-tensor "Loading weights" bar is noise on a command line. The variable (read by huggingface_hub,
    # whose setting transformers follows) avoids importing transformers before the command needs it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return main()
    except (ValueError, OSError) as err:
        if os.environ.get("AUDIO_VIT_DEBUG"):
            raise
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        print(f"audio-vit {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(console_main())
