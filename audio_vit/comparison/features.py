"""Inputs of the baseline models, computed once per run from the clips of a folds CSV.

- `mfcc_statistics`: MFCC-40 and their deltas, summarised over time by mean and standard deviation
  (160 numbers per clip), the classic input of scikit-learn audio classifiers.
- `fixed_waveforms`: raw audio cut or zero-padded to one length, for the 1-D CNN.
- `log_mel_images`: the package's log-mel spectrogram (dB, not normalised), for the 2-D CNN.

Both CNN inputs span the window `window_feature_extractor` derives from the clips' durations with the package's
own rule (`feature_recipe.feature_defaults`: 90% of the clips, 1-10 s), so a CNN sees as much of each clip as the
package's training does; a fixed 1.28 s window would hide most 5 s events from it.

Clips are decoded at one sampling rate (16 kHz by default, the feature extractor's) with `audio_vit.data.audio_decoding.load_audio`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

NUM_MFCC = 40


@dataclass
class ClipSet:
    """Decoded clips of a folds CSV: waveform, label id and fold of every clip that decoded."""

    waveforms: list  # (num_samples,) float32 each
    label_ids: np.ndarray  # (N,) int64
    folds: np.ndarray  # (N,) str
    label_names: list[str]
    sampling_rate: int
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of clips that did not decode

    def __len__(self) -> int:
        return len(self.waveforms)


def load_clips(folds_table: dict[str, list[str]], label_names: list[str], sampling_rate: int = 16000) -> ClipSet:
    """Decode every clip of a folds table (see `folds.read_folds_csv`); clips that fail are skipped and listed."""
    from ..data.audio_decoding import AudioDecodeError, load_audio

    index = {name: i for i, name in enumerate(label_names)}
    waveforms, label_ids, folds, files, skipped = [], [], [], [], []
    for path, label, fold in zip(folds_table["file_name"], folds_table["label"], folds_table["fold"]):
        try:
            waveform, _ = load_audio(path, sampling_rate=sampling_rate)
        except (AudioDecodeError, OSError) as error:
            skipped.append((path, str(error)))
            continue
        waveforms.append(waveform.astype(np.float32))
        label_ids.append(index[label])
        folds.append(fold)
        files.append(path)
    if skipped:
        logger.warning("%d clips did not decode and are left out of the baselines, e.g. %s: %s",
                       len(skipped), *skipped[0])
    return ClipSet(waveforms, np.asarray(label_ids, dtype=np.int64), np.asarray(folds), label_names,
                   sampling_rate, files, skipped)


def mfcc_statistics(waveform: np.ndarray, sampling_rate: int, num_mfcc: int = NUM_MFCC) -> np.ndarray:
    """Mean and std over time of MFCC-`num_mfcc` and their deltas: (4 * num_mfcc,) float64."""
    import librosa

    mfcc = librosa.feature.mfcc(y=waveform, sr=sampling_rate, n_mfcc=num_mfcc)  # (num_mfcc, frames)
    # librosa's default 9-frame delta window needs 9 frames; short clips get the widest odd window that fits
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), delta.mean(axis=1), delta.std(axis=1)])


def mfcc_matrix(clips: ClipSet) -> np.ndarray:
    """`mfcc_statistics` of every clip: (N, 160)."""
    return np.stack([mfcc_statistics(w, clips.sampling_rate) for w in clips.waveforms])


def fixed_waveforms(clips: ClipSet, num_samples: int) -> np.ndarray:
    """Every clip cut to its first `num_samples` samples or zero-padded at the end: (N, num_samples) float32."""
    out = np.zeros((len(clips), num_samples), dtype=np.float32)
    for row, waveform in enumerate(clips.waveforms):
        length = min(num_samples, len(waveform))
        out[row, :length] = waveform[:length]
    return out


def window_feature_extractor(clips: ClipSet):
    """The feature extractor of the CNN baselines: the data-derived STFT and window (`max_length` frames) the
    package's training would choose for these durations, at the rate the clips were decoded at."""
    from ..data.profile import DataProfile, duration_percentiles
    from ..models.audio_vit.feature_extraction_audio_vit import AudioViTFeatureExtractor
    from ..data.feature_recipe import feature_defaults

    if not len(clips):
        raise ValueError("no decodable clips: the CNN baselines have nothing to train on")
    profile = DataProfile(num_clips=len(clips), class_counts={}, sampling_rates={clips.sampling_rate: len(clips)},
                          duration_percentiles=duration_percentiles([len(w) / clips.sampling_rate
                                                                     for w in clips.waveforms]),
                          profiled_clips=len(clips))
    options = feature_defaults(profile, fixed={"sampling_rate": clips.sampling_rate})
    return AudioViTFeatureExtractor(**{name: options[name] for name in (
        "sampling_rate", "n_fft", "win_length", "hop_length", "num_mel_bins", "f_max", "max_length")})


def log_mel_images(clips: ClipSet, feature_extractor=None, batch_size: int = 256) -> np.ndarray:
    """The package's log-mel spectrogram of every clip (raw dB, padded/cut to its max_length): (N, mels, frames).
    Default extractor: `window_feature_extractor(clips)`."""
    feature_extractor = feature_extractor or window_feature_extractor(clips)
    parts = []
    for start in range(0, len(clips), batch_size):
        batch = clips.waveforms[start:start + batch_size]
        parts.append(feature_extractor(batch, sampling_rate=clips.sampling_rate, return_tensors="np",
                                       do_normalize=False)["input_values"].astype(np.float32))
    return np.concatenate(parts)
