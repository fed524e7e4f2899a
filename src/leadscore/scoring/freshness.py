"""Is the data recent enough for the as-of date? `data_through` and the stale-data warning.

`data_through` is the newest timestamp the run saw in the leads file's time columns (creation
and outcomes) and in the event log, tracked while they stream (`scoring.stream.LeadTally`).
Scoring "as of" a date well after it publishes last week's data as this week's: every lead looks
a little older and idler than it is, so probabilities fall and drift warnings appear. When the
as-of date is more than `score.max_data_lag_days` days after it, the run warns (log, manifest,
top of both reports), or refuses (`score.refuse_stale_data`), before anything is written.
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.config import Score
from leadscore.errors import ScoringError

log = logging.getLogger(__name__)

STALE_DATA = "stale data"  # how the warning starts


def timestamp_text(value: pd.Timestamp | None) -> str | None:
    """YYYY-MM-DD at midnight, else YYYY-MM-DD HH:MM:SS; None stays None."""
    if value is None:
        return None
    return f"{value:%Y-%m-%d}" if value == value.normalize() else f"{value:%Y-%m-%d %H:%M:%S}"


def data_lag_days(data_through: pd.Timestamp, as_of: pd.Timestamp) -> int:
    """Whole calendar days from the newest data to the as-of date."""
    return (pd.Timestamp(as_of).normalize() - pd.Timestamp(data_through).normalize()).days


def stale_data_warning(
    data_through: pd.Timestamp | None, as_of: pd.Timestamp, max_lag_days: int
) -> str | None:
    """The warning when `as_of` is more than `max_lag_days` after `data_through`, else None."""
    if data_through is None:
        return None
    lag = data_lag_days(data_through, as_of)
    if lag <= max_lag_days:
        return None
    return (
        f"{STALE_DATA}: the newest record in the leads and activities is from "
        f"{data_through:%Y-%m-%d}, {lag} days before the as-of date {as_of:%Y-%m-%d} "
        f"(score.max_data_lag_days: {max_lag_days}); activity and outcomes since then are "
        "missing, so leads look older and idler than they are"
    )


def check_freshness(
    data_through: pd.Timestamp | None, as_of: pd.Timestamp, score: Score
) -> tuple[str, ...]:
    """The stale-data warning (logged), if any; `ScoringError` instead when told to refuse."""
    warning = stale_data_warning(data_through, as_of, score.max_data_lag_days)
    if warning is None:
        return ()
    if score.refuse_stale_data:
        raise ScoringError(f"refused ({warning}); score.refuse_stale_data is on")
    log.warning(warning)
    return (warning,)
