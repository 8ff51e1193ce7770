"""GPU checks: feature extraction on CUDA against the CPU, and mixed-precision training steps.

Run on a machine with a CUDA GPU:

    python benchmarks/gpu_check.py [--clips 256] [--seconds 5]

Prints (1) the largest |GPU - CPU| difference of the log-mel features and GPU clips/s, and (2) for
the default AudioViT, samples/s of a full training step (forward, backward, AdamW) in fp32, bf16 and
fp16 autocast, with the relative difference of the low-precision logits against fp32. Exits non-zero
if a check fails (feature difference > 0.05 dB, non-finite loss, bf16 logits off by > 5%).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from audio_vit import AudioViTConfig, AudioViTFeatureExtractor, AudioViTForAudioClassification


def cuda_time(fn, repeats: int = 5) -> float:
    """Median seconds of `fn()` after one warm-up, synchronising the device around each run."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_feature_extraction(num_clips: int, seconds: float) -> bool:
    rng = np.random.default_rng(0)
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    # Chirps plus noise: energy across the whole mel range, different per clip.
    clips = [
        (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        for i in range(num_clips)
    ]
    extractor = AudioViTFeatureExtractor(num_mel_bins=128, max_length=int(seconds * 100) + 1)
    on_cpu = extractor(clips, sampling_rate=rate, return_tensors="pt", do_normalize=False)["input_values"]
    on_gpu = extractor(clips, sampling_rate=rate, return_tensors="pt", do_normalize=False, device="cuda")["input_values"]
    diff = (on_gpu.float().cpu() - on_cpu.float()).abs().max().item()
    seconds_gpu = cuda_time(lambda: extractor(clips, sampling_rate=rate, return_tensors="pt", device="cuda"))
    seconds_cpu = statistics.median(
        timed(lambda: extractor(clips, sampling_rate=rate, return_tensors="pt")) for _ in range(2)
    )
    print(f"feature extraction: {num_clips} clips of {seconds:g} s, 128 mels")
    print(f"  max |GPU - CPU| = {diff:.2e} dB")
    print(f"  GPU {num_clips / seconds_gpu:,.0f} clips/s  CPU {num_clips / seconds_cpu:,.0f} clips/s"
          f"  (ratio {seconds_cpu / seconds_gpu:.1f}x; includes host<->device copies)")
    return diff <= 0.05


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_mixed_precision(batch_size: int = 256, steps: int = 20) -> bool:
    config = AudioViTConfig(num_labels=10)  # the default: 64 mels x 128 frames, (64, 2) patches, width 128
    inputs = torch.randn(batch_size, config.num_mel_bins, config.max_length, device="cuda")
    labels = torch.randint(0, 10, (batch_size,), device="cuda")
    torch.manual_seed(0)
    reference = AudioViTForAudioClassification(config).cuda().eval()
    with torch.no_grad():
        fp32_logits = reference(inputs).logits
    ok = True
    print(f"training step, default AudioViT, batch {batch_size}")
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        torch.manual_seed(0)
        model = AudioViTForAudioClassification(config).cuda().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
        losses = []

        def step():
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model(inputs, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())

        seconds = cuda_time(lambda: [step() for _ in range(steps)], repeats=3)
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = reference(inputs).logits.float()  # same weights as fp32_logits, lower precision
        rel = ((logits - fp32_logits).norm() / fp32_logits.norm()).item()
        finite = all(np.isfinite(losses))
        ok &= finite and (dtype is None or rel < 0.05)
        print(f"  {name}: {steps * batch_size / seconds:,.0f} samples/s, last loss {losses[-1]:.4f}, "
              f"finite={finite}, logits rel. diff vs fp32 {rel:.2e}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    ok = check_feature_extraction(args.clips, args.seconds)
    ok &= check_mixed_precision()
    print("all GPU checks passed" if ok else "GPU CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
