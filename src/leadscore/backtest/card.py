"""A cohort's report card as data: per grade the leads, conversions, realized rate (95% Wilson
interval), expected rate (mean probability), share of leads and of conversions and lift; ranking
(ROC AUC, PR AUC) and calibration (ECE, reliability bins) over the whole cohort.

`cohort_card` returns plain JSON-ready values (rounded; None where undefined, never NaN), the
entries of `backtest.json`'s `cohorts`; the HTML report card is drawn from the same dicts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadscore.backtest.outcomes import CohortOutcomes
from leadscore.modeling.evaluate import binary_metrics, calibration_table

Z95 = 1.959963984540054  # two-sided 95% normal quantile
RATE_DECIMALS = 4
LIFT_DECIMALS = 2


def wilson_interval(converted: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a rate `converted / n` (NaN for n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    rate = converted / n
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _round(value: float | None, digits: int = RATE_DECIMALS) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def grade_rows(frame: pd.DataFrame, grades: tuple[str, ...]) -> dict[str, dict]:
    """Per grade: n, converted, rate with its 95% interval, expected rate, shares, lift.

    `frame` holds `grade`, `p` and `converted`; grades outside `grades` are added at the end.
    Lift is the grade's rate over the cohort's.
    """
    n_all = len(frame)
    conv_all = int(frame["converted"].sum())
    cohort_rate = _ratio(conv_all, n_all)
    seen = [g for g in pd.unique(frame["grade"].dropna()) if g not in grades]
    out: dict[str, dict] = {}
    for grade in (*grades, *sorted(seen)):
        rows = frame[(frame["grade"] == grade).to_numpy(bool)]
        n, converted = len(rows), int(rows["converted"].sum())
        rate = _ratio(converted, n)
        low, high = wilson_interval(converted, n)
        out[str(grade)] = {
            "n": n,
            "converted": converted,
            "rate": _round(rate),
            "rate_low": _round(low),
            "rate_high": _round(high),
            "expected_rate": _round(float(rows["p"].mean()) if n else math.nan),
            "share_of_leads": _round(_ratio(n, n_all)),
            "share_of_conversions": _round(_ratio(converted, conv_all)),
            "lift": _round(_ratio(rate, cohort_rate), LIFT_DECIMALS),
        }
    return out


def reliability(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Mean probability against realized rate in ten equal-size bins of the probabilities."""
    if len(y) == 0:
        return []
    table = calibration_table(y, p)
    return [
        {
            "mean_probability": _round(row.mean_probability),
            "observed_rate": _round(row.observed_rate),
            "n": int(row.n),
        }
        for row in table.itertuples()
    ]


def cohort_card(
    outcomes: CohortOutcomes, grades: tuple[str, ...], notes: tuple[str, ...] = ()
) -> dict:
    """The JSON entry of one cohort and target (see the module docstring)."""
    frame = outcomes.frame
    y = frame["converted"].to_numpy(float)
    p = frame["p"].to_numpy(float)
    metrics = binary_metrics(y, p)
    n, converted = len(frame), int(y.sum())
    low, high = wilson_interval(converted, n)
    cohort = outcomes.cohort
    return {
        "as_of": f"{cohort.as_of:%Y-%m-%d}",
        "target": outcomes.target,
        "window_days": outcomes.window_days,
        "matured": outcomes.matured,
        "observed_share": _round(outcomes.observed_share, 3),
        "window_end": f"{outcomes.window_end:%Y-%m-%d}",
        "observed_until": f"{outcomes.observed_until:%Y-%m-%d}",
        "n": n,
        "converted": converted,
        "rate": _round(_ratio(converted, n)),
        "rate_low": _round(low),
        "rate_high": _round(high),
        "expected_rate": _round(float(p.mean()) if n else math.nan),
        "grades": grade_rows(frame, grades),
        "roc_auc": _round(metrics["roc_auc"]),
        "pr_auc": _round(metrics["pr_auc"]),
        "ece": _round(metrics["ece"]),
        "brier": _round(metrics["brier"]),
        "reliability": reliability(y, p),
        "scored": outcomes.n_scored,
        "missing_from_data": outcomes.n_missing,
        "converted_before_as_of": outcomes.n_before_as_of,
        "model": dict(cohort.model),
        "scores": str(cohort.folder),
        "notes": list(notes),
    }


def cohort_notes(outcomes: CohortOutcomes) -> tuple[str, ...]:
    """What a reader must know about a cohort's figures: a window not over yet, scored leads
    the data no longer holds, conversions dated before the scoring but recorded after it."""
    notes = []
    if not outcomes.matured:
        notes.append(
            f"partial: the data runs to {outcomes.observed_until:%Y-%m-%d}, "
            f"{outcomes.observed_share:.0%} of the {outcomes.window_days}-day window (it ends "
            f"{outcomes.window_end:%Y-%m-%d}); rates so far are below the final ones"
        )
    if outcomes.n_missing:
        notes.append(
            f"{outcomes.n_missing:,} of the {outcomes.n_scored:,} scored leads are not in the "
            "data any more: left out"
        )
    if outcomes.n_before_as_of:
        notes.append(
            f"{outcomes.n_before_as_of:,} lead(s) had converted by the as-of date by what was "
            "recorded later (e.g. sales feedback): counted as converted"
        )
    return tuple(notes)
