"""Baselines the model must beat, fitted on the same split every run.

- `LogisticBaseline`: plain logistic regression: numeric columns imputed (median, with missing
  indicators), log-scaled (signed log1p: activity counts are heavy-tailed) and standardised;
  categorical columns one-hot encoded with unseen values ignored; no class weights.
- `PointsScore`: a marketing-automation style scoring sheet learnt from the training data: every
  attribute value and every bucket of a numeric or activity feature earns points equal to
  `round(scale * log-odds lift)` of its (smoothed) conversion rate over the base rate; a lead's
  score is the sum of its points, mapped to a probability by a calibrator fitted on held-out rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from leadscore.data.features import MISSING
from leadscore.modeling.model import Calibrator

LOGIT_CLIP = 1e-6


def as_text(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain Python strings, missing values as "(missing)"."""
    return pd.DataFrame(
        {c: X[c].astype("string").fillna(MISSING).to_numpy(object) for c in X.columns},
        index=X.index,
    )


def signed_log1p(X: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): tames heavy tails, keeps zero and the sign."""
    X = np.asarray(X, dtype=float)
    return np.sign(X) * np.log1p(np.abs(X))


def _weights(y: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    if sample_weight is None:
        return np.ones(len(y))
    return np.asarray(sample_weight, dtype=float)


def _logit(p: np.ndarray | float) -> np.ndarray | float:
    p = np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """Logistic regression on one-hot categories and scaled numbers (no class weights)."""

    def __init__(
        self,
        categorical=(),
        numeric=(),
        C: float = 1.0,
        max_categories: int = 50,
        max_iter: int = 2000,
        n_threads: int | None = 1,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.C = C
        self.max_categories = max_categories
        self.max_iter = max_iter
        self.n_threads = n_threads

    def _pipeline(self) -> Pipeline:
        categorical = Pipeline(
            [
                ("text", FunctionTransformer(as_text)),
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=self.max_categories,
                        min_frequency=5,
                    ),
                ),
            ]
        )
        numeric = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("log", FunctionTransformer(signed_log1p)),
                ("scale", StandardScaler()),
            ]
        )
        columns = ColumnTransformer(
            [("cat", categorical, list(self.categorical)), ("num", numeric, list(self.numeric))],
            sparse_threshold=0.0,
        )
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=None)
        return Pipeline([("columns", columns), ("logreg", model)])

    def fit(self, X: pd.DataFrame, y, sample_weight=None):
        """Fit on feature columns `categorical + numeric` of `X`, weighted.

        BLAS/OpenMP use `n_threads` (None: library default): with about a hundred columns,
        threads cost more than they give (measured 1.6x slower with two threads at a million
        rows, 25x at ten thousand).
        """
        y = np.asarray(y, dtype=float)
        self.pipeline_ = self._pipeline()
        with threadpool_limits(self.n_threads):
            self.pipeline_.fit(X, y, logreg__sample_weight=_weights(y, sample_weight))
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        with threadpool_limits(self.n_threads):
            return self.pipeline_.predict_proba(X)


class PointsScore(ClassifierMixin, BaseEstimator):
    """A scoring sheet: points per attribute value and per numeric bucket, summed, calibrated.

    Numeric columns are cut at their training quantiles (`n_bins` buckets, fewer when values
    repeat, plus one for missing). Rates are smoothed towards the base rate with a prior of
    `prior_strength` (in units of sample weight), so rare values earn few points. Values or
    buckets never seen in training earn none.
    """

    def __init__(
        self,
        categorical=(),
        numeric=(),
        n_bins: int = 5,
        scale: float = 10.0,
        prior_strength: float = 50.0,
        calibration: str = "sigmoid",
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.n_bins = n_bins
        self.scale = scale
        self.prior_strength = prior_strength
        self.calibration = calibration

    def _points(self, codes: np.ndarray, n_codes: int, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Points per code from weighted counts, smoothed towards the base rate."""
        pos = np.bincount(codes, weights=w * y, minlength=n_codes)
        tot = np.bincount(codes, weights=w, minlength=n_codes)
        m = self.prior_strength
        rate = (pos + m * self.base_rate_) / (tot + m)
        return np.round(self.scale * (_logit(rate) - _logit(self.base_rate_)))

    def _bucket(self, col: str, X: pd.DataFrame) -> np.ndarray:
        """Bucket index per row: 0..len(edges) for values, len(edges) + 1 for missing."""
        x = pd.to_numeric(X[col], errors="coerce").to_numpy(float)
        edges = self.edges_[col]
        out = np.searchsorted(edges, x, side="left")
        out[~np.isfinite(x)] = len(edges) + 1
        return out

    def _categories(self, col: str, X: pd.DataFrame) -> pd.Series:
        return X[col].astype("string").fillna(MISSING)

    def fit(self, X: pd.DataFrame, y, sample_weight=None, calibration_set=None):
        """Learn points from (X, y); fit the calibrator on `calibration_set` = (X, y, weight).

        Without a calibration set the calibrator is fitted on the training rows.
        """
        y = np.asarray(y, dtype=float)
        w = _weights(y, sample_weight)
        self.base_rate_ = float(np.sum(w * y) / np.sum(w))
        self.category_points_: dict[str, dict[str, float]] = {}
        for col in self.categorical:
            codes, levels = pd.factorize(self._categories(col, X), sort=True)
            points = self._points(codes, len(levels), y, w)
            self.category_points_[col] = dict(zip(map(str, levels), points.tolist(), strict=True))
        self.edges_: dict[str, np.ndarray] = {}
        self.bucket_points_: dict[str, np.ndarray] = {}
        quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        for col in self.numeric:
            x = pd.to_numeric(X[col], errors="coerce").to_numpy(float)
            finite = x[np.isfinite(x)]
            self.edges_[col] = np.unique(np.quantile(finite, quantiles)) if len(finite) else []
            self.edges_[col] = np.asarray(self.edges_[col], dtype=float)
            buckets = self._bucket(col, X)
            self.bucket_points_[col] = self._points(buckets, len(self.edges_[col]) + 2, y, w)
        if calibration_set is None:
            calibration_set = (X, y, w)
        X_cal, y_cal, w_cal = calibration_set
        self.calibrator_ = Calibrator(method=self.calibration).fit(
            self.decision_function(X_cal), np.asarray(y_cal, dtype=float), w_cal
        )
        self.classes_ = np.array([0.0, 1.0])
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Total points per row."""
        check_is_fitted(self, "bucket_points_")
        total = np.zeros(len(X))
        for col, points in self.category_points_.items():
            mapped = self._categories(col, X).map(points).astype("float64").fillna(0.0)
            total += mapped.to_numpy(float)
        for col, points in self.bucket_points_.items():
            total += points[self._bucket(col, X)]
        return total

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        p = self.calibrator_.predict(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def points_table(self) -> pd.DataFrame:
        """The scoring sheet: column, value or bucket, points (non-zero entries only)."""
        check_is_fitted(self, "bucket_points_")
        rows = [
            (col, value, pts)
            for col, points in self.category_points_.items()
            for value, pts in points.items()
        ]
        for col, points in self.bucket_points_.items():
            edges = self.edges_[col]
            names = [f"<= {edges[0]:g}"] if len(edges) else ["any"]
            names += [f"({lo:g}, {hi:g}]" for lo, hi in itertools.pairwise(edges)]
            names += [f"> {edges[-1]:g}"] if len(edges) else []
            names += [MISSING]
            rows += [(col, name, pts) for name, pts in zip(names, points.tolist(), strict=True)]
        table = pd.DataFrame(rows, columns=["column", "value", "points"])
        return table[table["points"] != 0].reset_index(drop=True)
