"""`audio-vit convert-ast`: an AST (ASTForAudioClassification) checkpoint -> an audio_vit model folder."""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-vit convert-ast",
        description=(
            "Convert a transformers ASTForAudioClassification checkpoint (e.g. the AudioSet-finetuned AST) into an "
            "audio_vit model folder: same network (16x16 patches, stride 10, CLS + distillation tokens), a kaldi-fbank "
            "feature extractor reproducing ASTFeatureExtractor, logits checked against AST. Fine-tune it with "
            "`audio-vit train --model-name-or-path OUT --ignore-mismatched-labels`."
        ),
    )
    parser.add_argument("source", metavar="SRC", help="AST model folder (config.json + weights) or Hub repo id")
    parser.add_argument("output", metavar="OUT", help="folder to write the audio_vit model to")
    parser.add_argument("--overwrite", action="store_true", help="write into OUT even if it already holds a model")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..pretrained.convert_ast import convert_ast_checkpoint

    print(convert_ast_checkpoint(args.source, args.output, overwrite=args.overwrite).format())
    return 0
