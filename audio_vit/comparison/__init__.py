"""Evaluation suite: cross-validation folds, baseline models, the comparison table and its plots.

- `folds`: fold ids from a fold column or made (stratified, group-disjoint); the folds CSV every model trains on.
- `features`, `classic`, `cnn`: the baselines (scikit-learn on MFCC statistics, a raw-waveform 1-D CNN, the
  UrbanSound8K-tutorial 2-D CNN).
- `models.run_fold`: one model, one fold; `vit` / `timm:NAME` go through the package's own training.
- `cross_validate`, `compare`: the drivers behind `audio-vit cross-validate` and `audio-vit compare`.
- `report`: accuracy / macro F1 / per-class arithmetic, markdown tables, PNG plots.

Heavy libraries (torch, scikit-learn, librosa, matplotlib) are imported inside the functions that use them.
"""
