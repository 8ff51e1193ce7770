"""`pad` of the AudioViT feature extractor: computed features of different frame counts -> one batch, padded with
the frames the extractor itself computes from padding (what transformers' `DataCollatorWithPadding` calls).

A mixin of `AudioViTFeatureExtractor` (it uses the extractor's settings and `_check_padding_options`,
`_frame_length`, `frames_for`, `_frontend_tensors`, `normalize`). Copied next to saved checkpoints with the
extractor, so it imports only third-party packages.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature


class FeaturePaddingMixin:
    """`pad` and its helpers, for `AudioViTFeatureExtractor`."""

    def pad(
        self,
        processed_features,
        padding: str | bool = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchFeature:
        r"""Pad features this extractor computed, `input_values` `(num_mel_bins, frames)` of different frame counts,
        into one batch: what transformers' `DataCollatorWithPadding` (the Trainer's default collator with a feature
        extractor) calls on the examples of a batch.

        The frames added are the frames this extractor computes from a window of padding only (`padding_value`
        samples): with the librosa frontend `10 * log10` of their mel power (0 for silence), floored like the
        clip's own frames at its loudest valid frame minus `top_db`; with the kaldi frontend 0; then normalised
        when `do_normalize`. So the batch equals the extractor called on the batch's waveforms with the same padding
        wherever a frame is real audio or pure padding. A waveform-padded batch differs only in the (at most
        `n_fft // 2 // hop_length + 1`) librosa frames right after a clip's end, whose windows still reach its last
        samples; features computed at a fixed `max_length` (the extractor's default) already hold those frames,
        so then the batch is the same.

        Args:
            processed_features: a list of per-example dicts (or `BatchFeature`s) with `input_values`
                `(num_mel_bins, frames)` (numpy, torch or nested lists) and optionally `attention_mask` `(frames,)`,
                or one dict / `BatchFeature` of such lists (or of a stacked `(batch, num_mel_bins, frames)` array).
                Other keys (`labels`, ...) pass through, as tensors with `return_tensors`. The features must come
                from this extractor's settings (`do_normalize`, `mean`, `std`, frontend).
            padding (`str` or `bool`, defaults to `True`): `True` / `"longest"` pads to the longest example,
                `"max_length"` to `max_length` frames (or the longest, if longer and not truncating),
                `False` / `"do_not_pad"` not at all.
            max_length (`int`, *optional*): frames; defaults to `self.max_length`.
            truncation (`bool`, defaults to `False`): cut examples to `max_length` frames (the frames kept are
                those of the extractor's own truncation).
            pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple of this many frames.
            return_attention_mask (`bool`, *optional*): return `attention_mask` `(batch, frames)`: an example's
                own mask, 0 on the frames added here. An example without a mask (the official example's transforms
                drop it) gets one from its frames: 0 on the trailing frames that are exactly this extractor's frames
                of pure padding (what a clip padded to `max_length` ends with), 1 before them; that is the mask the
                extractor gives, to within one frame with the librosa frontend (where the frames whose window reaches
                the clip's end stop can only be told to a hop), exactly with kaldi. Defaults to
                `self.return_attention_mask`, or `True` when the examples carry a mask.
            return_tensors (`"pt"`, `"np"` or `None`, defaults to `None`): as in `__call__`.
        """
        padding, max_length = self._check_padding_options(return_tensors, padding, max_length)
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, numbers.Integral) or pad_to_multiple_of <= 0):
            raise ValueError(f"pad_to_multiple_of={pad_to_multiple_of!r} must be a positive int (frames) or None")
        columns = _feature_columns(processed_features)
        values = [self._feature_array(value, i) for i, value in enumerate(columns.pop("input_values"))]
        masks = columns.pop("attention_mask", None)
        masks = [self._inferred_mask(v) for v in values] if masks is None else [
            _mask_array(mask, i, v.shape[1]) for i, (mask, v) in enumerate(zip(masks, values))]
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask or "attention_mask" in _first_keys(processed_features)
        if truncation and max_length is not None:
            values, masks = [v[:, :max_length] for v in values], [m[:max_length] for m in masks]
        lengths = [v.shape[1] for v in values]
        if padding == "do_not_pad":
            if return_tensors is not None and len(set(lengths)) > 1:
                raise ValueError(
                    f"padding='do_not_pad' leaves examples of different lengths ({min(lengths)} to {max(lengths)} "
                    f"frames), which cannot be stacked into return_tensors={return_tensors!r}; pad, or use return_tensors=None"
                )
            num_frames = None
        else:
            num_frames = max(max(lengths), max_length) if padding == "max_length" and max_length else max(lengths)
            if pad_to_multiple_of:
                num_frames = -(-num_frames // pad_to_multiple_of) * pad_to_multiple_of

        if num_frames is not None:
            padded = np.empty((len(values), self.num_mel_bins, num_frames), dtype=np.float32)
            for i, (value, mask) in enumerate(zip(values, masks)):
                padded[i, :, : value.shape[1]] = value
                padded[i, :, value.shape[1] :] = self._padding_frame(value, mask)[:, None]
            values = list(padded)
            masks = [np.pad(m, (0, num_frames - len(m))) for m in masks]
        data = {"input_values": np.stack(values) if return_tensors else values}
        if return_attention_mask:
            data["attention_mask"] = np.stack(masks) if return_tensors else masks
        data.update(columns)
        return BatchFeature(data, tensor_type=return_tensors)

    def _feature_array(self, value, index: int) -> np.ndarray:
        """One example's `input_values` as a float32 `(num_mel_bins, frames)` array, checked."""
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().float().numpy()
        value = np.asarray(value, dtype=np.float32)
        if value.ndim != 2 or value.shape[0] != self.num_mel_bins:
            raise ValueError(
                f"input_values of example {index} has shape {tuple(value.shape)}; expected (num_mel_bins, frames) "
                f"with num_mel_bins={self.num_mel_bins}, as this extractor computes them. {type(self).__name__}.pad "
                "pads computed features; for waveforms call the extractor itself"
            )
        return value

    def _inferred_mask(self, value: np.ndarray) -> np.ndarray:
        """`(frames,)` int32 mask of features given without one (see `pad`'s `return_attention_mask`)."""
        frames = value.shape[1]
        padding = self._padding_frame(value, np.ones(frames, dtype=bool))
        # 1e-3 (normalised units, or dB) is far above float rounding and far below any real frame's distance
        is_padding = np.all(np.abs(value - padding[:, None]) <= 1e-3, axis=0)  # (frames,)
        first_padding = frames
        while first_padding > 0 and is_padding[first_padding - 1]:
            first_padding -= 1
        valid = first_padding
        if self.frontend != "kaldi" and first_padding < frames:
            # The first frame of pure padding is the first whose window (frame_length samples centred in n_fft) starts
            # after the clip: the clip has between first_padding * hop - half - hop (exclusive) and
            # first_padding * hop - half samples (half: half the window); take the middle.
            half = self._frame_length() // 2
            num_samples = first_padding * self.hop_length - half - self.hop_length // 2
            valid = min(first_padding, max(1, int(self.frames_for(max(1, num_samples)))))
        mask = np.zeros(frames, dtype=np.int32)
        mask[:valid] = 1
        return mask

    def _padding_frame(self, value: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """`(num_mel_bins,)`: the frame this extractor computes from padding only, for the clip whose features are
        `value` (its valid frames, `mask == 1`, set the `top_db` floor), normalised like `value`."""
        if self.frontend == "kaldi":
            padding_db = np.zeros(self.num_mel_bins, dtype=np.float32)  # kaldi_log_fbank's padded frames
        else:
            window, mel_filters = self._frontend_tensors(torch.device("cpu"), torch.float32)
            power = torch.fft.rfft(window * self.padding_value).abs().square()  # (n_fft // 2 + 1,)
            padding_db = 10.0 * torch.log10(torch.clamp(mel_filters @ power, min=1e-10)).numpy()
            if self.top_db is not None:
                valid = value[:, mask.astype(bool)] if mask.any() else value
                clip_max_db = float((valid * self.std + self.mean).max() if self.do_normalize else valid.max())
                padding_db = np.maximum(padding_db, max(clip_max_db - self.top_db, -100.0))
        return self.normalize(padding_db) if self.do_normalize else padding_db


def _feature_columns(processed_features) -> dict[str, list]:
    """What `pad` receives (a list of per-example mappings, or one mapping of per-example lists / a stacked
    array) as one list per key."""
    if isinstance(processed_features, (list, tuple)) and processed_features and all(
            isinstance(example, Mapping) for example in processed_features):
        keys = list(processed_features[0])
        for i, example in enumerate(processed_features):
            if list(example) != keys:
                raise ValueError(f"example {i} has the keys {sorted(example)}, example 0 has {sorted(keys)}; "
                                 "every example must have the same keys")
        columns = {key: [example[key] for example in processed_features] for key in keys}
    elif isinstance(processed_features, Mapping):
        columns = dict(processed_features)
        values = columns.get("input_values")
        if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 2:  # one example
            columns = {key: [value] for key, value in columns.items()}
        elif isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 3:  # a stacked batch
            columns["input_values"] = list(values)
            if isinstance(columns.get("attention_mask"), (np.ndarray, torch.Tensor)):
                columns["attention_mask"] = list(columns["attention_mask"])
    else:
        raise TypeError(
            f"pad received {type(processed_features).__name__}; expected a non-empty list of per-example dicts with "
            "'input_values', or a dict / BatchFeature of them"
        )
    if "input_values" not in columns:
        raise ValueError(f"pad needs 'input_values' (computed features); got the keys {sorted(columns)}")
    if not isinstance(columns["input_values"], (list, tuple)) or not columns["input_values"]:
        raise ValueError("pad needs 'input_values' as a non-empty list of (num_mel_bins, frames) arrays, or one "
                         "(batch, num_mel_bins, frames) array")
    return columns


def _first_keys(processed_features) -> set[str]:
    if isinstance(processed_features, Mapping):
        return set(processed_features)
    return set(processed_features[0])


def _mask_array(mask, index: int, frames: int) -> np.ndarray:
    """One example's `attention_mask` as an int32 `(frames,)` array, checked against its `input_values`."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.shape != (frames,):
        raise ValueError(f"attention_mask of example {index} has shape {tuple(mask.shape)}; its input_values have "
                         f"{frames} frames, so expected ({frames},)")
    return mask.astype(np.int32)


__all__ = ["FeaturePaddingMixin"]
