"""Where the data comes from and how it is split: one dataclass shared by `audio-vit prepare` and training.

Every field has a type, a default and a help text, so `transformers.HfArgumentParser(DataArguments)`
turns it into command-line options (`--data-dir`, `--label-column`, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

SPLIT_STRATEGIES = ("auto", "column", "random", "kfold", "group")
# `--recipe` of prepare, train and pretrain: auto derives the options a user did not set from the data
# (`feature_recipe`, `training.auto_recipe`); none keeps the plain defaults.
RECIPE_NAMES = ("auto", "none")


@dataclass
class DataArguments:
    """Source, columns and split of an audio classification dataset."""

    # --- source: exactly one of data_dir / dataset ---
    data_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "Local folder: either with a metadata CSV (audiofolder convention: file_name,label[,split,fold,"
            "speaker...]) or with one subfolder per class (optionally inside train/validation/test folders)."
        },
    )
    dataset: Optional[str] = field(
        default=None,
        metadata={"help": "Hugging Face dataset id (downloaded with datasets.load_dataset) or a save_to_disk folder."},
    )
    dataset_config: Optional[str] = field(
        default=None, metadata={"help": "Configuration name of a Hub dataset (load_dataset's `name`)."}
    )
    metadata_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "CSV file describing the clips (default: DATA_DIR/metadata.csv; e.g. "
            "metadata/UrbanSound8K.csv). Paths in it are relative to DATA_DIR."
        },
    )
    # --- columns ---
    audio_column: Optional[str] = field(
        default=None,
        metadata={"help": "Column with the audio file path (CSV, default file_name) or the audio (Hub dataset, "
                  "default: the column with an Audio feature, else `audio`)."},
    )
    label_column: Optional[str] = field(default=None, metadata={"help": "Column with the class label (default: label)."})
    split_column: Optional[str] = field(
        default=None, metadata={"help": "Column with train/validation/test (default: split, when present)."}
    )
    fold_column: Optional[str] = field(
        default=None, metadata={"help": "Column with cross-validation fold ids (e.g. fold for ESC-50/UrbanSound8K)."}
    )
    group_column: Optional[str] = field(
        default=None, metadata={"help": "Column whose values must not cross splits (e.g. speaker)."}
    )
    audio_subdir_template: Optional[str] = field(
        default=None,
        metadata={"help": "Folder of each file relative to DATA_DIR, formatted with the CSV row, e.g. 'audio/fold{fold}'."},
    )
    labels: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated allowed labels; clips with any other label are skipped and reported."},
    )
    multi_label: Optional[bool] = field(
        default=None,
        metadata={"help": "Several labels per clip (AudioSet/FSD50K style): the label column holds them joined by "
                  "--label-separator (or a Hub list of class labels); trained with BCE, scored with mAP. "
                  "Default: on when some label cell contains the separator or is a list."},
    )
    label_separator: str = field(
        default=",", metadata={"help": "Separator of the labels in one label cell of multi-label data (default ',')."}
    )
    # --- split ---
    split_strategy: str = field(
        default="auto",
        metadata={
            "help": "auto|column|random|kfold|group. auto: kfold when --test-fold is given, else group when "
            "--group-column is given (and no --split-column), else the split column (or the Hub dataset's splits) "
            "if present, else random."
        },
    )
    test_fold: Optional[str] = field(default=None, metadata={"help": "kfold: the fold held out as test."})
    validation_fold: Optional[str] = field(
        default=None, metadata={"help": "kfold: the fold used as validation (default: a stratified fraction of the rest)."}
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={"help": "Fraction of the training pool (after the test set is taken) carved out as validation "
                  "when the source has none; 0 disables."},
    )
    test_fraction: float = field(
        default=0.2, metadata={"help": "random/group: fraction of all clips (or groups) held out as test."}
    )
    stratify: bool = field(default=True, metadata={"help": "Keep class proportions equal across random/group splits."})
    seed: int = field(default=42, metadata={"help": "Seed for every random split and subset."})
    max_clips: Optional[int] = field(
        default=None,
        metadata={"help": "Keep at most this many clips per split (stratified, deterministic) for quick runs."},
    )
    max_clip_windows: int = field(
        default=1,
        metadata={"help": "Cache clips up to this many model windows (max_length frames) long: training takes a "
                  "random window of a longer clip every epoch, evaluation averages the model over all its windows. "
                  "1: clips are cut to one window."},
    )
    # --- processing ---
    num_proc: Optional[int] = field(default=None, metadata={"help": "Processes for datasets.map (default: 1)."})
    batch_size: int = field(default=128, metadata={"help": "Clips per datasets.map batch."})
    cache_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Folder for cached spectrograms (default: $HF_DATASETS_CACHE/audio_vit) and Hub downloads."},
    )
    strict: bool = field(default=False, metadata={"help": "Fail on the first bad input instead of skipping and reporting it."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Decode on the fly into IterableDatasets (no spectrogram cache) for data larger than the disk cache."},
    )

    def __post_init__(self):
        if self.split_strategy not in SPLIT_STRATEGIES:
            raise ValueError(f"split_strategy={self.split_strategy!r} is not one of {', '.join(SPLIT_STRATEGIES)}")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}={value} must be in [0, 1)")
        if self.max_clip_windows < 1:
            raise ValueError(f"max_clip_windows={self.max_clip_windows} must be >= 1")
        if not self.label_separator:
            raise ValueError("label_separator must be a non-empty string, e.g. ',' or ';'")
        if self.max_clips is not None and self.max_clips <= 0:
            raise ValueError(f"max_clips={self.max_clips} must be a positive number of clips")

    @property
    def label_set(self) -> Optional[list[str]]:
        """`labels` as a list (None when every label is allowed)."""
        if not self.labels:
            return None
        return [label.strip() for label in self.labels.split(",") if label.strip()]
