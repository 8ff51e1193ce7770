"""`audio-vit export`: export a trained model folder to ONNX or a torch.export program, checked against PyTorch."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
What is exported: the model only, input `input_values` float32 (batch, num_mel_bins, frames) -> `logits`
(batch, num_labels), with dynamic batch and frames (at least patch width + time stride frames). Feature
extraction stays in Python: feed the output of AudioViTFeatureExtractor (log-mel dB, normalized). The export
folder keeps preprocessor_config.json and config.json (labels) next to the exported file:

    import numpy as np, onnxruntime as ort, soundfile as sf
    from transformers import AutoConfig
    from audio_vit import AudioViTFeatureExtractor
    fe = AudioViTFeatureExtractor.from_pretrained("EXPORT_DIR")
    labels = AutoConfig.from_pretrained("EXPORT_DIR").id2label
    wave, rate = sf.read("clip.wav", dtype="float32")
    x = fe(wave, sampling_rate=rate, resample=True, return_tensors="np")["input_values"]
    session = ort.InferenceSession("EXPORT_DIR/model.onnx")
    logits = session.run(["logits"], {"input_values": x.astype(np.float32)})[0]
    print(labels[int(logits.argmax(-1)[0])])

The export is run on random inputs at the training length and at a longer and a shorter clip with other
batch sizes; the largest absolute difference from the PyTorch logits is printed and the command fails
(exit 1) if it exceeds --atol.
"""


def build_parser() -> argparse.ArgumentParser:
    from ..export.options import DEFAULT_ATOL, DEFAULT_OPSET, FORMATS

    parser = argparse.ArgumentParser(
        prog="audio-vit export",
        description="Export a model folder to ONNX (onnxruntime) or a torch.export program (.pt2) and check it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder (config.json + model.safetensors) or hub repo id")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or pt2 (torch.export)")
    parser.add_argument("--output", default=None,
                        help="exported file (e.g. out/model.onnx) or folder; default: MODEL/onnx/model.onnx or MODEL/pt2/model.pt2 "
                             "(for a hub repo id: ./NAME-onnx/model.onnx)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                        help=f"largest accepted |exported - PyTorch| logit difference (default: {DEFAULT_ATOL:g})")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..export.exporters import ExportMismatchError, export_model_folder
    from ..model_folder import ModelFolderError, resolve_model_folder

    try:
        folder = resolve_model_folder(args.model)
        output = args.output
        if output is None and not Path(args.model).is_dir():
            # a Hub repo id resolves into the read-only cache: export next to the caller instead
            output = Path(f"{args.model.split('/')[-1]}-{args.format}")
        result = export_model_folder(folder, args.format, output=output, opset=args.opset, atol=args.atol)
    except ModelFolderError as err:
        print(f"audio-vit export: error: {err}", file=sys.stderr)
        return 1
    except ExportMismatchError as err:
        print(f"audio-vit export: check failed: {err}", file=sys.stderr)
        return 1
    print(f"exported {args.format} to {result.path} (copied {', '.join(result.copied) or 'nothing'} next to it)")
    for check in result.checks:
        print(f"  batch={check['batch']:<2d} frames={check['frames']:<5d} max |{args.format} - torch| = {check['max_abs_diff']:.3g}")
    print(f"max abs diff {result.max_abs_diff:.3g} <= atol {args.atol:g}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
