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
from .._imports import lazy_attributes

# Imported on first use, so `audio_vit.data.arguments` (the command-line options) loads without datasets/torch.
_LAZY_ATTRIBUTES = {
    "SPLIT_STRATEGIES": ".arguments",
    "SUMMARY_NAME": ".report",
    "DataArguments": ".arguments",
    "PreparedData": ".build",
    "build_datasets": ".build",
    "column_values": ".build",
    "load_prepared": ".build",
    "resolve_data_dir": ".build",
    "save_prepared": ".build",
    "SpectrogramCollator": ".collator",
    "collate_eval": ".collator",
    "DataError": ".report",
    "DataReport": ".report",
    "DecodeWarning": ".report",
    "SkippedClip": ".report",
    "build_manifest": ".sources",
    "shard_for_process": ".iterable_dataset",
}

__all__ = sorted(_LAZY_ATTRIBUTES)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY_ATTRIBUTES)
