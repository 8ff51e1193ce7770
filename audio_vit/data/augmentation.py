"""On-the-fly augmentation of spectrogram batches for training (never stored in the cache).

`SpectrogramAugmenter(config, num_labels)(x, labels)` works on a torch batch `x` of shape
(B, num_mel_bins, frames) holding **raw log-mel dB** (what the cache stores; `SpectrogramCollator` normalizes
after augmenting), fully vectorised over the batch:

- random gain: `x + g`, g ~ U[-gain_db, gain_db] per clip (a gain is a constant offset in the dB domain);
- random time shift: roll each clip by up to `time_shift_frames` frames, vacated frames filled with the clip's
  floor (its minimum, i.e. silence); `random_crop_frames` instead takes a random window of that many frames;
- SpecAugment: `num_freq_masks` masks of width U[0, freq_mask_param] mel bins and `num_time_masks` masks of
  width U[0, time_mask_param] frames, filled with `fill_value` (the dataset mean -> 0 after normalization);

No example ever loses all its real audio: with an attention mask (1 = real frame), shifts and crops keep at least
half of each clip's real frames in the window (a 6-frame clip in a 251-frame window cannot be shifted out of it),
and the time masks of a clip are placed inside its real frames, each at most 1 / (num_time_masks + 1) of them
wide, so at least one real frame stays unmasked; frequency bands are each at most 1 / (num_freq_masks + 1) of
the mel bins wide, so some bins always stay;
- mixup: x = lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha) per clip, applied to a clip with
  probability `mixup_prob`; labels become soft targets (B, num_labels) for every clip of the batch; the attention
  mask of a mixed clip is the union of both clips' masks, a clip left unmixed keeps its own.

The same ops are correct on normalized values too if `fill_value=0.0` and `gain_db` is given in std units.
Randomness comes from one `torch.Generator` seeded with `config.seed`, so a run is reproducible.

On waveforms, before the feature extractor: `random_waveform_crop(clip, feature_extractor, generator)` keeps a
random window of the samples `max_length` frames use, starting on the frame grid.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np
import torch

from .augmentation_config import AugmentationConfig  # the options (light module: `--help` needs no torch)


class SpectrogramAugmenter:
    """Callable `(x (B, M, T), labels) -> (x, labels)`; see the module docstring for each op.

    Args:
        config (`AugmentationConfig`): which augmentations and how strong.
        num_labels (`int`, optional): needed by mixup to build (B, num_labels) soft targets from class ids.
    """

    def __init__(self, config: AugmentationConfig, num_labels: Optional[int] = None):
        if config.mixup_alpha > 0 and num_labels is None:
            raise ValueError("mixup_alpha > 0 needs num_labels to build soft targets (B, num_labels)")
        self.config = config
        self.num_labels = num_labels
        self.generator = torch.Generator()
        if config.seed is not None:
            self.generator.manual_seed(config.seed)
        else:
            self.generator.seed()  # non-deterministic, and leaves torch's global RNG alone

    def _uniform(self, shape, low: float, high: float, device) -> torch.Tensor:
        return (torch.rand(shape, generator=self.generator) * (high - low) + low).to(device)

    def _randint(self, high: torch.Tensor | int, shape) -> torch.Tensor:
        """Integers in [0, high) (high may be a per-row tensor)."""
        return (torch.rand(shape, generator=self.generator) * torch.as_tensor(high, dtype=torch.float32)).long()

    def random_gain(self, x: torch.Tensor) -> torch.Tensor:
        gain = self._uniform((x.shape[0], 1, 1), -self.config.gain_db, self.config.gain_db, x.device)  # (B, 1, 1)
        return x + gain

    def time_shift(self, x: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        """Shift each clip in time; returns `x`, or `(x, attention_mask)` with the mask shifted alike.

        The shift of a clip is drawn from [-time_shift_frames, time_shift_frames] narrowed so that at least half of
        its real frames (per `attention_mask`) stay in the window."""
        batch, _, frames = x.shape
        limit = min(self.config.time_shift_frames, frames - 1)
        first, end, keep = real_spans(attention_mask, batch, frames)
        low = torch.clamp(keep - end, min=-limit)  # (B,) the real span's last `keep` frames stay: end + s >= keep
        high = torch.clamp(frames - keep - first, max=limit)  # its first `keep` frames stay: first + s <= T - keep
        shift = low + self._randint(high - low + 1, (batch,))  # (B,) in [low, high], which holds 0
        source = torch.arange(frames)[None, :] - shift[:, None]  # (B, T): frame t reads frame t - shift
        valid = (source >= 0) & (source < frames)
        index = source.clamp(0, frames - 1).to(x.device)
        shifted = torch.gather(x, 2, index[:, None, :].expand_as(x))
        floor = x.amin(dim=(1, 2), keepdim=True)  # (B, 1, 1) each clip's silence level
        shifted = torch.where(valid[:, None, :].to(x.device), shifted, floor)
        if attention_mask is None:
            return shifted
        mask = torch.gather(attention_mask, 1, index.to(attention_mask.device)) * valid.to(attention_mask)
        return shifted, mask

    def random_crop(self, x: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        """A random `random_crop_frames` window per clip; returns `x`, or `(x, attention_mask)` cropped alike.

        The window of a clip holds at least half of its real frames (or is all real, for clips longer than it)."""
        batch, _, frames = x.shape
        length = self.config.random_crop_frames
        if length >= frames:
            return x if attention_mask is None else (x, attention_mask)
        first, end, keep = real_spans(attention_mask, batch, frames)
        keep = keep.clamp(max=length)
        low = torch.clamp(first + keep - length, min=0)  # (B,) the window's end reaches `keep` real frames
        high = torch.clamp(end - keep, max=frames - length)  # its start leaves `keep` real frames after it
        start = low + self._randint(high - low + 1, (batch,))  # (B,)
        index = (start[:, None] + torch.arange(length)[None, :]).to(x.device)  # (B, length)
        cropped = torch.gather(x, 2, index[:, None, :].expand(batch, x.shape[1], length))
        if attention_mask is None:
            return cropped
        return cropped, torch.gather(attention_mask, 1, index.to(attention_mask.device))

    def _band_mask(self, first: torch.Tensor, end: torch.Tensor, size: int, num_masks: int,
                   max_width: torch.Tensor) -> torch.Tensor:
        """(B, size) bool: union of `num_masks` random bands per row, each of width U[0, max_width[b]] inside the
        row's span [first[b], end[b]) (all three `(B,)` long)."""
        positions = torch.arange(size)[None, None, :]  # (1, 1, size)
        span = (end - first)[:, None]  # (B, 1)
        widest = torch.minimum(max_width[:, None], span)  # (B, 1)
        width = self._randint(widest + 1, (len(first), num_masks))  # (B, K)
        start = first[:, None] + self._randint(span - width + 1, (len(first), num_masks))  # (B, K)
        inside = (positions >= start[..., None]) & (positions < (start + width)[..., None])  # (B, K, size)
        return inside.any(dim=1)

    def spec_augment(self, x: torch.Tensor, fill_value: float, attention_mask: Optional[torch.Tensor] = None):
        """Frequency and time masks filled with `fill_value`. Each frequency band is at most 1 / (num_freq_masks + 1)
        of the bins wide; time masks fall inside each clip's real frames, each at most 1 / (num_time_masks + 1) of
        them wide: some bins and some real frames always stay visible."""
        batch, mel_bins, frames = x.shape
        config = self.config
        mask = torch.zeros(batch, mel_bins, frames, dtype=torch.bool)
        if config.num_freq_masks:
            low, high = torch.zeros(batch, dtype=torch.long), torch.full((batch,), mel_bins)
            # Each band at most 1 / (num_freq_masks + 1) of the bins, so some bins always stay visible.
            widest = torch.full((batch,), min(config.freq_mask_param, mel_bins // (config.num_freq_masks + 1)))
            mask |= self._band_mask(low, high, mel_bins, config.num_freq_masks, widest)[:, :, None]
        if config.num_time_masks:
            first, end, _ = real_spans(attention_mask, batch, frames)
            widest = torch.clamp((end - first) // (config.num_time_masks + 1), max=config.time_mask_param)
            mask |= self._band_mask(first, end, frames, config.num_time_masks, widest)[:, None, :]
        return x.masked_fill(mask.to(x.device), fill_value)

    def mixup(self, x: torch.Tensor, labels: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        """Mix pairs of clips; returns (x, soft targets), plus the union of both clips' masks when one is given."""
        batch = x.shape[0]
        if labels.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8) and labels.ndim == 1:
            targets = torch.nn.functional.one_hot(labels.long(), self.num_labels).float()  # (B, L)
        else:
            targets = labels.float()  # already soft / multi-hot (B, L)
        # torch.distributions cannot take a generator: draw Beta with numpy from a seed our generator gives.
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        rng = np.random.default_rng(seed)
        lam = rng.beta(self.config.mixup_alpha, self.config.mixup_alpha, size=batch)
        lam = np.where(rng.random(batch) < self.config.mixup_prob, lam, 1.0)
        lam = torch.as_tensor(lam, dtype=x.dtype, device=x.device)  # (B,)
        perm = torch.randperm(batch, generator=self.generator).to(x.device)
        x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
        targets = targets.to(x.device)
        targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[perm]
        if attention_mask is None:
            return x, targets
        # A mixed clip holds real audio wherever either clip does; a clip left alone (lam == 1) keeps its own mask,
        # so its padding stays padding, as at evaluation.
        mixed = (lam < 1).to(attention_mask.device)[:, None]  # (B, 1)
        partner = attention_mask[perm.to(attention_mask.device)]
        return x, targets, torch.where(mixed, torch.maximum(attention_mask, partner), attention_mask)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None,
                 fill_value: Optional[float] = None, attention_mask: Optional[torch.Tensor] = None):
        """Augment a batch.

        Args:
            x (`torch.Tensor`): (B, num_mel_bins, frames) float.
            labels (`torch.Tensor`, optional): (B,) class ids or (B, num_labels) floats.
            fill_value (`float`, optional): value of masked bins; default the batch mean.
            attention_mask (`torch.Tensor`, optional): (B, frames) 1 for real frames; moved with time shifts and
                merged by mixup so it keeps marking the real audio.

        Returns:
            (x, labels), or (x, labels, attention_mask) when a mask is given; labels are (B, num_labels) float
            when mixup is on, else unchanged.
        """
        config = self.config
        x = x.float()
        if fill_value is None:
            fill_value = float(x.mean())
        if config.gain_db > 0:
            x = self.random_gain(x)
        if config.random_crop_frames:
            if attention_mask is None:
                x = self.random_crop(x)
            else:
                x, attention_mask = self.random_crop(x, attention_mask)
        if config.time_shift_frames > 0:
            if attention_mask is None:
                x = self.time_shift(x)
            else:
                x, attention_mask = self.time_shift(x, attention_mask)
        if config.num_freq_masks or config.num_time_masks:
            x = self.spec_augment(x, fill_value, attention_mask)
        if config.mixup_alpha > 0 and labels is not None:
            if attention_mask is None:
                x, labels = self.mixup(x, labels)
            else:
                x, labels, attention_mask = self.mixup(x, labels, attention_mask)
        return (x, labels) if attention_mask is None else (x, labels, attention_mask)


def real_spans(attention_mask: Optional[torch.Tensor], batch: int, frames: int):
    """Per clip: the first real frame, one past the last real frame, and how many real frames an augmentation must
    keep in the window (half of the span, at least 1), each `(B,)` long. Without a mask (or for a clip with no real
    frame at all) the whole window counts as real."""
    first = torch.zeros(batch, dtype=torch.long)
    end = torch.full((batch,), frames, dtype=torch.long)
    if attention_mask is not None:
        real = attention_mask.detach().cpu().bool()  # (B, T)
        positions = torch.arange(frames)[None, :]
        has_real = real.any(dim=1)
        first = torch.where(has_real, torch.where(real, positions, frames).amin(dim=1), first)
        end = torch.where(has_real, torch.where(real, positions + 1, 0).amax(dim=1), end)
    keep = ((end - first + 1) // 2).clamp(min=1)
    return first, end, keep


__all__ = ["AugmentationConfig", "SpectrogramAugmenter", "real_spans"]


def random_waveform_crop(waveform: np.ndarray, feature_extractor, generator=None,
                         max_length: Optional[int] = None) -> np.ndarray:
    """A random window of a long clip: the `feature_extractor.samples_for(max_length)` samples that make
    `max_length` frames (default: the extractor's), starting at a multiple of `hop_length`, so the frames stay on
    the full clip's frame grid. Clips that short are returned as they are.

    Args:
        waveform (`np.ndarray`): `(samples,)` or `(channels, samples)`; the last axis is cropped.
        feature_extractor: an `AudioViTFeatureExtractor` (its `hop_length`, `max_length`, `samples_for`).
        generator (`int`, `numpy.random.Generator`, `torch.Generator` or `None`): the randomness; an int seed
            makes crops reproducible.
        max_length (`int`, *optional*): frames to keep; defaults to `feature_extractor.max_length`.
    """
    max_length = feature_extractor.max_length if max_length is None else max_length
    if max_length is None:
        raise ValueError("random_waveform_crop needs a max_length (frames): the feature extractor has none")
    keep = feature_extractor.samples_for(max_length)
    length = waveform.shape[-1]
    if length <= keep:
        return waveform
    start = _random_int(generator, (length - keep) // feature_extractor.hop_length) * feature_extractor.hop_length
    return waveform[..., start : start + keep]


def _random_int(generator, high: int) -> int:
    """A uniform integer in [0, high]."""
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, high + 1, (1,), generator=generator))
    if generator is None or isinstance(generator, (numbers.Integral, np.random.Generator)):
        return int(np.random.default_rng(generator).integers(0, high + 1))
    raise TypeError(
        f"generator of type {type(generator).__name__} is not supported; expected an int seed, "
        "numpy.random.Generator, torch.Generator or None"
    )
