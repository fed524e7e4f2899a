"""The model bundle: one calibrated pipeline per target, with its feature spec.

`LeadScoreModel` is what training produces, MLflow stores (inside a pyfunc wrapper) and the scorer
loads. Each `TargetModel` is a scikit-learn `Pipeline` (`LeadPreprocessor` then the family's
estimator: `LGBMClassifier`, or `linear.SplineLogit`) plus a `Calibrator` that maps the raw
log-odds to a calibrated probability; `family` says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from leadscore.config import Model as ModelSettings
from leadscore.data.features import FeatureSpec, LeadPreprocessor
from leadscore.modeling.drift import Reference
from leadscore.modeling.grades import GradeScheme

LIGHTGBM = "lightgbm"


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def level_shift(margin: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """The constant `b` for which `sigmoid(margin + b)` fits `y` best (weighted log loss; Newton
    on one parameter; 0.0 when `y` has a single class)."""
    margin, y = np.asarray(margin, dtype=float), np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    if not 0 < np.sum(w * y) < np.sum(w):
        return 0.0
    b = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(margin + b)))
        step = np.sum(w * (y - p)) / max(np.sum(w * p * (1 - p)), 1e-12)
        b += float(np.clip(step, -5.0, 5.0))
        if abs(step) < 1e-10:
            break
    return b


class Calibrator(BaseEstimator):
    """Strictly increasing map from raw log-odds to probability, fitted on held-out margins.

    `method="sigmoid"` (Platt) fits `p = sigmoid(a * margin + b)`; `method="shift"` keeps the
    model's own scale and fits the level only, `p = sigmoid(margin + b)` (steadier on little
    data, and enough when only the base rate moved); `method="none"` keeps the model's own
    probabilities, `p = sigmoid(margin)`. `method="isotonic"` fits isotonic
    regression, then interpolates linearly (on the log-odds scale) between the centres of its
    steps and continues beyond the outer centres with the Platt slope: the raw step function
    would tie every lead of a step at one probability (thousands of leads, a loss of ranking:
    measured on the 20k sample, meeting PR AUC 0.548 with steps against 0.572 with sigmoid),
    while the interpolated map keeps the ranking of the margins. `"auto"` means sigmoid here;
    model selection chooses between sigmoid, shift and none per candidate (`selection`).

    Which held-out rows it is fitted on is the trainer's choice (`selection`: the newest period,
    so that a base rate that moves over time is tracked).
    """

    def __init__(self, method: str = "auto"):
        self.method = method

    def fit(self, margin: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):
        margin = np.asarray(margin, dtype=float)
        y = np.asarray(y, dtype=float)
        method = "sigmoid" if self.method == "auto" else self.method
        self.method_ = method
        self.model_ = LogisticRegression(C=1e6)
        self.model_.fit(margin.reshape(-1, 1), y, sample_weight=sample_weight)
        self.line_ = (float(self.model_.coef_[0, 0]), float(self.model_.intercept_[0]))
        if method == "shift":
            self.line_ = (1.0, level_shift(margin, y, sample_weight))
        if method == "none":
            self.line_ = (1.0, 0.0)
        if method == "isotonic":
            iso = IsotonicRegression(y_min=1e-4, y_max=1 - 1e-4, out_of_bounds="clip")
            fitted = iso.fit(margin, y, sample_weight=sample_weight).predict(margin)
            w = np.ones_like(margin) if sample_weight is None else np.asarray(sample_weight)
            centres, values = [], []
            for value in np.unique(fitted):
                step = fitted == value
                centres.append(np.average(margin[step], weights=w[step]))
                values.append(value)
            self.centres_ = np.asarray(centres)
            self.logits_ = _logit(np.asarray(values))
            self.slope_ = max(self.line_[0], 1e-3)
        return self

    def relevel(self, margin: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):
        """Re-fit the level only (keep the slope) so that the mean probability on these rows
        matches their rate; a no-op for `"none"` and `"isotonic"`."""
        check_is_fitted(self, "model_")
        if self.method_ in ("sigmoid", "shift"):
            slope = self.line_[0]
            margin = slope * np.asarray(margin, dtype=float)
            self.line_ = (slope, level_shift(margin, np.asarray(y, dtype=float), sample_weight))
        return self

    def logit(self, margin: np.ndarray) -> np.ndarray:
        """The calibrated log-odds of each raw log-odds value."""
        check_is_fitted(self, "model_")
        margin = np.asarray(margin, dtype=float)
        if getattr(self, "method_", "sigmoid") != "isotonic":
            line = getattr(self, "line_", None)  # calibrators pickled before it: Platt's
            if line is None:
                line = (float(self.model_.coef_[0, 0]), float(self.model_.intercept_[0]))
            return line[0] * margin + line[1]
        c, v = self.centres_, self.logits_
        out = np.interp(margin, c, v)
        out = np.where(margin < c[0], v[0] + self.slope_ * (margin - c[0]), out)
        out = np.where(margin > c[-1], v[-1] + self.slope_ * (margin - c[-1]), out)
        return out

    def predict(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probability for each raw log-odds value."""
        check_is_fitted(self, "model_")
        margin = np.asarray(margin, dtype=float)
        if getattr(self, "method_", "sigmoid") == "isotonic" and not hasattr(self, "centres_"):
            return self.model_.predict(margin)  # a step calibrator pickled before the change
        return 1.0 / (1.0 + np.exp(-self.logit(margin)))


def make_pipeline(spec: FeatureSpec, settings: ModelSettings, seed: int, max_categories: int = 50):
    """An unfitted pipeline: preprocessing inside, LightGBM at the end (with the spec's
    monotone constraints on activity counts, if any)."""
    constraints = spec.monotone_constraints()
    monotone = {"monotone_constraints": constraints} if any(constraints) else {}
    booster = lgb.LGBMClassifier(
        n_estimators=settings.n_estimators,
        learning_rate=settings.learning_rate,
        num_leaves=settings.num_leaves,
        max_depth=settings.max_depth,
        min_child_samples=settings.min_child_samples,
        subsample=settings.subsample,
        subsample_freq=1 if settings.subsample < 1 else 0,
        colsample_bytree=settings.colsample_bytree,
        reg_lambda=settings.reg_lambda,
        n_jobs=settings.n_jobs,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
        **monotone,
    )
    prep = LeadPreprocessor(categorical=spec.categorical, numeric=(), max_categories=max_categories)
    return Pipeline([("prep", prep), ("lgbm", booster)])


@dataclass(frozen=True)
class TargetInfo:
    """How a target model was fitted: family and settings, calibration, rows and split.

    `best_iteration` is the number of trees (None for the linear family). `fit_rows` are the rows
    the shipped model was fitted on (every labelled row), `evaluation_fit_rows` those of the
    evaluation model that produced `validation_metrics` (model and baselines on the validation
    rows, none of which any of them saw). `selection` records the candidates' cross-validated
    scores. The cutoffs (ISO timestamps, None for a random split) let the promotion gate find the
    same validation period again.
    """

    best_iteration: int | None
    calibration_method: str
    fit_rows: int
    calibration_rows: int
    split: str | None = None
    validation_cutoff: str | None = None
    calibration_cutoff: str | None = None
    family: str = LIGHTGBM
    linear_C: float | None = None
    linear_knots: int | None = None
    cv_folds: int | None = None
    evaluation_fit_rows: int | None = None
    validation_metrics: dict[str, dict[str, float]] | None = None
    selection: dict | None = None


@dataclass
class TargetModel:
    """A fitted pipeline and calibrator for one target (`family`: which estimator ends it)."""

    target: str
    pipeline: Pipeline
    calibrator: Calibrator
    base_rate: float
    metadata: TargetInfo | None = None
    family: str = LIGHTGBM

    def __setstate__(self, state: dict) -> None:
        """Unpickle; models pickled before `TargetInfo` kept their metadata as a dict."""
        meta = state.get("metadata")
        if isinstance(meta, dict):
            state = {**state, "metadata": TargetInfo(**meta) if meta else None}
        state.setdefault("family", LIGHTGBM)
        self.__dict__.update(state)

    @property
    def preprocessor(self) -> LeadPreprocessor:
        return self.pipeline.named_steps["prep"]

    @property
    def estimator(self):
        """The pipeline's last step (`LGBMClassifier` or `linear.SplineLogit`)."""
        return self.pipeline.steps[-1][1]

    @property
    def booster(self) -> lgb.Booster:
        """The LightGBM booster (a blend's LightGBM part for the blend family)."""
        est = self.estimator
        return getattr(est, "lgbm", est).booster_

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Features as the estimator sees them (after the pipeline's preprocessing)."""
        return self.preprocessor.transform(features)

    def margin(self, features: pd.DataFrame) -> np.ndarray:
        """The model's raw log-odds (booster or linear model)."""
        return self.estimator.predict_proba(self.transform(features), raw_score=True)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the target."""
        return self.calibrator.predict(self.margin(features))


class AccountScorer(Protocol):
    """The account model a bundle may carry (`leadscore.accounts.model.AccountModel`): the
    modeling room only stores it; the accounts room trains and applies it."""

    basis: str  # "model" (an account model per target) or "rollup" (of the leads' probabilities)
    metrics: dict[str, float]


@dataclass
class LeadScoreModel:
    """Everything the scorer needs: the feature spec and one calibrated model per target."""

    spec: FeatureSpec
    targets: dict[str, TargetModel]
    headline_target: str
    reference: Reference = field(default_factory=Reference)
    metadata: dict = field(default_factory=dict)
    grades: GradeScheme | None = None  # A-D cut-offs on the headline probability (None: older)
    accounts: AccountScorer | None = None  # account-based scoring (None: no account ids)

    def __setstate__(self, state: dict) -> None:
        """Unpickle; bundles pickled before `Reference` kept their reference as a dict."""
        if isinstance(state.get("reference"), dict):
            state = {**state, "reference": Reference.from_dict(state["reference"])}
        self.__dict__.update({"grades": None, "accounts": None, **state})

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """One column `p_<target>` per target, in the input's row order."""
        cols = {
            f"p_{t}": m.predict_proba(features[self.spec.columns]) for t, m in self.targets.items()
        }
        return pd.DataFrame(cols, index=features.index)
