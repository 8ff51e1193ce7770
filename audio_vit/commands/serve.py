"""`audio-vit serve`: a local web page to try a model folder (upload or record a clip, see labels and spectrogram)."""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-vit serve",
        description=(
            "Serve a web demo of a trained model: upload a file or record from the microphone, see the top labels "
            "with scores, the log-mel spectrogram the model saw, a timeline of window labels for long recordings "
            "and a model card summary. Works offline; needs the `serve` extra (pip install 'audio-vit[serve]')."
        ),
    )
    parser.add_argument("--model", required=True, help="model folder written by training, or a hub repo id")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--top-k", type=int, default=5, help="labels shown with their scores (default: 5)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.top_k < 1:
        raise ValueError(f"--top-k {args.top_k} must be at least 1")
    try:
        from ..app import build_demo
        import gradio  # noqa: F401
    except ImportError as err:
        raise OSError(f"audio-vit serve needs gradio ({err}); install it with pip install 'audio-vit[serve]'") from err

    demo = build_demo(args.model, top_k=args.top_k)
    print(f"audio-vit serve: {args.model} on http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, share=False, show_error=True, quiet=True)
    return 0
