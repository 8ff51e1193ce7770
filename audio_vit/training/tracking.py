"""What the experiment trackers get besides scalars: example spectrograms as images and as audio."""
from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def spectrogram_image(spectrogram: np.ndarray, title: str = "") -> np.ndarray:
    """Render a (num_mel_bins, frames) dB array with matplotlib; returns an RGB uint8 image (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5), dpi=80)
    try:
        ax.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma")
        ax.set_xlabel("frame")
        ax.set_ylabel("mel bin")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    finally:
        plt.close(fig)
    return image


def spectrogram_audio(spectrogram_db: np.ndarray, feature_extractor, n_iter: int = 16) -> np.ndarray:
    """Griffin-Lim inversion of a raw dB log-mel (num_mel_bins, frames): what the model "hears"."""
    import librosa

    power = librosa.db_to_power(spectrogram_db.astype(np.float32))
    audio = librosa.feature.inverse.mel_to_audio(
        power,
        sr=feature_extractor.sampling_rate,
        n_fft=feature_extractor.n_fft,
        hop_length=feature_extractor.hop_length,
        win_length=feature_extractor.win_length,
        center=True,
        power=2.0,
        n_iter=n_iter,
        fmin=feature_extractor.f_min,
        fmax=feature_extractor.f_max,
        htk=feature_extractor.mel_scale == "htk",
        norm=feature_extractor.mel_norm,
    )
    peak = float(np.abs(audio).max()) or 1.0
    return (audio / peak * 0.9).astype(np.float32)


def log_examples(accelerator, dataset, feature_extractor, id2label: dict, count: int, step: int = 0) -> None:
    """Log `count` training spectrograms (image + Griffin-Lim audio) to TensorBoard (other trackers: images only)."""
    if count <= 0 or not accelerator.is_main_process or not accelerator.trackers:
        return
    count = min(count, len(dataset))
    for tracker in accelerator.trackers:
        name = tracker.name
        for i in range(count):
            example = dataset[i]
            values = np.asarray(example["input_values"], dtype=np.float32)  # (M, T) raw dB
            label = id2label[int(example["labels"])]
            image = spectrogram_image(values, title=f"train[{i}] label={label}")
            try:
                if name == "tensorboard":
                    writer = tracker.writer
                    writer.add_image(f"examples/spectrogram_{i}", image, step, dataformats="HWC")
                    audio = spectrogram_audio(values, feature_extractor)
                    writer.add_audio(f"examples/audio_{i}", audio[None, :], step, sample_rate=feature_extractor.sampling_rate)
                else:
                    tracker.log_images({f"examples/spectrogram_{i}": [image]}, step=step)
            except (AttributeError, NotImplementedError) as err:  # a tracker without image support
                logger.warning("tracker %s cannot log example images: %s", name, err)
                break


def flat_hparams(*argument_objects) -> dict:
    """Tracker-friendly hyperparameters (int/float/str/bool only) from the argument dataclasses."""
    from dataclasses import asdict

    flat = {}
    for obj in argument_objects:
        for key, value in asdict(obj).items():
            flat[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat
