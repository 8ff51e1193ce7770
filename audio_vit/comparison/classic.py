"""Classic machine-learning baselines: scikit-learn pipelines (standardisation + classifier) on MFCC statistics.

Every model is `make_pipeline(StandardScaler(), classifier)` with fixed, commonly used hyperparameters, so a
plain scikit-learn script on the same features and folds gives the same numbers (tests/test_evaluation_compare.py
checks this).
"""
from __future__ import annotations

CLASSIC_MODELS = ("logreg", "knn", "gnb", "svm", "rf")

DESCRIPTIONS = {
    "logreg": "logistic regression (C=1, lbfgs, max_iter=2000) on MFCC-40+delta mean/std",
    "knn": "k-nearest neighbours (k=5) on MFCC-40+delta mean/std",
    "gnb": "Gaussian naive Bayes on MFCC-40+delta mean/std",
    "svm": "SVM, RBF kernel (C=10, gamma='scale') on MFCC-40+delta mean/std",
    "rf": "random forest (300 trees) on MFCC-40+delta mean/std",
}


def make_classifier(name: str, seed: int = 42):
    """The scikit-learn pipeline of classic model `name` (one of CLASSIC_MODELS)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    classifiers = {
        "logreg": lambda: LogisticRegression(C=1.0, max_iter=2000),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5),
        "gnb": lambda: GaussianNB(),
        "svm": lambda: SVC(C=10.0, kernel="rbf", gamma="scale"),
        "rf": lambda: RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1),
    }
    if name not in classifiers:
        raise ValueError(f"unknown classic model {name!r}; choose from {', '.join(CLASSIC_MODELS)}")
    return make_pipeline(StandardScaler(), classifiers[name]())


def count_parameters(pipeline) -> int:
    """Learned numbers of a fitted pipeline (scaler mean/scale, weights, support vectors, tree nodes, stored
    training points): comparable in spirit to a network's parameter count."""
    import numpy as np

    total = 0
    for _, step in pipeline.steps:
        if hasattr(step, "estimators_"):  # random forest: one node = a feature, a threshold and a value per class
            total += sum(int(tree.tree_.node_count) * (2 + tree.tree_.value.shape[-1]) for tree in step.estimators_)
            continue
        for attribute in ("mean_", "scale_", "coef_", "intercept_", "support_vectors_", "dual_coef_", "theta_",
                          "var_", "class_prior_", "_fit_X"):
            value = getattr(step, attribute, None)
            if value is not None:
                total += int(np.asarray(value).size)
    return total
