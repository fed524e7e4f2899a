"""Time to an outcome with open cases counted: the Kaplan-Meier estimate.

Durations of completed cases alone (a median of the leads that already met) leave out every lead
still open, so they understate how long conversion takes and say nothing about how many convert.
`kaplan_meier` counts an open lead as *censored*: at risk up to the time it was last observed
(the export date), unknown after. Its `converted` column is the estimated share of leads that
had the outcome by each time.

A lead lost before the outcome never has it. Kept at risk until the export date (a censoring
time known for every lead), it counts as not converted for as long as it was observed, which
makes `converted` the cumulative incidence of the outcome in the presence of losses (with only
administrative censoring, 1 - Kaplan-Meier on these times is exactly that), not the higher
"converted had nobody been lost".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CURVE_COLUMNS = ("time", "at_risk", "events", "censored", "survival", "converted")


def kaplan_meier(durations, observed) -> pd.DataFrame:
    """Kaplan-Meier estimate from one duration per case and whether the outcome was observed
    at it (True) or the case was censored then (False).

    One row per distinct time, ascending: `at_risk` (cases with duration >= time), `events`
    and `censored` at that time, `survival` (the product of 1 - events / at_risk up to and
    including the time) and `converted` = 1 - survival. Cases censored at a time count as at
    risk at it (events come first). Missing durations are left out; negative ones are an error.
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape:
        raise ValueError(f"durations and observed differ in length: {t.shape} vs {e.shape}")
    keep = ~np.isnan(t)
    t, e = t[keep], e[keep]
    if (t < 0).any():
        raise ValueError("durations must not be negative")
    times, inverse = np.unique(t, return_inverse=True)
    events = np.bincount(inverse, weights=e.astype(float), minlength=len(times))
    total = np.bincount(inverse, minlength=len(times)).astype(float)
    at_risk = total[::-1].cumsum()[::-1]
    hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
    survival = np.cumprod(1.0 - hazard)
    return pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk.astype(int),
            "events": events.astype(int),
            "censored": (total - events).astype(int),
            "survival": survival,
            "converted": 1.0 - survival,
        }
    )


def converted_by(curve: pd.DataFrame, time: float) -> float:
    """The estimated share converted by `time` (a step function: the last row at or before it;
    0 before the first time). NaN past the longest duration (nothing is known there) and
    without cases."""
    if len(curve) == 0 or time > curve["time"].iloc[-1]:
        return float("nan")
    upto = curve[curve["time"] <= time]
    return float(upto["converted"].iloc[-1]) if len(upto) else 0.0


def time_to_converted(curve: pd.DataFrame, share: float) -> float:
    """The first time by which at least `share` of the cases had converted (NaN: never)."""
    hit = curve[curve["converted"] >= share - 1e-12]
    return float(hit["time"].iloc[0]) if len(hit) else float("nan")


def time_to_outcome(
    start: pd.Series, outcome: pd.Series, end: pd.Timestamp | pd.Series
) -> tuple[pd.Series, pd.Series]:
    """(days from `start` to `outcome`, observed) per case: the outcome time when there is one
    at or before `end`, else censored at `end` (e.g. the export date). Cases without a start
    get a missing duration."""
    outcome = pd.to_datetime(outcome)
    seen = outcome.notna() & (outcome <= end)
    stop = outcome.where(seen, end)
    days = (stop - pd.to_datetime(start)).dt.total_seconds() / 86_400
    return days.clip(lower=0), seen
