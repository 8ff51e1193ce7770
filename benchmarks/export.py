"""Export benchmark: ONNX / torch.export accuracy (max abs logit diff) and CPU latency against PyTorch.

    python benchmarks/export.py                      # default-size AudioViT (64 mel x 128 frames), random weights
    python benchmarks/export.py --model outputs/demo # a trained folder

Prints a Markdown table for BENCHMARKS.md (## Export). Latency: median of --repeats runs after 3 warm-up runs,
one thread per framework (torch.set_num_threads / intra_op_num_threads = --threads).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: a fresh default-size AudioViT)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--clips", nargs="*", default=[],
                        help="real audio files: also compare ONNX and PyTorch on their features (needs --model)")
    args = parser.parse_args()

    import onnxruntime as ort

    from audio_vit import AudioViTConfig, AudioViTForAudioClassification
    from audio_vit.export.exporters import check_lengths, export_onnx, export_pt2, load_runner, verify_export
    from audio_vit.model_folder import load_model

    torch.set_num_threads(args.threads)
    if args.model:
        model = load_model(args.model)
    else:
        torch.manual_seed(0)
        config = AudioViTConfig(id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)})
        model = AudioViTForAudioClassification(config).eval()
    config = model.config
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {config.num_mel_bins} mel x {config.max_length} frames, hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, {n_params / 1e6:.2f} M parameters; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, {args.threads} thread(s)")
    cases = check_lengths(config) + [(8, config.max_length)]
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for fmt, export in (("onnx", export_onnx), ("pt2", export_pt2)):
            path = Path(tmp) / f"model.{fmt}"
            start = time.perf_counter()
            export(model, path)
            export_s = time.perf_counter() - start
            checks = verify_export(model, path, fmt, cases=cases)
            if fmt == "onnx":
                options = ort.SessionOptions()
                options.intra_op_num_threads = args.threads
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                run = lambda x: session.run(["logits"], {"input_values": x})[0]  # noqa: E731
            else:
                run = load_runner(path, fmt)
            latency = {}
            for batch in args.batch_sizes:
                x = np.random.default_rng(0).standard_normal((batch, config.num_mel_bins, config.max_length)).astype(np.float32)
                latency[batch] = median_ms(lambda: run(x), args.repeats)
            if args.clips and args.model:
                from audio_vit.data.audio_decoding import load_audio
                from audio_vit.model_folder import load_feature_extractor

                extractor = load_feature_extractor(args.model)
                waves = [load_audio(clip) for clip in args.clips]
                features = extractor([w for w, _ in waves], sampling_rate=waves[0][1], resample=True,
                                     return_tensors="np")["input_values"].astype(np.float32)
                with torch.no_grad():
                    expected = model(torch.from_numpy(features)).logits.numpy()
                got = run(features)
                agree = float((got.argmax(-1) == expected.argmax(-1)).mean())
                print(f"{fmt} on {len(args.clips)} real clips {features.shape}: max abs diff "
                      f"{np.abs(got - expected).max():.2e}, same top label {agree * 100:.1f}%")
            rows.append((fmt, path.stat().st_size, export_s, checks, latency))
        torch_latency = {}
        for batch in args.batch_sizes:
            x = torch.randn(batch, config.num_mel_bins, config.max_length)

            def forward():
                with torch.inference_mode():
                    model(x)

            torch_latency[batch] = median_ms(forward, args.repeats)

    header = " | ".join(f"B={c[0]},T={c[1]}" for c in cases)
    print(f"\n| format | file | export s | max abs diff vs PyTorch ({header}) | "
          + " | ".join(f"latency B={b} (ms)" for b in args.batch_sizes) + " |")
    print("|:--|--:|--:|:--|" + "--:|" * len(args.batch_sizes))
    for fmt, size, export_s, checks, latency in rows:
        diffs = ", ".join(f"{c['max_abs_diff']:.1e}" for c in checks)
        print(f"| {fmt} | {size / 1e6:.2f} MB | {export_s:.1f} | {diffs} | "
              + " | ".join(f"{latency[b]:.2f}" for b in args.batch_sizes) + " |")
    print("| PyTorch eager | - | - | - | " + " | ".join(f"{torch_latency[b]:.2f}" for b in args.batch_sizes) + " |")


if __name__ == "__main__":
    main()
