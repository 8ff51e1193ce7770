"""Audio classification data: sources -> splits -> cached log-mel spectrograms -> batches.

    from audio_vit import AudioViTFeatureExtractor
    from audio_vit.data import DataArguments, SpectrogramCollator, build_datasets

    fe = AudioViTFeatureExtractor()
    data = build_datasets(DataArguments(data_dir="../shared/data/fsdd"), fe)  # fe itself is left unchanged
    data.splits["train"][0]["input_values"].shape  # (64, 128) float16 raw dB
    fitted = data.feature_extractor  # a copy of fe with mean/std of the training split
    loader = DataLoader(data.splits["train"], batch_size=32, collate_fn=SpectrogramCollator(fitted))

Steps of `build_datasets`: `sources.build_manifest` (what clips exist, labels, split/fold/group columns; missing
files and labels outside `--labels` are skipped and reported) -> `splits.assign_splits` -> one cached
`datasets.map` over the clips of all splits (`preprocess.compute_spectrograms`; decode failures are reported) ->
mean/std over the training split's valid frames (`build.py`; returned, nothing passed in is modified).
`collator.py` turns cached rows into normalized batches.
"""
from .arguments import SPLIT_STRATEGIES, DataArguments
from .build import SUMMARY_NAME, PreparedData, build_datasets, column_values, load_prepared, resolve_data_dir, save_prepared
from .collator import SpectrogramCollator, collate_eval
from .report import DataError, DataReport, SkippedClip
from .sources import build_manifest
from .streaming import shard_for_process

__all__ = [
    "SPLIT_STRATEGIES",
    "SUMMARY_NAME",
    "DataArguments",
    "DataError",
    "DataReport",
    "PreparedData",
    "SkippedClip",
    "SpectrogramCollator",
    "build_datasets",
    "build_manifest",
    "collate_eval",
    "column_values",
    "load_prepared",
    "resolve_data_dir",
    "save_prepared",
    "shard_for_process",
]
