"""The augmentation options of training (`AugmentationConfig`), in a module without torch so the command line
can list them at once; `audio_vit.data.augmentation.SpectrogramAugmenter` applies them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass
class AugmentationConfig:
    """Switches and strengths of each augmentation (HfArgumentParser-compatible)."""

    gain_db: float = field(default=0.0, metadata={"help": "Random gain U[-gain_db, gain_db] dB per clip; 0 disables."})
    time_shift_frames: int = field(
        default=0, metadata={"help": "Random time shift (not circular: vacated frames are silence) of up to this many frames per clip; 0 disables."}
    )
    random_crop_frames: Optional[int] = field(
        default=None, metadata={"help": "Random window of this many frames per clip (shorter output); None disables."}
    )
    num_freq_masks: int = field(default=0, metadata={"help": "SpecAugment frequency masks per clip; 0 disables."})
    freq_mask_param: int = field(default=8, metadata={"help": "Largest frequency mask width (mel bins)."})
    num_time_masks: int = field(default=0, metadata={"help": "SpecAugment time masks per clip; 0 disables."})
    time_mask_param: int = field(default=16, metadata={"help": "Largest time mask width (frames)."})
    mixup_alpha: float = field(default=0.0, metadata={"help": "Mixup Beta(alpha, alpha); 0 disables mixup."})
    mixup_prob: float = field(default=1.0, metadata={"help": "Probability that a clip is mixed when mixup is on."})
    seed: Optional[int] = field(default=None, metadata={"help": "Seed of the augmentation generator (None: random)."})

    def __post_init__(self):
        for name in ("gain_db", "time_shift_frames", "num_freq_masks", "freq_mask_param", "num_time_masks",
                     "time_mask_param", "mixup_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.mixup_prob <= 1.0:
            raise ValueError(f"mixup_prob={self.mixup_prob} must be in [0, 1]")
        if self.random_crop_frames is not None and self.random_crop_frames <= 0:
            raise ValueError(f"random_crop_frames={self.random_crop_frames} must be a positive number of frames or None")

    @property
    def enabled(self) -> bool:
        return bool(self.gain_db or self.time_shift_frames or self.random_crop_frames or self.num_freq_masks
                    or self.num_time_masks or self.mixup_alpha)

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["AugmentationConfig"]
