"""F1 metric, shipped with audio_vit so `evaluate.load` works offline.

Same logic as the `evaluate-metric/f1` hub script (scikit-learn's `f1_score`); audio_vit reports the
macro average: `metric.compute(predictions=..., references=..., average="macro")`.
"""
import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score

_DESCRIPTION = """
The F1 score is the harmonic mean of the precision and recall: F1 = 2 * (precision * recall) / (precision + recall).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): ground truth labels.
    labels (`list` of `int`, *optional*): the labels to include when `average != 'binary'`.
    pos_label (`int`, defaults to 1): the class to report when `average='binary'`.
    average (`str`, defaults to `'binary'`): `'binary'`, `'micro'`, `'macro'`, `'weighted'`, `'samples'` or
        `None` (per-class scores).
    sample_weight (`list` of `float`, *optional*): sample weights.
Returns:
    f1 (`float` or `array` of `float`): F1 score(s) in [0, 1].
Examples:
    >>> f1_metric = evaluate.load("path/to/metrics/f1")
    >>> f1_metric.compute(predictions=[0, 2, 1, 0, 0, 1], references=[0, 1, 2, 0, 1, 2], average="macro")
    {'f1': 0.26666666666666666}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
                if self.config_name == "multilabel"
                else {
                    "predictions": datasets.Value("int32"),
                    "references": datasets.Value("int32"),
                }
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary", sample_weight=None):
        score = f1_score(
            references, predictions, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
        )
        return {"f1": float(score) if np.ndim(score) == 0 else score}
