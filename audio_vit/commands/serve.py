"""`audio-vit serve`: a local web page and JSON API for a model folder (upload or record a clip, see its labels)."""
from __future__ import annotations

import argparse

from ..serving.options import (SERVE_CONCURRENCY, SERVE_KEPT_DOWNLOADS, SERVE_MAX_BATCH_SIZE, SERVE_MAX_DURATION_S,
                                 SERVE_MAX_QUEUE, SERVE_MAX_QUEUED_AUDIO_S, SERVE_MAX_UPLOAD_MB)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-vit serve",
        description=(
            "Serve a web demo of a trained model: upload a file of any length or record from the microphone, see "
            "the top labels with scores, an overview of the log-mel spectrogram with the model's windows marked, "
            "a timeline plot and table of window labels for long recordings (CSV download) and a model card "
            "summary. Programs call the /classify endpoint (labels and scores as JSON; see the README for "
            "gradio_client and curl). Concurrent requests share the model: their windows go through it in one "
            "batch. --concurrency requests run at once, at most --max-queue more wait, and together they hold at "
            "most --max-queued-audio-min of audio: a request beyond that is answered at once \"The server is busy: "
            "...; please retry in a moment\", so waits stay bounded under a burst. Works offline; needs the `serve` "
            "extra (pip install 'audio-vit[serve]')."
        ),
    )
    parser.add_argument("--model", required=True, help="model folder written by training, or a hub repo id")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--top-k", type=int, default=5, help="labels shown with their scores (default: 5)")
    parser.add_argument("--max-batch-size", type=int, default=SERVE_MAX_BATCH_SIZE,
                        help=f"windows per forward pass, gathered from concurrent requests (default: {SERVE_MAX_BATCH_SIZE})")
    parser.add_argument("--concurrency", type=int, default=SERVE_CONCURRENCY,
                        help=f"requests decoded and classified at once (default: {SERVE_CONCURRENCY})")
    parser.add_argument("--max-queue", type=int, default=SERVE_MAX_QUEUE,
                        help="requests waiting for one of those slots at most; one more is answered \"busy, retry\" "
                             f"at once (default: {SERVE_MAX_QUEUE})")
    parser.add_argument("--max-queued-audio-min", type=float, default=SERVE_MAX_QUEUED_AUDIO_S / 60,
                        help="minutes of audio the requests taken in (running and waiting) hold at most; a recording "
                             "that would pass it is answered \"busy, retry\" at once (unless the server is idle), so "
                             "a burst of long recordings does not make everyone wait; size it to the machine's speed "
                             f"(BENCHMARKS.md, \"Serving under load\") (default: {SERVE_MAX_QUEUED_AUDIO_S / 60:g})")
    parser.add_argument("--max-duration-min", type=float, default=SERVE_MAX_DURATION_S / 60,
                        help="longer recordings are refused with a message; the working memory is bounded, the "
                             "window results grow with the length (about 2 MB per hour at a 0.5 s hop) "
                             f"(default: {SERVE_MAX_DURATION_S / 60:g}, i.e. {SERVE_MAX_DURATION_S / 3600:g} h)")
    parser.add_argument("--kept-downloads", type=int, default=SERVE_KEPT_DOWNLOADS,
                        help=f"the page's CSV downloads kept on disk, the latest (default: {SERVE_KEPT_DOWNLOADS})")
    parser.add_argument("--max-upload-mb", type=float, default=SERVE_MAX_UPLOAD_MB,
                        help=f"larger uploads are refused with a message (default: {SERVE_MAX_UPLOAD_MB})")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for option, value in (("--top-k", args.top_k), ("--max-batch-size", args.max_batch_size),
                          ("--concurrency", args.concurrency), ("--kept-downloads", args.kept_downloads)):
        if value < 1:
            raise ValueError(f"{option} {value} must be at least 1")
    if args.max_queue < 0:
        raise ValueError(f"--max-queue {args.max_queue} must be at least 0")
    for option, value in (("--max-duration-min", args.max_duration_min), ("--max-upload-mb", args.max_upload_mb),
                          ("--max-queued-audio-min", args.max_queued_audio_min)):
        if not value > 0:
            raise ValueError(f"{option} {value} must be positive")
    try:
        from ..serving.app import build_demo
        import gradio  # noqa: F401
    except ImportError as err:
        raise OSError(f"audio-vit serve needs gradio ({err}); install it with pip install 'audio-vit[serve]'") from err

    demo = build_demo(args.model, top_k=args.top_k, max_batch_size=args.max_batch_size, concurrency=args.concurrency,
                      max_queue=args.max_queue, max_queued_audio_s=args.max_queued_audio_min * 60,
                      max_duration_s=args.max_duration_min * 60, kept_downloads=args.kept_downloads)
    print(f"audio-vit serve: {args.model} on http://{args.host}:{args.port} (API: /classify; Ctrl+C to stop)", flush=True)
    try:
        demo.launch(  # the queue and the admission (--concurrency, --max-queue, ...) are set up by build_demo
            server_name=args.host, server_port=args.port, share=False, show_error=True, quiet=True,
            max_file_size=int(args.max_upload_mb * 1024 * 1024),
        )
    finally:
        demo.close()  # the model's worker thread and the CSV downloads
    return 0
