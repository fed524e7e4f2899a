"""One chunk of open leads scored: probabilities, score, grade, reasons, dormant and explore flags.

Leads older at the as-of date than any training snapshot (the model's horizon, its training
`snapshots.max_age_days`) are *dormant*: the model never saw such an age, so they are scored
with their age held at the horizon instead of extrapolating. Their reasons still state their
true age.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.data.features import ActivityStats, build_features, hold_age
from leadscore.errors import ConfigError
from leadscore.modeling.drift import probability_to_score
from leadscore.modeling.explain import explain, fit_vs_engagement
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.summary import DEFAULT_THRESHOLDS
from leadscore.scoring.reasons import top_reasons, typical_counts
from leadscore.scoring.tracking import ModelRef

AS_OF_DTYPE = pd.ArrowDtype(pa.date32())
# the columns scores.parquet/csv have besides the shown (display, owner) and reason columns
SCORE_COLUMNS: tuple[str, ...] = (
    "lead_id", "p_meeting", "p_won", "score", "grade", "fit_score", "engagement_score",
    "expected_value", "dormant", "explore", "trend", "trend_reason", "model_name",
    "model_version", "run_id", "as_of", "reasons",
)  # fmt: skip
REASON_COLUMN = re.compile(r"reason_(pos|neg)_\d+(_code|_points)?")


def check_shown_columns(settings: Settings) -> None:
    """A `ConfigError` when a display or owner column has the name of a scores column."""
    cols = settings.columns
    for name in cols.shown:
        if name in SCORE_COLUMNS or REASON_COLUMN.fullmatch(name):
            key = "owner" if name == cols.owner else "display"
            raise ConfigError(
                f"columns.{key}: {name!r} is the name of a column of scores.parquet; "
                "rename it in the leads file (or leave it out)"
            )


def lead_grades(bundle: LeadScoreModel, headline_p: np.ndarray, score: np.ndarray) -> np.ndarray:
    """A-D per lead from the model's probability cut-offs (measured on validation); models
    trained before grades were measured keep the old 0-100 score thresholds."""
    if bundle.grades is not None:
        return bundle.grades.grade(headline_p)
    s = np.asarray(score, float)
    t = DEFAULT_THRESHOLDS  # models trained without grades: the old 0-100 score thresholds
    return np.select([s >= t["A"], s >= t["B"], s >= t["C"]], ["A", "B", "C"], "D")


def grade_score_thresholds(bundle: LeadScoreModel) -> dict[str, float]:
    """Where each grade starts on the 0-100 score (for charts): the score of its cut-off."""
    if bundle.grades is None or not bundle.reference.score_quantiles:
        return dict(DEFAULT_THRESHOLDS)
    cut = np.asarray(bundle.grades.cutoffs, float)
    scores = probability_to_score(cut, bundle.reference.score_quantiles)
    return {g: float(s) for g, s in zip("ABC", scores, strict=True)}


def explore_flags(lead_ids: pd.Series, as_of: pd.Timestamp, share: float) -> np.ndarray:
    """A reproducible random share of leads per as-of date, marked for exploration."""
    if share <= 0:
        return np.zeros(len(lead_ids), bool)
    keys = lead_ids.astype("string") + f"|{as_of:%Y-%m-%d}"
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(np.uint64)
    return (hashed / np.float64(2**64)) < share


def expected_values(
    p_won: np.ndarray | None, amounts: pd.Series | None, mean_won_amount: float | None
) -> np.ndarray:
    """p_won × the lead's own deal amount where known, else the average won deal in training."""
    if p_won is None:  # no won target: no expected value
        return np.full(0 if amounts is None else len(amounts), np.nan)
    fallback = np.nan if mean_won_amount is None else mean_won_amount
    amount = np.full(len(p_won), fallback)
    if amounts is not None:
        own = pd.to_numeric(amounts, errors="coerce").to_numpy(float)
        amount = np.where(np.isfinite(own), own, amount)
    return np.round(p_won * amount, 2)


def headline_scores(bundle: LeadScoreModel, probs: pd.DataFrame) -> np.ndarray:
    """0–100 scores: the headline probability's rank among the training leads (else × 100)."""
    quantiles = bundle.reference.score_quantiles
    headline_p = probs[f"p_{bundle.headline_target}"].to_numpy()
    if quantiles:
        return probability_to_score(headline_p, quantiles)
    return np.clip(np.round(headline_p * 100), 0, 100).astype(np.int64)


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk scored: its score rows, and what the trend, drift and wording need."""

    out: pd.DataFrame  # the scores rows
    features: pd.DataFrame  # the model's inputs (dormant leads' age held at the horizon)
    shown: pd.DataFrame  # the leads as they stand (true age), for the wording
    contrib_pp: pd.DataFrame  # the headline target's effects per reason group, in points


def model_horizon(bundle: LeadScoreModel, settings: Settings) -> int | None:
    """The oldest lead age (days) the model was trained on; None when age is no feature.

    Stored with the model at training; bundles trained before it was stored fall back to the
    config's `snapshots.max_age_days`.
    """
    if not bundle.spec.has_time:
        return None
    stored = bundle.metadata.get("max_age_days")
    return int(settings.snapshots.max_age_days if stored is None else stored)


def score_chunk(
    bundle: LeadScoreModel,
    snaps: pd.DataFrame,
    stats: ActivityStats | None,
    settings: Settings,
) -> ScoredChunk:
    """Probabilities, score, grade, fit/engagement and reasons for one chunk of open leads."""
    spec = bundle.spec
    shown = build_features(snaps, None, spec, stats=stats)
    features, dormant = hold_age(shown, model_horizon(bundle, settings))
    probs = bundle.predict_proba(features)
    headline = bundle.targets[bundle.headline_target]
    expl = explain(headline, features, spec)
    score = headline_scores(bundle, probs)
    out = pd.DataFrame({"lead_id": snaps["lead_id"].astype("string").to_numpy()})
    for col in settings.columns.shown:  # who the lead is and whose it is: shown, not features
        shown_col = snaps[col] if col in snaps else pd.Series(pd.NA, index=snaps.index)
        out[col] = shown_col.astype("string").array
    for col in probs.columns:
        out[col] = probs[col].to_numpy(float)  # unrounded: rounding would tie low probabilities
    out["score"] = score
    out["grade"] = lead_grades(bundle, probs[f"p_{bundle.headline_target}"].to_numpy(), score)
    split = fit_vs_engagement(expl.contrib_pp, spec)
    out["fit_score"] = np.round(split["fit_score"].to_numpy(float), 2)
    out["engagement_score"] = np.round(split["engagement_score"].to_numpy(float), 2)
    typical = typical_counts(headline)
    reasons = top_reasons(
        expl.contrib_pp, shown, spec, n=settings.score.top_reasons, typical=typical, codes=True
    )
    for col in reasons.columns:
        values = reasons[col]
        is_points = col.endswith("_points")
        out[col] = values.to_numpy(float) if is_points else values.astype("string").array
    p_won = probs["p_won"].to_numpy() if "p_won" in probs else None
    amounts = snaps.get("amount", None)
    value = expected_values(p_won, amounts, bundle.reference.mean_won_amount)
    out["expected_value"] = value if len(value) == len(out) else np.nan
    out["dormant"] = dormant
    return ScoredChunk(out, features, shown, expl.contrib_pp)


def label_chunk(
    out: pd.DataFrame,
    as_of: pd.Timestamp,
    ref: ModelRef,
    explore_share: float,
    trend: pd.Series,
    trend_reason: pd.Series,
) -> pd.DataFrame:
    """Add the explore flag, the trend, the model that scored and the as-of date (in place)."""
    out["explore"] = explore_flags(out["lead_id"], as_of, explore_share)
    out["trend"] = trend.to_numpy()
    out["trend_reason"] = trend_reason.to_numpy()
    out["model_name"] = ref.name
    out["model_version"] = ref.version
    out["run_id"] = ref.run_id
    # a date (date32 in Parquet, YYYY-MM-DD in the CSV), not a midnight timestamp
    out["as_of"] = pd.Series(as_of.date(), index=out.index, dtype=AS_OF_DTYPE)
    return out
