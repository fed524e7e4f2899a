"""Reference profile of the training data, and drift against it (population stability index).

At training, `reference_profile` summarises each feature (quantile bins for numbers, level shares
for categories) and the headline probability (its quantiles turn a probability into the 0–100
score). At scoring, `psi_table` compares this week's leads with that profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.data.schema import MISSING

N_BINS = 10
SCORE_QUANTILES = 1001
EPSILON = 1e-4


@dataclass(frozen=True)
class NumericProfile:
    """A numeric feature at training: quantile bin edges and the share of values per bin
    (right-closed bins between edges, then a last bin for missing values)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical feature at training: the share of each of its most frequent levels."""

    levels: Mapping[str, float]


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Reference:
    """What a bundle remembers of its training data: per-feature profiles (for drift), the
    headline probability's quantiles (the 0–100 score scale) and the mean won amount."""

    features: Mapping[str, FeatureProfile] = field(default_factory=dict)
    score_quantiles: tuple[float, ...] = ()
    mean_won_amount: float | None = None
    # the reference leads' scores in ten bins (0-9, ..., 90-100): what score drift compares with
    score_shares: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping) -> Reference:
        """A reference from the dict that bundles pickled before this class existed."""
        features = {
            col: CategoricalProfile(dict(prof["levels"]))
            if prof["kind"] == "categorical"
            else NumericProfile(tuple(prof["edges"]), tuple(prof["shares"]))
            for col, prof in raw.get("features", {}).items()
        }
        return cls(features, tuple(raw.get("score_quantiles") or ()), raw.get("mean_won_amount"))


def _numeric_profile(values: pd.Series) -> NumericProfile:
    x = pd.to_numeric(values, errors="coerce").to_numpy(float)
    finite = x[np.isfinite(x)]
    edges = (
        np.unique(np.quantile(finite, np.linspace(0, 1, N_BINS + 1)[1:-1])) if len(finite) else []
    )
    shares = _numeric_shares(x, np.asarray(edges, float))
    return NumericProfile(tuple(float(e) for e in edges), tuple(shares))


def _numeric_shares(x: np.ndarray, edges: np.ndarray) -> list[float]:
    """Shares of values per bin (right-closed bins between edges), plus a last bin for missing."""
    missing = ~np.isfinite(x)
    bins = np.searchsorted(edges, x[~missing], side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return (counts / max(len(x), 1)).tolist()


def _categorical_profile(values: pd.Series, max_levels: int = 50) -> CategoricalProfile:
    text = values.astype("string").fillna(MISSING)
    shares = text.value_counts(normalize=True)
    top = shares.sort_values(ascending=False).head(max_levels)
    return CategoricalProfile({str(k): float(v) for k, v in top.items()})


def _categorical_shares(values: pd.Series, levels: Mapping[str, float]) -> tuple[list, list]:
    text = values.astype("string").fillna(MISSING)
    now = text.value_counts(normalize=True)
    names = list(levels)
    expected = [levels[n] for n in names] + [max(0.0, 1 - sum(levels.values()))]
    actual = [float(now.get(n, 0.0)) for n in names]
    actual.append(max(0.0, 1 - sum(actual)))
    return expected, actual


def reference_profile(
    features: pd.DataFrame,
    categorical: tuple[str, ...],
    probabilities: np.ndarray,
    won_amounts: pd.Series | None = None,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
) -> Reference:
    """Summary of the training features and of the headline probability.

    The 0-100 score scale is the weighted distribution of `scale` = (probabilities, weights):
    the headline probability of the validation leads as they stood week by week while open,
    so a score means the same whatever number of stale leads the CRM holds. Without `scale`
    the reference leads' own `probabilities` set it. Score drift compares with the reference
    leads' scores on that scale.
    """
    profile = {
        col: _categorical_profile(features[col])
        if col in categorical
        else _numeric_profile(features[col])
        for col in features.columns
        if features[col].nunique(dropna=False) > 1  # a constant column cannot drift usefully
    }
    probs = np.asarray(probabilities, float)
    scale_p, scale_w = scale if scale is not None else (probs, np.ones(len(probs)))
    quantiles = tuple(weighted_quantiles(scale_p, scale_w, SCORE_QUANTILES))
    amounts = (
        pd.to_numeric(won_amounts, errors="coerce").dropna() if won_amounts is not None else []
    )
    return Reference(
        features=profile,
        score_quantiles=quantiles,
        mean_won_amount=float(np.mean(amounts)) if len(amounts) else None,
        score_shares=tuple(score_bin_shares(probability_to_score(probs, quantiles))),
    )


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, n: int) -> list[float]:
    """`n` evenly spaced quantiles (0 to 1) of `values` under `weights`."""
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    mass = (np.cumsum(w) - w / 2) / w.sum()
    return np.interp(np.linspace(0, 1, n), mass, v).tolist()


SCORE_BIN_EDGES = np.arange(10, 100, 10, dtype=float) - 0.5


def score_bin_shares(scores: np.ndarray) -> list[float]:
    """Shares of scores per ten-point bin (the last bin, for missing scores, is empty)."""
    return _numeric_shares(np.asarray(scores, float), SCORE_BIN_EDGES)


def probability_to_score(probabilities: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """0–100 score: the share of reference leads with a lower headline probability."""
    q = np.asarray(quantiles, float)
    lo = np.searchsorted(q, probabilities, side="left")
    hi = np.searchsorted(q, probabilities, side="right")
    rank = (lo + hi) / 2 / len(q)
    return np.clip(np.round(rank * 100), 0, 100).astype(np.int64)


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two share vectors."""
    e = np.clip(np.asarray(expected, float), EPSILON, None)
    a = np.clip(np.asarray(actual, float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(values: pd.Series, profile: FeatureProfile) -> float:
    """PSI of one feature's current values against its training profile."""
    if isinstance(profile, CategoricalProfile):
        expected, actual = _categorical_shares(values, profile.levels)
        return psi(expected, actual)
    x = pd.to_numeric(values, errors="coerce").to_numpy(float)
    return psi(list(profile.shares), _numeric_shares(x, np.asarray(profile.edges, float)))


def psi_table(features: pd.DataFrame, reference: Reference, scores: np.ndarray | None = None):
    """PSI per feature (and of the score, when given), highest first."""
    rows = [
        (col, feature_psi(features[col], prof))
        for col, prof in reference.features.items()
        if col in features
    ]
    if scores is not None and reference.score_quantiles:
        # older references: scores of their own leads, uniform over 0-100 by construction
        expected = list(reference.score_shares) or [0.1] * 10 + [0.0]
        rows.append(("score", psi(expected, score_bin_shares(scores))))
    table = pd.DataFrame(rows, columns=["feature", "psi"])
    return table.sort_values(["psi", "feature"], ascending=[False, True]).reset_index(drop=True)
