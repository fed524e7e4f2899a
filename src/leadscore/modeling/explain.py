"""Exact TreeSHAP explanations, per original feature group, carried onto the calibrated probability.

For the linear family (``linear.SplineLogit``) step 1 is replaced by the model's own exact,
additive contributions, ``coef * (x - mean x)`` summed over each column's spline / one-hot
columns, with the intercept as the base margin (the log-odds of an average training row); for a
blend (``blend.Blend``, log-odds ``a * linear + b * lightgbm``) by ``a`` times the linear
contributions plus ``b`` times TreeSHAP's, base ``a * intercept + b * expected value``. Step 2 is
the same for every family.

How the numbers are made
------------------------
1. **Log-odds (exact TreeSHAP).** LightGBM's native ``booster.predict(X, pred_contrib=True)`` on
   the booster's own input (``model.transform(features)``) gives, for every row, one SHAP value per
   booster column plus the expected value (last column). This is exact TreeSHAP, the same
   algorithm ``shap.TreeExplainer`` runs natively for LightGBM. The booster columns are summed into
   *groups* with a precomputed 0/1 indicator matrix (one matrix multiply per chunk): a group is the
   original thing a feature describes (``FeatureSpec.group_of``), so the per-window counts of one
   activity type form one group, the lead's age, recency and all-type counts form its timeline,
   and the encoded form of a column never appears. Hence, exactly::

       base_margin + contrib_logodds.sum(axis=1) == margin

2. **Probability points (the carry-over).** The calibrator ``C`` maps log-odds to probability
   and is monotone but not linear (sigmoid, or an isotonic step function). With the row's group
   contributions ``phi_g`` split into the positive bloc ``P = sum(phi_g > 0)`` and the negative
   bloc ``N = sum(|phi_g| for phi_g < 0)`` and ``m0`` the base margin, the change in probability
   ``C(m0 + P - N) - C(m0)`` is shared between the two blocs by their two-player Shapley value::

       v_pos = ( [C(m0 + P) - C(m0)] + [C(m0 + P - N) - C(m0 - N)] ) / 2      (>= 0)
       v_neg = ( [C(m0 - N) - C(m0)] + [C(m0 + P - N) - C(m0 + P)] ) / 2      (<= 0)

   and within each bloc in proportion to the log-odds contributions:
   ``pp_g = 100 * v_pos * phi_g / P`` for positive ``phi_g``, ``100 * v_neg * |phi_g| / N`` for
   negative ones. Properties:

   * additive, exactly: ``v_pos + v_neg = C(margin) - C(m0)``, so
     ``base_probability + contrib_pp.sum(axis=1) / 100 == probability``;
   * sign-preserving: a group that raises the log-odds never lowers the probability and vice
     versa (``C`` is monotone), so a "reason for" in log-odds is a reason for in points too;
   * no division by ~0: the only divisors are ``P`` and ``N``, each used only when it is > 0; when
     the contributions cancel (``P - N ~ 0``) each bloc still gets its own, opposite-signed,
     share instead of an exploding ratio ``(p - p0) / (m - m0)``;
   * with a linear calibrator it reduces to plain proportional scaling (``slope * phi_g``).

How to read it
--------------
``base_probability`` is the calibrated probability of an average lead (the calibrator at the
booster's expected log-odds): the "model's starting point" (average prediction) of the reports,
never called a base rate there (the base rate is the observed conversion rate, metric
``base_rate``). ``contrib_pp`` says, per group, how many percentage points that group moves this
lead's probability away from the starting point; the starting point plus all the points gives
the lead's probability. Effects are not independent
"what-ifs": removing one feature and re-scoring would not change the probability by exactly
that amount, but the shares are fair (Shapley) and add up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.data.features import TIMELINE_GROUP, FeatureSpec
from leadscore.data.schema import ACTIVITY_GROUP_PREFIX
from leadscore.modeling.model import LIGHTGBM, TargetModel

DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Explanation:
    """Per-row explanation of one target's score.

    All frames and series share the index of the explained features. ``contrib_logodds`` and
    ``contrib_pp`` have one column per feature group (``FeatureSpec.group_of``), in model order.
    """

    margin: pd.Series
    base_margin: float
    contrib_logodds: pd.DataFrame
    probability: pd.Series
    base_probability: float
    contrib_pp: pd.DataFrame

    @property
    def groups(self) -> list[str]:
        """Group names, in column order."""
        return list(self.contrib_logodds.columns)


def feature_groups(spec: FeatureSpec) -> list[str]:
    """The groups of a spec's features, in order of first appearance in ``spec.columns``."""
    return list(dict.fromkeys(spec.group_of(c) for c in spec.columns))


def group_matrix(model: TargetModel, spec: FeatureSpec) -> tuple[list[str], np.ndarray]:
    """Groups and the (booster columns + 1) x groups 0/1 matrix that sums SHAP values per group.

    The last row (LightGBM's expected-value column) is all zeros.
    """
    groups = feature_groups(spec)
    position = {g: j for j, g in enumerate(groups)}
    input_feature = model.preprocessor.input_feature_
    names = model.booster.feature_name()
    matrix = np.zeros((len(names) + 1, len(groups)), dtype=np.float64)
    for i, name in enumerate(names):
        matrix[i, position[spec.group_of(input_feature[name])]] = 1.0
    return groups, matrix


def tree_contributions(
    model: TargetModel,
    booster_input: pd.DataFrame,
    matrix: np.ndarray,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    num_threads: int = DEFAULT_THREADS,
) -> tuple[np.ndarray, float]:
    """Grouped TreeSHAP log-odds (rows x groups) and the expected value, computed in chunks."""
    booster = model.booster
    n = len(booster_input)
    out = np.empty((n, matrix.shape[1]), dtype=np.float64)
    base = None
    for start in range(0, n, chunk_rows):
        chunk = booster_input.iloc[start : start + chunk_rows]
        raw = booster.predict(chunk, pred_contrib=True, num_threads=num_threads)
        out[start : start + len(chunk)] = raw @ matrix
        if base is None:
            base = float(raw[0, -1])
    if base is None:  # no rows: the expected value does not depend on the row, use a blank one
        blank = booster_input.reindex(pd.RangeIndex(1))
        base = float(booster.predict(blank, pred_contrib=True, num_threads=1)[0, -1])
    return out, base


def linear_contributions(
    model: TargetModel, linear, model_input: pd.DataFrame, spec: FeatureSpec
) -> tuple[np.ndarray, float]:
    """Exact grouped log-odds contributions and base margin of a linear model (`linear`: the
    model's `SplineLogit`, or a blend's linear part): its own per-column contributions summed
    per feature group."""
    groups = feature_groups(spec)
    position = {g: j for j, g in enumerate(groups)}
    per_column, base = linear.contributions(model_input)
    input_feature = model.preprocessor.input_feature_
    matrix = np.zeros((per_column.shape[1], len(groups)), dtype=np.float64)
    for i, name in enumerate(linear.columns_):
        matrix[i, position[spec.group_of(input_feature[name])]] = 1.0
    return per_column @ matrix, float(base)


def log_odds_contributions(
    model: TargetModel,
    model_input: pd.DataFrame,
    spec: FeatureSpec,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    num_threads: int = DEFAULT_THREADS,
) -> tuple[list[str], np.ndarray, float]:
    """Groups, grouped log-odds contributions and base margin, for every family: TreeSHAP for
    LightGBM, the linear model's own contributions, and for a blend the same weighted sum of
    both parts' contributions as of their log-odds (exact and additive as well)."""
    groups = feature_groups(spec)
    if model.family == LIGHTGBM:
        _, matrix = group_matrix(model, spec)
        contrib, base = tree_contributions(model, model_input, matrix, chunk_rows, num_threads)
        return groups, contrib, base
    est = model.estimator
    if not hasattr(est, "weights"):  # the linear family
        contrib, base = linear_contributions(model, est, model_input, spec)
        return groups, contrib, base
    w_linear, w_tree = (float(v) for v in est.weights)
    _, matrix = group_matrix(model, spec)
    tree, tree_base = tree_contributions(model, model_input, matrix, chunk_rows, num_threads)
    linear, linear_base = linear_contributions(model, est.linear, model_input, spec)
    return groups, w_linear * linear + w_tree * tree, w_linear * linear_base + w_tree * tree_base


def carry_to_probability(
    contrib: np.ndarray, base_margin: float, calibrator
) -> tuple[np.ndarray, np.ndarray, float]:
    """Log-odds contributions to probability contributions (fractions, not points).

    Returns ``(contrib_prob, probability, base_probability)``; see the module docstring for the
    two-bloc Shapley rule. ``calibrator.predict`` maps log-odds arrays to probabilities.
    """
    p_base = float(calibrator.predict(np.array([base_margin]))[0])
    if len(contrib) == 0:
        return np.zeros_like(contrib, dtype=np.float64), np.zeros(0), p_base
    pos_mask = contrib > 0
    pos = np.where(pos_mask, contrib, 0.0).sum(axis=1)
    neg = np.where(pos_mask, 0.0, -contrib).sum(axis=1)
    n = len(contrib)
    m0 = np.full(n, base_margin)
    margin = base_margin + contrib.sum(axis=1)
    c_full = calibrator.predict(margin)
    c_pos = calibrator.predict(m0 + pos)
    c_neg = calibrator.predict(m0 - neg)
    v_pos = np.where(pos > 0, np.maximum(0.5 * ((c_pos - p_base) + (c_full - c_neg)), 0.0), 0.0)
    v_neg = np.where(neg > 0, np.minimum((c_full - p_base) - v_pos, 0.0), 0.0)
    pos_share = np.divide(v_pos, pos, out=np.zeros(n), where=pos > 0)
    neg_share = np.divide(v_neg, neg, out=np.zeros(n), where=neg > 0)
    contrib_prob = np.where(pos_mask, contrib * pos_share[:, None], -contrib * neg_share[:, None])
    return contrib_prob, np.asarray(c_full, dtype=np.float64), p_base


def explain(
    model: TargetModel,
    features: pd.DataFrame,
    spec: FeatureSpec,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    num_threads: int = DEFAULT_THREADS,
) -> Explanation:
    """Explain one target's scores: grouped exact TreeSHAP in log-odds and probability points.

    ``features`` are model inputs (``build_features`` output, columns ``spec.columns``). Work is
    chunked (``chunk_rows`` rows per ``pred_contrib`` call, ``num_threads`` LightGBM threads) so
    memory stays flat for millions of rows. The margin is the row sum of the contributions, equal
    to ``model.margin(features)`` up to float rounding.
    """
    booster_input = model.transform(features[spec.columns])
    groups, contrib, base_margin = log_odds_contributions(
        model, booster_input, spec, chunk_rows=chunk_rows, num_threads=num_threads
    )
    contrib_prob, probability, base_probability = carry_to_probability(
        contrib, base_margin, model.calibrator
    )
    index = features.index
    return Explanation(
        margin=pd.Series(base_margin + contrib.sum(axis=1), index=index, name="margin"),
        base_margin=base_margin,
        contrib_logodds=pd.DataFrame(contrib, index=index, columns=groups),
        probability=pd.Series(probability, index=index, name="probability"),
        base_probability=base_probability,
        contrib_pp=pd.DataFrame(100.0 * contrib_prob, index=index, columns=groups),
    )


def group_kind(group: str, spec: FeatureSpec) -> str:
    """'fit' (attribute), 'engagement' (an activity type), 'timeline' (age, recency and activity
    over all types), 'other'."""
    if group == TIMELINE_GROUP:
        return "timeline"
    if group.startswith(ACTIVITY_GROUP_PREFIX):
        return "engagement"
    if group in spec.categorical or group in spec.numeric:
        return "fit"
    return "other"


def fit_vs_engagement(contrib_pp: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Split each lead's explanation into fit and engagement, in signed percentage points.

    * ``fit_score``: sum of the attribute groups' effects (who the lead is: job level, industry,
      company size, ...).
    * ``engagement_score``: sum of the activity types' effects (what the lead has done).

    Both are percentage points of probability relative to the model's starting point
    (``base_probability``), like the reasons:
    ``+12.0`` means "these traits raise the chance by 12 points above an average lead", ``-3.5``
    lowers it. The lead's timeline (``TIMELINE_GROUP``: its age, days since its last activity,
    its activity over all types) is neither: it mixes when the lead arrived with how it has
    moved since, so its effect is left out of both; hence
    ``fit_score + engagement_score + timeline effect == probability - base_probability``
    (times 100).
    """
    kinds = np.array([group_kind(str(g), spec) for g in contrib_pp.columns])
    values = contrib_pp.to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "fit_score": values @ (kinds == "fit").astype(np.float64),
            "engagement_score": values @ (kinds == "engagement").astype(np.float64),
        },
        index=contrib_pp.index,
    )
