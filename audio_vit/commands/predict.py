"""`audio-vit predict`: classify audio files of any length with a trained model folder or hub id."""
from __future__ import annotations

import argparse
import json
import sys

from ..inference.options import AGGREGATIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-vit predict",
        description=(
            "Classify audio files. Recordings longer than the model's training clips are cut into "
            "overlapping windows whose probabilities are averaged; --segments prints each window. Files are "
            "decoded and featurised in chunks, so recordings of hours run in bounded memory. Multi-label "
            "models (trained on several labels per clip) give independent per-label sigmoid scores, not a softmax "
            "over labels, and also print every label whose score reaches --threshold."
        ),
    )
    parser.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, MP3, ...)")
    parser.add_argument("--model", required=True, help="model folder written by training, or a hub repo id")
    parser.add_argument("--window-s", type=float, default=None,
                        help="window length in seconds (default: the feature extractor's max_length)")
    parser.add_argument("--hop-s", type=float, default=None, help="step between windows in seconds (default: half a window)")
    parser.add_argument("--aggregate", choices=AGGREGATIONS, default="mean", help="how window scores combine (default: mean)")
    parser.add_argument("--top-k", type=int, default=3, help="labels to print per file (default: 3)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="multi-label models: labels scoring at least this are the prediction (default: 0.5)")
    parser.add_argument("--segments", action="store_true", help="also print the best label of every window")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from ..inference.long_audio import classify_audio_file
    from ..model_folder import load_feature_extractor, load_model

    if not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold {args.threshold} must be in (0, 1): it is compared with sigmoid scores")
    model = load_model(args.model).to(torch.device(args.device))
    extractor = load_feature_extractor(args.model)
    multi_label = model.config.problem_type == "multi_label_classification"
    for path in args.files:
        result = classify_audio_file(
            model, extractor, path, window_s=args.window_s, hop_s=args.hop_s,
            aggregate=args.aggregate, top_k=None if multi_label else args.top_k,
        )
        predicted = [s["label"] for s in result.scores if s["score"] >= args.threshold] if multi_label else None
        result.scores = result.scores[: args.top_k]
        if args.json:
            record = {"file": path, "scores": result.scores}
            if multi_label:
                record.update(labels=predicted, threshold=args.threshold)
            if args.segments:
                record["windows"] = [vars(w) for w in result.windows]
            print(json.dumps(record))
            continue
        best = ", ".join(f"{s['label']} ({s['score']:.3f})" for s in result.scores)
        print(f"{path}: {best}  [{len(result.windows)} window(s)]")
        if multi_label:
            print(f"  labels >= {args.threshold:g}: {', '.join(predicted) if predicted else '(none)'}")
        if args.segments:
            for w in result.windows:
                print(f"  {w.start_s:8.2f}-{w.end_s:8.2f} s  {w.label}  {w.score:.3f}")
    sys.stdout.flush()
    return 0
