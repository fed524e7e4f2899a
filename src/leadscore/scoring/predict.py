"""One chunk of open leads scored: probabilities, score, grade, reasons, explore flag and trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.data.features import ActivityStats, build_features
from leadscore.modeling.drift import probability_to_score
from leadscore.modeling.explain import explain, fit_vs_engagement
from leadscore.modeling.model import LeadScoreModel
from leadscore.scoring.reasons import top_reasons
from leadscore.scoring.tracking import ModelRef

TREND_POINTS = 5
AS_OF_DTYPE = pd.ArrowDtype(pa.date32())


def grade_for(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """A–D grade per 0–100 score: A at or above thresholds['A'], then B, C; D below."""
    s = np.asarray(scores, float)
    return np.select(
        [s >= thresholds["A"], s >= thresholds["B"], s >= thresholds["C"]], ["A", "B", "C"], "D"
    )


def explore_flags(lead_ids: pd.Series, as_of: pd.Timestamp, share: float) -> np.ndarray:
    """A reproducible random share of leads per as-of date, marked for exploration."""
    if share <= 0:
        return np.zeros(len(lead_ids), bool)
    keys = lead_ids.astype("string") + f"|{as_of:%Y-%m-%d}"
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(np.uint64)
    return (hashed / np.float64(2**64)) < share


def trend_for(scores: pd.DataFrame, previous: pd.DataFrame | None) -> pd.Series:
    """up / steady / down against the previous run's score; 'new' for leads not scored before."""
    if previous is None:
        return pd.Series("", index=scores.index, dtype="string")
    before = scores["lead_id"].map(previous.set_index("lead_id")["score"])
    diff = scores["score"] - before
    out = np.select(
        [before.isna(), diff >= TREND_POINTS, diff <= -TREND_POINTS],
        ["new", "up", "down"],
        "steady",
    )
    return pd.Series(out, index=scores.index, dtype="string")


def expected_values(
    p_won: np.ndarray | None, amounts: pd.Series | None, mean_won_amount: float | None
) -> np.ndarray:
    """p_won × the lead's own deal amount where known, else the average won deal in training."""
    if p_won is None:
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


def score_chunk(
    bundle: LeadScoreModel,
    snaps: pd.DataFrame,
    stats: ActivityStats | None,
    settings: Settings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probabilities, score, grade, fit/engagement and reasons for one chunk of open leads."""
    spec = bundle.spec
    features = build_features(snaps, None, spec, stats=stats)
    probs = bundle.predict_proba(features)
    expl = explain(bundle.targets[bundle.headline_target], features, spec)
    score = headline_scores(bundle, probs)
    out = pd.DataFrame({"lead_id": snaps["lead_id"].astype("string").to_numpy()})
    for col in probs.columns:
        out[col] = np.round(probs[col].to_numpy(), 6)
    out["score"] = score
    out["grade"] = grade_for(score, settings.score.grade_thresholds)
    split = fit_vs_engagement(expl.contrib_pp, spec)
    out["fit_score"] = np.round(split["fit_score"].to_numpy(float), 2)
    out["engagement_score"] = np.round(split["engagement_score"].to_numpy(float), 2)
    reasons = top_reasons(expl.contrib_pp, features, spec, n=settings.score.top_reasons)
    for col in reasons.columns:
        out[col] = reasons[col].astype("string").to_numpy()
    p_won = probs["p_won"].to_numpy() if "p_won" in probs else None
    amounts = snaps.get("amount", None)
    out["expected_value"] = expected_values(p_won, amounts, bundle.reference.mean_won_amount)
    return out, features


def label_chunk(
    out: pd.DataFrame,
    as_of: pd.Timestamp,
    ref: ModelRef,
    previous: pd.DataFrame | None,
    explore_share: float,
) -> pd.DataFrame:
    """Add the explore flag, the trend, the model that scored and the as-of date (in place)."""
    out["explore"] = explore_flags(out["lead_id"], as_of, explore_share)
    out["trend"] = trend_for(out, previous)
    out["model_name"] = ref.name
    out["model_version"] = ref.version
    out["run_id"] = ref.run_id
    # a date (date32 in Parquet, YYYY-MM-DD in the CSV), not a midnight timestamp
    out["as_of"] = pd.Series(as_of.date(), index=out.index, dtype=AS_OF_DTYPE)
    return out
