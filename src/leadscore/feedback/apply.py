"""Feedback as labels: the current entry per lead and stage, written onto the leads' outcomes.

A later entry (later `ingested_at`, then later `source_row`) for the same lead and stage
supersedes an earlier one (`current_feedback`); `apply_feedback` writes the current entries onto
the canonical leads' `meeting_at` / `won_at` / `lost_at`, feedback winning over the CRM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.data.parse import nonblank_text
from leadscore.data.schema import NOTE_OUTCOMES
from leadscore.feedback.validate import STAGE_OF, normalise_outcome

OUTCOME_COLUMNS: tuple[str, ...] = ("meeting_at", "won_at", "lost_at")


@dataclass(frozen=True)
class FeedbackCounts:
    """What `apply_feedback` did to the leads.

    `applied` counts current entries on known leads; of those, `added` filled an outcome the CRM
    did not have, `overridden` changed a CRM value (`conflicting` is the part of `overridden`
    where the CRM had the opposite outcome: CRM won vs lost/disqualified, CRM lost vs won) and
    `unchanged` agreed with the CRM (same calendar day). `explore` counts applied entries on leads
    marked explore; `unknown` entries name a lead not in the leads; `before_created` entries are
    dated before the lead's creation day and are not applied. `not_labels` counts the entries
    that are notes for review (`no_response`, `score_wrong`): stored, never applied.
    """

    applied: int = 0
    added: int = 0
    overridden: int = 0
    conflicting: int = 0
    unchanged: int = 0
    explore: int = 0
    unknown: int = 0
    before_created: int = 0
    not_labels: int = 0


def current_feedback(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (lead, stage): the latest entry (by `ingested_at`, then `source_row`).

    Accepts the store's history or any frame with `lead_id, outcome, date` (then the row order
    decides). Adds a `stage` column; rows with an unknown outcome are left out.
    """
    frame = history.copy()
    frame["lead_id"] = nonblank_text(frame["lead_id"])
    frame["outcome"] = normalise_outcome(frame["outcome"])
    frame["stage"] = frame["outcome"].map(STAGE_OF).astype("string")
    frame = frame[frame["stage"].notna() & frame["lead_id"].notna()]
    order = [c for c in ("ingested_at", "source_row") if c in frame]
    if order:
        frame = frame.sort_values(order, kind="stable")
    current = frame.drop_duplicates(["lead_id", "stage"], keep="last")
    return current.sort_values(["lead_id", "stage"], kind="stable").reset_index(drop=True)


def _same_day(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype("datetime64[D]") == b.astype("datetime64[D]")


def _set_outcome(
    out: pd.DataFrame, pos: np.ndarray, dates: np.ndarray, target: str, opposite: str | None
) -> dict[str, int]:
    """Write feedback dates into `target` at rows `pos` (clearing `opposite`); return counts."""
    values = out[target].to_numpy(copy=True)
    crm = values[pos]
    same = ~np.isnat(crm) & _same_day(crm, dates)
    opp_crm = np.zeros(len(pos), bool)
    if opposite is not None:
        other = out[opposite].to_numpy(copy=True)
        opp_crm = ~np.isnat(other[pos])
        other[pos] = np.datetime64("NaT", "ns")
        out[opposite] = other
    added = np.isnat(crm) & ~opp_crm
    unchanged = same & ~opp_crm
    values[pos] = np.where(same, crm, dates)
    out[target] = values
    return {
        "added": int(added.sum()),
        "overridden": int((~added & ~unchanged).sum()),
        "conflicting": int(opp_crm.sum()),
        "unchanged": int(unchanged.sum()),
    }


def apply_feedback(
    leads: pd.DataFrame, feedback: pd.DataFrame
) -> tuple[pd.DataFrame, FeedbackCounts]:
    """Canonical leads with the current feedback written onto their outcome dates.

    `meeting_held` sets `meeting_at`; `won` sets `won_at` and clears `lost_at`; `lost` and
    `disqualified` set `lost_at` and clear `won_at` (a closed lead is a negative for what did not
    happen). Feedback wins where it disagrees with the CRM; a CRM time on the same calendar day is
    kept (feedback dates have no time of day). Entries for leads not in `leads` are ignored
    (`unknown`). An entry dated before the day the lead was created cannot be placed honestly
    and is not applied (`before_created`; clamping it to the creation time would leave the lead
    with no open snapshot anyway); one dated on the creation day but before its time is set to
    the creation time. Missing outcome columns are added as NaT. Pure: `leads` is not changed.
    """
    out = leads.copy()
    for name in OUTCOME_COLUMNS:
        if name in out:
            out[name] = out[name].astype("datetime64[ns]")
        else:
            out[name] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    current = current_feedback(feedback)
    first = pd.Series(np.arange(len(out)), index=out["lead_id"].astype("string"))
    first = first[~first.index.duplicated()]
    pos = first.reindex(current["lead_id"]).to_numpy()
    known = ~np.isnan(pos)
    unknown = int((~known).sum())
    current, pos = current[known].reset_index(drop=True), pos[known].astype(np.int64)
    dates = current["date"].astype("datetime64[ns]").to_numpy()
    before = np.zeros(len(current), bool)
    if "created_at" in out:
        created = out["created_at"].astype("datetime64[ns]").to_numpy()[pos]
        has = ~np.isnat(created) & ~np.isnat(dates)
        before = has & (dates.astype("datetime64[D]") < created.astype("datetime64[D]"))
        dates = np.where(has & (dates < created), created, dates)
    use = ~before & ~np.isnat(dates)
    outcome = current["outcome"].to_numpy(dtype=object)
    totals = {"added": 0, "overridden": 0, "conflicting": 0, "unchanged": 0}
    for kinds, target, opposite in (
        (("meeting_held",), "meeting_at", None),
        (("won",), "won_at", "lost_at"),
        (("lost", "disqualified"), "lost_at", "won_at"),
    ):
        rows = use & np.isin(outcome, kinds)
        for key, value in _set_outcome(out, pos[rows], dates[rows], target, opposite).items():
            totals[key] += value
    explore = 0
    if "explore" in current:
        explore = int(current["explore"].astype("boolean").fillna(False).to_numpy(bool)[use].sum())
    counts = FeedbackCounts(
        not_labels=int(normalise_outcome(feedback["outcome"]).isin(NOTE_OUTCOMES).sum()),
        applied=int(use.sum()),
        explore=explore,
        unknown=unknown,
        before_created=int(before.sum()),
        **totals,
    )
    return out, counts
