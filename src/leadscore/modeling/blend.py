"""The blend candidate: a weighted sum of the linear model's and LightGBM's log-odds.

`Blend` sits where LightGBM sits, after the same `LeadPreprocessor`, and holds one fitted
`linear.SplineLogit` and one fitted `LGBMClassifier`. Its log-odds are
``weights[0] * linear + weights[1] * lightgbm``; the weights (and the calibrator's level) are
fitted on held-out log-odds of the newest period (`selection`). Both parts explain themselves
exactly and additively (the linear model's own contributions, TreeSHAP), so the weighted sum of
their contributions is an exact, additive explanation of the blend.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.modeling.linear import SplineLogit

FAMILY = "blend"


class Blend(ClassifierMixin, BaseEstimator):
    """Weighted sum of two fitted models' log-odds (linear first, LightGBM second)."""

    def __init__(
        self,
        linear: SplineLogit | None = None,
        lgbm: lgb.LGBMClassifier | None = None,
        weights: tuple[float, float] = (0.5, 0.5),
    ):
        self.linear = linear
        self.lgbm = lgbm
        self.weights = weights

    def fit(self, X: pd.DataFrame, y, sample_weight=None):
        """Fit both parts on the same rows (the weights stay as given)."""
        self.linear.fit(X, y, sample_weight=sample_weight)
        self.lgbm.fit(X, y, sample_weight=sample_weight)
        self.classes_ = np.array([0.0, 1.0])
        return self

    def part_margins(self, X: pd.DataFrame) -> np.ndarray:
        """Rows x 2: the linear model's and LightGBM's log-odds."""
        return np.column_stack(
            [self.linear.decision_function(X), self.lgbm.predict_proba(X, raw_score=True)]
        )

    def predict_proba(self, X: pd.DataFrame, raw_score: bool = False, **_) -> np.ndarray:
        check_is_fitted(self, "classes_")
        margin = self.part_margins(X) @ np.asarray(self.weights, dtype=float)
        if raw_score:
            return margin
        p = 1.0 / (1.0 + np.exp(-margin))
        return np.column_stack([1 - p, p])
