"""The feature extractor's two frontends as batched torch maths: librosa-style log-mel dB and AST's kaldi fbank.

`AudioViTFeatureExtractor` owns the parameters, the input checks, the padding and the batching; this file
owns the numbers: each frontend's window and mel filterbank, and padded waveforms -> log-mel. It is copied
next to saved checkpoints with the feature extractor (`trust_remote_code`), so it imports only third-party
packages (numpy, torch; librosa and transformers lazily).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

# AST's kaldi-style fbank (ASTFeatureExtractor / torchaudio.compliance.kaldi.fbank with window_type="hanning"):
# fixed per-frame pre-processing and the floor of its natural log.
KALDI_PREEMPHASIS = 0.97
KALDI_LOG_FLOOR = float(np.finfo(np.float32).eps)
# The kaldi frontend computes in float64 like ASTFeatureExtractor's numpy path: in float32 the FFT's rounding,
# relative to a frame's loudest bin, reaches 1e-3 in the log of quiet bands.
KALDI_DTYPE = torch.float64


def librosa_window_and_filters(
    *, sampling_rate: int, n_fft: int, frame_length: int, num_mel_bins: int, f_min: float, f_max: float | None,
    mel_scale: str, mel_norm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(periodic Hann window of `frame_length` centred in `n_fft` samples (n_fft,), librosa mel filterbank
    (num_mel_bins, n_fft // 2 + 1) in float32), on the CPU."""
    import librosa

    window = librosa.filters.get_window("hann", frame_length, fftbins=True)  # periodic, like librosa.stft
    window = librosa.util.pad_center(window, size=n_fft)
    mel_filters = librosa.filters.mel(
        sr=sampling_rate,
        n_fft=n_fft,
        n_mels=num_mel_bins,
        fmin=f_min,
        fmax=f_max,
        htk=mel_scale == "htk",
        norm=mel_norm,
        dtype=np.float32,
    )  # (num_mel_bins, n_fft // 2 + 1)
    return torch.as_tensor(window), torch.as_tensor(mel_filters)


def kaldi_window_and_filters(
    *, sampling_rate: int, n_fft: int, frame_length: int, num_mel_bins: int, f_min: float, f_max: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(symmetric Hann window (frame_length,), kaldi mel filterbank (num_mel_bins, n_fft // 2 + 1)) in float64,
    on the CPU."""
    from transformers.audio_utils import mel_filter_bank

    with warnings.catch_warnings():  # AST's 128-band bank has empty low bands at 512 FFT points; AST's too
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        mel_filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1, num_mel_filters=num_mel_bins, min_frequency=f_min,
            max_frequency=sampling_rate / 2 if f_max is None else f_max,
            sampling_rate=sampling_rate, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True,
        ).T  # (num_mel_bins, n_fft // 2 + 1)
    window = torch.hann_window(frame_length, periodic=False, dtype=torch.float64)
    return window, torch.as_tensor(mel_filters)


def librosa_log_mel(
    waveforms: torch.Tensor, window: torch.Tensor, mel_filters: torch.Tensor, *, n_fft: int, hop_length: int,
    num_frames: int, valid_frames: list[int], top_db: float | None,
) -> torch.Tensor:
    """Centre-padded waveforms (B, samples) -> clipped log-mel dB (B, num_mel_bins, num_frames)."""
    frames = waveforms.unfold(1, n_fft, hop_length)[:, :num_frames]  # (B, T, n_fft), a view
    spectrum = torch.fft.rfft(frames * window, dim=-1)  # (B, T, F) complex
    squares = torch.view_as_real(spectrum).square_()  # (B, T, F, 2): re^2, im^2 in place
    power = squares[..., 0] + squares[..., 1]  # (B, T, F); faster than abs().pow(2), which takes a hypot
    # (M, F) @ (B, F, T): the transposed operand goes to BLAS as is, so the result is already (B, M, T).
    mel = torch.matmul(mel_filters, power.transpose(1, 2))  # (B, num_mel_bins, T) power
    # power_to_db(ref=1.0, amin=1e-10, top_db): 10 * log10(max(mel, amin)), floored at each clip's max
    # minus top_db. The floor is applied to the power (max * 10^(-top_db / 10)): one clamp instead of a clamp
    # and a maximum, equal in dB to float32 rounding (~1e-6 dB).
    floor = 1e-10
    if top_db is not None:
        # Each clip's max over its own valid frames, so padding never changes the clipping floor.
        valid = torch.tensor(valid_frames, device=waveforms.device)
        is_pad = torch.arange(num_frames, device=waveforms.device)[None, :] >= valid[:, None]  # (B, T)
        masked = mel.masked_fill(is_pad[:, None, :], 0.0) if bool(is_pad.any()) else mel
        clip_max = masked.amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        floor = clip_max.mul_(10.0 ** (-top_db / 10.0)).clamp_(min=1e-10)
    return mel.clamp_(min=floor).log10_().mul_(10.0)


def kaldi_log_fbank(
    waveforms: torch.Tensor, window: torch.Tensor, mel_filters: torch.Tensor, *, n_fft: int, hop_length: int,
    num_frames: int, valid_frames: list[int],
) -> torch.Tensor:
    """Uncentred waveforms (B, samples) -> AST's log fbank (B, num_mel_bins, num_frames), 0 on padded frames.

    Computed in `KALDI_DTYPE` (float64; `window` and `mel_filters` must be too), returned in the input's dtype."""
    out_dtype = waveforms.dtype
    waveforms = waveforms.to(KALDI_DTYPE)
    frames = waveforms.unfold(1, window.shape[0], hop_length)[:, :num_frames]  # (B, T, frame_length)
    frames = frames - frames.mean(dim=-1, keepdim=True)  # remove the DC offset per frame
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)  # kaldi: x[-1] := x[0]
    frames = (frames - KALDI_PREEMPHASIS * previous) * window
    power = torch.fft.rfft(frames, n=n_fft, dim=-1).abs().square()  # (B, T, n_fft // 2 + 1)
    mel = torch.matmul(mel_filters, power.transpose(1, 2))  # (B, num_mel_bins, T)
    log_mel = mel.clamp_(min=KALDI_LOG_FLOOR).log_()
    is_pad = torch.arange(num_frames, device=waveforms.device)[None, :] >= torch.tensor(
        valid_frames, device=waveforms.device)[:, None]  # (B, T)
    return log_mel.masked_fill_(is_pad[:, None, :], 0.0).to(out_dtype)


__all__ = ["kaldi_log_fbank", "kaldi_window_and_filters", "librosa_log_mel", "librosa_window_and_filters"]
