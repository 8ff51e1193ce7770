"""Average precision (mAP) metric for multi-label classification, shipped with audio_vit so `evaluate.load`
works offline.

Load it with `evaluate.load(audio_vit.metrics.metric_path("average_precision"))`. `average="macro"` is the mAP
of AudioSet/FSD50K papers: the mean over labels of each label's AP (area under its precision-recall curve, as
scikit-learn's `average_precision_score`). Labels with no positive reference have no defined AP and are left
out of the mean (as in AudioSet evaluations) instead of counting as 0.
"""
import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score

_DESCRIPTION = """
Average precision summarises a precision-recall curve as the weighted mean of precisions at each threshold,
AP = sum_n (R_n - R_{n-1}) P_n. For multi-label data, "macro" is the mean of the per-label APs (mAP),
"micro" pools every (clip, label) decision into one curve, "weighted" weights the per-label APs by their number
of positives, and `None` returns one AP per label.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): per-label scores (e.g. sigmoid probabilities), shape (n, num_labels).
    references (`list` of `list` of `int`): multi-hot ground truth (0 or 1), shape (n, num_labels).
    average (`str` or `None`, defaults to `"macro"`): `"macro"` (mAP), `"micro"`, `"weighted"` or `None`
        (per-label APs, `nan` for labels with no positive reference).
Returns:
    average_precision (`float`, or `list` of `float` when `average=None`).
    num_labels_scored (`int`): labels with at least one positive reference (those in the macro mean).
Examples:
    >>> ap = evaluate.load("path/to/metrics/average_precision")
    >>> ap.compute(predictions=[[0.9, 0.2], [0.8, 0.7], [0.1, 0.6]], references=[[1, 0], [1, 1], [0, 1]])
    {'average_precision': 1.0, 'num_labels_scored': 2}
"""

_CITATION = """
@inproceedings{gemmeke2017audioset,
  title={Audio Set: An ontology and human-labeled dataset for audio events},
  author={Gemmeke, Jort F. and others},
  booktitle={ICASSP},
  year={2017}
}
"""

AVERAGES = ("macro", "micro", "weighted", None)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AveragePrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.average_precision_score.html"
            ],
        )

    def _compute(self, predictions, references, average="macro"):
        if average not in AVERAGES:
            raise ValueError(f"average={average!r} is not supported; use one of {AVERAGES}")
        scores = np.asarray(predictions, dtype=np.float64)
        targets = np.asarray(references, dtype=np.int64)
        if scores.ndim != 2 or scores.shape != targets.shape:
            raise ValueError(
                f"predictions {scores.shape} and references {targets.shape} must both be (num_clips, num_labels)"
            )
        if not np.isin(targets, (0, 1)).all():
            raise ValueError("references must be multi-hot: every entry 0 or 1")
        scored = targets.sum(axis=0) > 0  # labels with at least one positive clip
        if not scored.any():
            raise ValueError("no label has a positive reference: average precision is undefined")
        if average == "micro":
            value = float(average_precision_score(targets, scores, average="micro"))
        else:
            per_label = np.full(targets.shape[1], np.nan)
            for j in np.flatnonzero(scored):
                per_label[j] = average_precision_score(targets[:, j], scores[:, j])
            if average is None:
                value = per_label.tolist()
            elif average == "macro":
                value = float(per_label[scored].mean())
            else:  # weighted by the number of positives
                weights = targets.sum(axis=0)[scored]
                value = float((per_label[scored] * weights).sum() / weights.sum())
        return {"average_precision": value, "num_labels_scored": int(scored.sum())}
