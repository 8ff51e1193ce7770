"""AudioViT feature extractor: waveforms -> log-mel "images" `(batch, num_mel_bins, frames)`.

The extractor owns the parameters, padding, truncation and batching. Checking the raw audio is in
`raw_audio_input.py`, the spectrogram maths of both frontends in `log_mel_frontends.py`, padding features it
already computed (`pad`, what transformers' collators call) in `feature_padding.py`. These files are copied
next to saved checkpoints for `trust_remote_code` loading (transformers copies a file's relative imports with
it), so they import only third-party packages (numpy, torch, transformers; librosa lazily) and each other
(with `audio_utils.py`). Training-time randomness (random crops) is not here: see
`audio_vit.data.augmentation.random_waveform_crop`.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging

from .audio_utils import resample
from .feature_padding import FeaturePaddingMixin
from .log_mel_frontends import (
    KALDI_DTYPE,
    kaldi_log_fbank,
    kaldi_window_and_filters,
    librosa_log_mel,
    librosa_window_and_filters,
)
from .raw_audio_input import mono_float32_clips

logger = logging.get_logger(__name__)

MEL_SCALES = ("slaney", "htk")
FRONTENDS = ("librosa", "kaldi")
PADDING_STRATEGIES = ("max_length", "longest", "do_not_pad")
RETURN_TENSORS = (None, "np", "pt")


class AudioViTFeatureExtractor(FeaturePaddingMixin, SequenceFeatureExtractor):
    r"""Turns raw audio into the log-mel spectrogram "image" an AudioViT model reads.

    `input_values` has shape `(batch, num_mel_bins, frames)`: frequency (mel bins, low to high) on axis 1,
    time (STFT frames) on axis 2, float32. Each clip gives what

        S = librosa.feature.melspectrogram(y=clip, sr=sampling_rate, n_fft=n_fft, hop_length=hop_length,
                win_length=win_length, window="hann", center=True, pad_mode="constant", power=2.0,
                n_mels=num_mel_bins, fmin=f_min, fmax=f_max, htk=(mel_scale == "htk"), norm=mel_norm)
        librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=top_db)

    gives (to float32 rounding, about 1e-3 dB; see tests/test_feature_extraction.py), followed by
    `(x - mean) / std` when `do_normalize`. The whole batch is computed at once in torch: the zero-padded
    waveforms are framed, windowed (periodic Hann, centred, constant padding), real-FFT'd, squared and
    multiplied by a mel filterbank built once with `librosa.filters.mel` and cached per device/dtype.

    Padding is zero-padding of the *waveform* (silence), so padded frames are what librosa gives for the
    zero-padded clip; `top_db` clipping is relative to each clip's own maximum over its valid frames
    (`frames_for(num_samples)` frames of real audio). Truncation to `max_length` frames keeps
    `samples_for(max_length)` samples, so every kept frame sees the same samples as on the full clip.

    Args:
        sampling_rate (`int`, defaults to 16000): sampling rate (Hz) the extractor expects.
        n_fft (`int`, defaults to 400): FFT size (samples).
        win_length (`int`, defaults to `n_fft`): Hann window length, centred in the FFT frame.
        hop_length (`int`, defaults to 160): samples between frames.
        num_mel_bins (`int`, defaults to 64): mel bands (the image height); also `feature_size`.
        f_min (`float`, defaults to 0.0): lowest mel filter edge (Hz).
        f_max (`float`, defaults to `sampling_rate / 2`): highest mel filter edge (Hz).
        mel_scale (`str`, defaults to `"slaney"`): `"slaney"` or `"htk"` mel scale.
        mel_norm (`"slaney"`, a number or `None`, defaults to `"slaney"`): filter normalisation, as librosa's `norm`.
        top_db (`float` or `None`, defaults to 80.0): clip values below each clip's max minus `top_db` dB.
        max_length (`int` or `None`, defaults to 128): frames per example for `padding="max_length"` and
            truncation; `None` means no fixed length (pad to the longest clip, never truncate).
        padding_value (`float`, defaults to 0.0): waveform sample value used for padding (0.0 = silence).
        do_normalize (`bool`, defaults to `True`): apply `(x - mean) / std` to the dB values.
        mean (`float`, defaults to 0.0): dB mean used by `normalize`, set from training data.
        std (`float`, defaults to 1.0): dB standard deviation used by `normalize`, set from training data.
        return_attention_mask (`bool`, defaults to `False`): also return `attention_mask` `(batch, frames)`,
            1 on frames of real audio, 0 on padding.
        frontend (`str`, defaults to `"librosa"`): `"librosa"` as above, or `"kaldi"` for AST's kaldi-style fbank
            (what `ASTFeatureExtractor` computes): frames of `win_length` samples without centre padding, DC offset
            removed, pre-emphasis 0.97, symmetric Hann window, `n_fft`-point power spectrum, kaldi mel filterbank
            (`f_min` to `f_max`), natural log floored at float32 eps; frames past the end of a clip are 0 before
            normalization, as AST pads. `mel_scale`, `mel_norm` and `top_db` do not apply; see
            `audio_vit.pretrained.convert_ast.ast_feature_extractor` for AST's values.
    """

    model_input_names = ["input_values"]
    _auto_class = "AutoFeatureExtractor"  # as register_for_auto_class() sets it (see AudioViTConfig)
    # Frames computed at once (all clips of a chunk together): 65536 frames of n_fft=400 is ~100 MB per
    # intermediate, and a batch of 64 five-second clips (32k frames) still goes in one piece.
    max_frames_per_chunk = 65536

    def __init__(
        self,
        sampling_rate: int = 16000,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int = 160,
        num_mel_bins: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "slaney",
        mel_norm: str | float | None = "slaney",
        top_db: float | None = 80.0,
        max_length: int | None = 128,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        mean: float = 0.0,
        std: float = 1.0,
        return_attention_mask: bool = False,
        frontend: str = "librosa",
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # always num_mel_bins; present in saved configs
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.num_mel_bins = num_mel_bins
        self.f_min = f_min
        self.f_max = f_max
        self.mel_scale = mel_scale
        self.mel_norm = mel_norm
        self.top_db = top_db
        self.max_length = max_length
        self.do_normalize = do_normalize
        self.mean = mean
        self.std = std
        self.frontend = frontend
        self._check_parameters()
        # Tensors built lazily and cached per (device, dtype); never serialised (see to_dict / __getstate__).
        self._tensor_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ parameters and (de)serialisation
    def _check_parameters(self) -> None:
        def positive_int(name):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive int")

        for name in ("sampling_rate", "n_fft", "hop_length", "num_mel_bins"):
            positive_int(name)
        if self.win_length is not None:
            positive_int("win_length")
            if self.win_length > self.n_fft:
                raise ValueError(f"win_length={self.win_length} must be at most n_fft={self.n_fft}")
        if self.max_length is not None:
            positive_int("max_length")
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend={self.frontend!r} must be one of {FRONTENDS}")
        if self.mel_scale not in MEL_SCALES:
            raise ValueError(f"mel_scale={self.mel_scale!r} must be one of {MEL_SCALES}")
        if not (self.mel_norm is None or self.mel_norm == "slaney" or isinstance(self.mel_norm, numbers.Real)):
            raise ValueError(f"mel_norm={self.mel_norm!r} must be 'slaney', a number (p-norm) or None")
        nyquist = self.sampling_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0 <= self.f_min < f_max <= nyquist:
            raise ValueError(
                f"f_min={self.f_min!r} and f_max={self.f_max!r} must satisfy 0 <= f_min < f_max <= "
                f"sampling_rate / 2 = {nyquist}"
            )
        if self.top_db is not None and not self.top_db >= 0:
            raise ValueError(f"top_db={self.top_db!r} must be a non-negative number or None")
        if not np.isfinite(self.mean):
            raise ValueError(f"mean={self.mean!r} must be a finite number")
        if not (np.isfinite(self.std) and self.std > 0):
            raise ValueError(f"std={self.std!r} must be a finite positive number")

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        for key in [k for k in output if k.startswith("_")]:
            del output[key]  # caches (filterbank tensors) and the sampling-rate warning flag
        return output

    def __getstate__(self):
        # Pickling / datasets fingerprinting must not depend on whether the filterbank was built yet.
        state = self.__dict__.copy()
        state["_tensor_cache"] = {}
        return state

    # ------------------------------------------------------------------ small public helpers
    def frames_for(self, num_samples):
        """Frames a clip of `num_samples` samples gives (int, or an integer array for an array input)."""
        if self.frontend == "kaldi":  # no centre padding: only whole frames of win_length samples
            return np.maximum(0, 1 + (num_samples - self._frame_length()) // self.hop_length) if isinstance(
                num_samples, np.ndarray) else max(0, 1 + (num_samples - self._frame_length()) // self.hop_length)
        return 1 + (num_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def samples_for(self, frames: int) -> int:
        """Samples kept when truncating to `frames` frames: the last frame then sees only real samples,
        exactly as on the full clip (`(frames - 1) * hop_length + ceil(n_fft / 2)`)."""
        if self.frontend == "kaldi":
            return (frames - 1) * self.hop_length + self._frame_length()
        return (frames - 1) * self.hop_length + (self.n_fft - self.n_fft // 2)

    def _frame_length(self) -> int:
        return self.n_fft if self.win_length is None else self.win_length

    def normalize(self, input_values):
        """`(x - mean) / std` on a numpy array or torch tensor of dB values (same type back): the one
        normalisation rule, used by `__call__` and by the training collator."""
        return (input_values - self.mean) / self.std

    def with_statistics(self, mean: float, std: float) -> "AudioViTFeatureExtractor":
        """A copy with `mean`/`std` (e.g. of a training split) and `do_normalize=True`; `self` is unchanged."""
        fitted = copy.deepcopy(self)
        fitted.mean, fitted.std, fitted.do_normalize = float(mean), float(std), True
        fitted._check_parameters()
        return fitted

    # ------------------------------------------------------------------ main entry point
    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        padding: str | bool = "max_length",
        truncation: bool = True,
        max_length: int | None = None,
        resample: bool = False,
        do_normalize: bool | None = None,
        return_attention_mask: bool | None = None,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> BatchFeature:
        r"""Compute `input_values` `(batch, num_mel_bins, frames)` (and optionally `attention_mask` `(batch, frames)`).

        Args:
            raw_speech: one clip -- a 1-D array/tensor `(samples,)`, a 2-D `(channels, samples)` one (channels are
                averaged) or a list of floats -- or a list of clips of any lengths. numpy or torch; float samples
                are used as they are, integer PCM is scaled to [-1, 1] (int16 / 32768).
            sampling_rate (`int`, *optional*): rate of `raw_speech`. Must equal `self.sampling_rate` unless
                `resample=True`; `None` assumes `self.sampling_rate` (with a one-time warning).
            return_tensors (`"pt"`, `"np"` or `None`, defaults to `None`): `None` gives a list of numpy arrays
                `(num_mel_bins, frames)` per clip.
            padding (`str` or `bool`, defaults to `"max_length"`): `"max_length"` pads every clip to `max_length`
                frames; `"longest"` (or `True`) to the longest clip in the batch (capped at `max_length` when
                truncating); `"do_not_pad"` (or `False`) keeps each clip's own length (tensors then need equal lengths).
                With `truncation=False`, `"max_length"` pads to `max(max_length, longest)`.
            truncation (`bool`, defaults to `True`): cut clips longer than `max_length` frames to `max_length` frames.
            max_length (`int`, *optional*): frames; defaults to `self.max_length`.
            resample (`bool`, defaults to `False`): resample clips at another `sampling_rate` with soxr (HQ).
            do_normalize (`bool`, *optional*): apply `normalize`; defaults to `self.do_normalize`.
                `False` returns raw log-mel dB.
            return_attention_mask (`bool`, *optional*): defaults to `self.return_attention_mask`.
            device (`str` or `torch.device`, *optional*): compute on this device (e.g. `"cuda"`). With
                `return_tensors="pt"` the results stay on that device; otherwise they come back as CPU numpy.
        """
        if kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)} for {type(self).__name__}.__call__")
        padding, max_length, truncation, device = self._check_call_options(
            return_tensors, padding, max_length, truncation, device
        )
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        return_attention_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        clips = self._prepare_clips(raw_speech, sampling_rate, resample)

        # Samples of each clip used (truncation) and the frames each one fills with real audio.
        lengths = [len(clip) for clip in clips]
        if truncation:
            lengths = [min(n, self.samples_for(max_length)) for n in lengths]
        valid_frames = [self.frames_for(n) for n in lengths]
        if truncation:
            valid_frames = [min(f, max_length) for f in valid_frames]
        longest = max(valid_frames)
        num_frames = max(max_length, longest) if padding == "max_length" else longest
        if padding == "do_not_pad" and return_tensors is not None and len(set(valid_frames)) > 1:
            raise ValueError(
                f"padding='do_not_pad' gives clips of different lengths ({min(valid_frames)} to {longest} frames), "
                f"which cannot be stacked into return_tensors={return_tensors!r}; pad, or use return_tensors=None"
            )

        waveforms = self._padded_waveforms(clips, lengths, num_frames)
        # Large batches (datasets.map) go through in chunks so the (clips, frames, n_fft) intermediates stay small.
        chunk = max(1, self.max_frames_per_chunk // num_frames)
        with torch.no_grad():  # not inference_mode: the outputs may feed a model that is being trained
            parts = [
                self._log_mel(waveforms[s : s + chunk].to(device), num_frames, valid_frames[s : s + chunk])
                for s in range(0, len(clips), chunk)
            ]
            log_mel = parts[0] if len(parts) == 1 else torch.cat(parts)  # (B, num_mel_bins, frames)
            if do_normalize:
                log_mel.sub_(self.mean).div_(self.std)  # self.normalize, in place
        attention_mask = None
        if return_attention_mask:
            attention_mask = (torch.arange(num_frames)[None, :] < torch.tensor(valid_frames)[:, None]).to(torch.int32)
        keep_frames = valid_frames if padding == "do_not_pad" else [num_frames] * len(clips)
        return _batch_feature(log_mel, attention_mask, return_tensors, keep_frames, device)

    def _check_padding_options(self, return_tensors, padding, max_length) -> tuple[str, int | None]:
        """Validated (padding strategy, max_length) of a `__call__` or a `pad`."""
        if return_tensors not in RETURN_TENSORS:
            raise ValueError(f"return_tensors={return_tensors!r} must be one of {RETURN_TENSORS}")
        padding = {True: "longest", False: "do_not_pad"}.get(padding, padding)
        if padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding={padding!r} must be one of {PADDING_STRATEGIES} or a bool")
        max_length = self.max_length if max_length is None else max_length
        if max_length is not None and (not isinstance(max_length, numbers.Integral) or max_length <= 0):
            raise ValueError(f"max_length={max_length!r} must be a positive int (frames) or None")
        return padding, max_length

    def _check_call_options(self, return_tensors, padding, max_length, truncation, device):
        """Validated (padding strategy, max_length, truncation, device) of one `__call__`."""
        padding, max_length = self._check_padding_options(return_tensors, padding, max_length)
        if padding == "max_length" and max_length is None:
            padding = "longest"  # no fixed length configured
        device = torch.device("cpu") if device is None else torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={str(device)!r} was requested but CUDA is not available (torch.cuda.is_available() is "
                "False); pass device=None or 'cpu'"
            )
        return padding, max_length, truncation and max_length is not None, device

    def _prepare_clips(self, raw_speech, sampling_rate: int | None, resample_audio: bool) -> list[np.ndarray]:
        """The batch as finite mono float32 clips at `self.sampling_rate` (resampled only when asked)."""
        if sampling_rate is None:
            logger.warning_once(
                f"No sampling_rate was passed to {type(self).__name__}; assuming the extractor's "
                f"{self.sampling_rate} Hz. Pass sampling_rate to catch mismatched audio."
            )
            sampling_rate = self.sampling_rate
        if sampling_rate != self.sampling_rate and not resample_audio:
            raise ValueError(
                f"sampling_rate={sampling_rate} does not match the feature extractor's {self.sampling_rate}; "
                "resample first or pass resample=True"
            )
        return [resample(clip, sampling_rate, self.sampling_rate) for clip in mono_float32_clips(raw_speech)]

    def _padded_waveforms(self, clips: list[np.ndarray], lengths: list[int], num_frames: int) -> torch.Tensor:
        """Zero-padded batch `(B, samples)` with librosa's centre padding (n_fft // 2 zeros on the left) built in.

        Built in numpy: torch would run each row copy as a parallel op, and on a busy machine every parallel
        op waits for the other thread to be scheduled (milliseconds each).
        """
        half = 0 if self.frontend == "kaldi" else self.n_fft // 2  # kaldi frames are not centred
        total = max(half + max(lengths) + half, (num_frames - 1) * self.hop_length + self.n_fft)
        waveforms = np.empty((len(clips), total), dtype=np.float32)
        waveforms[:, :half] = 0.0  # librosa's centre padding is always zeros
        for i, (clip, n) in enumerate(zip(clips, lengths)):
            waveforms[i, half : half + n] = clip[:n]
            waveforms[i, half + n :] = self.padding_value
        return torch.from_numpy(waveforms)

    def _log_mel(self, waveforms: torch.Tensor, num_frames: int, valid_frames: list[int]) -> torch.Tensor:
        """Padded waveforms (B, samples) -> `self.frontend`'s log-mel (B, num_mel_bins, num_frames)."""
        frames = dict(n_fft=self.n_fft, hop_length=self.hop_length, num_frames=num_frames, valid_frames=valid_frames)
        if self.frontend == "kaldi":
            window, mel_filters = self._frontend_tensors(waveforms.device, KALDI_DTYPE)
            return kaldi_log_fbank(waveforms, window, mel_filters, **frames)
        window, mel_filters = self._frontend_tensors(waveforms.device, waveforms.dtype)
        return librosa_log_mel(waveforms, window, mel_filters, top_db=self.top_db, **frames)

    def _frontend_tensors(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(window, mel filterbank) of `self.frontend` on `device` in `dtype`, built once and cached."""
        key = (self.frontend, str(device), dtype)
        if key not in self._tensor_cache:
            options = dict(sampling_rate=self.sampling_rate, n_fft=self.n_fft, frame_length=self._frame_length(),
                           num_mel_bins=self.num_mel_bins, f_min=self.f_min, f_max=self.f_max)
            if self.frontend == "kaldi":
                tensors = kaldi_window_and_filters(**options)
            else:
                tensors = librosa_window_and_filters(**options, mel_scale=self.mel_scale, mel_norm=self.mel_norm)
            self._tensor_cache[key] = tuple(tensor.to(device=device, dtype=dtype) for tensor in tensors)
        return self._tensor_cache[key]


def _batch_feature(log_mel: torch.Tensor, attention_mask, return_tensors, keep_frames: list[int], device) -> BatchFeature:
    """`input_values` (+ `attention_mask`) as torch (on `device`), numpy, or lists of per-clip numpy arrays."""
    if return_tensors == "pt":
        data = {"input_values": log_mel}
        if attention_mask is not None:
            data["attention_mask"] = attention_mask.to(device)
        return BatchFeature(data, tensor_type=None)
    values = log_mel.cpu().numpy()
    mask = None if attention_mask is None else attention_mask.numpy()
    if return_tensors == "np":
        data = {"input_values": values}
        if mask is not None:
            data["attention_mask"] = mask
        return BatchFeature(data)
    data = {"input_values": [values[i, :, : keep_frames[i]] for i in range(len(keep_frames))]}
    if mask is not None:
        data["attention_mask"] = [mask[i, : keep_frames[i]] for i in range(len(keep_frames))]
    return BatchFeature(data)


__all__ = ["AudioViTFeatureExtractor"]
