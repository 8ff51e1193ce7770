"""Confusion matrix metric, shipped with audio_vit so `evaluate.load` works offline.

Same logic as the `evaluate-metric/confusion_matrix` hub script (scikit-learn's `confusion_matrix`):
rows are true labels, columns predicted labels.
"""
import datasets
import evaluate
from sklearn.metrics import confusion_matrix

_DESCRIPTION = """
The confusion matrix evaluates classification accuracy: entry (i, j) counts samples of true class i
predicted as class j.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): ground truth labels.
    labels (`list` of `int`, *optional*): the label ids that index the matrix, in order; defaults to the
        sorted union of predictions and references. Pass all class ids so absent classes keep their row.
    sample_weight (`list` of `float`, *optional*): sample weights.
    normalize (`str`, *optional*): `'true'`, `'pred'`, `'all'` or `None` (counts).
Returns:
    confusion_matrix (`numpy.ndarray`): the (n_classes, n_classes) matrix.
Examples:
    >>> cm = evaluate.load("path/to/metrics/confusion_matrix")
    >>> cm.compute(references=[0, 1, 1, 2, 0, 2], predictions=[0, 1, 2, 1, 0, 0])
    {'confusion_matrix': array([[2, 0, 0], [0, 1, 1], [1, 1, 0]])}
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
class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int32"),
                    "references": datasets.Value("int32"),
                }
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"],
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, normalize=None):
        return {
            "confusion_matrix": confusion_matrix(
                references, predictions, labels=labels, sample_weight=sample_weight, normalize=normalize
            )
        }
