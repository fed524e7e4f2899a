"""Checking feedback rows: each row's lead, outcome and date, then clashes and repeats in a file.

Outcomes are `meeting_held`, `disqualified`, `won` and `lost` (labels), and `no_response` and
`score_wrong` (notes for review: stored and counted, never labels); case, surrounding spaces and
spaces or hyphens inside the word ("Meeting held") do not matter. Dates are best written as
YYYY-MM-DD; a date is *in the future* when its calendar day is after today's (UTC). Every
problem names its file and row; rows with a problem are rejected, the valid rows of the same file
are kept. Within one file, rows for the same lead and *stage* (`meeting`: meeting_held; `close`:
won, lost, disqualified) that disagree (won and lost, two different dates) are all rejected; an
exact repeat of an earlier row is rejected as a duplicate. Notes have no stage: several for one
lead are fine (calls on different days), only exact repeats are rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.parse import (
    FALSE_WORDS,
    TRUE_WORDS,
    nonblank_text,
    parse_timestamps,
    problem_value,
)
from leadscore.data.schema import FEEDBACK_OUTCOMES, NOTE_OUTCOMES
from leadscore.errors import Problem
from leadscore.feedback.read import FeedbackFile

# each outcome (the report's drop-down, `FEEDBACK_OUTCOMES`) belongs to one stage
STAGE_OF: dict[str, str] = {
    "meeting_held": "meeting",
    "won": "close",
    "lost": "close",
    "disqualified": "close",
}
OUTCOME_WORDS = ", ".join(FEEDBACK_OUTCOMES)


def normalise_outcome(raw: pd.Series) -> pd.Series:
    """Lower case, trimmed, inner spaces and hyphens as underscores ('Meeting held')."""
    text = raw.astype("string").str.strip().str.lower()
    return text.str.replace(r"[\s\-]+", "_", regex=True)


def parse_explore(raw: pd.Series) -> pd.Series:
    """yes/no, TRUE/FALSE, 1/0 to a nullable boolean; anything else is missing."""
    text = raw.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[text.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = True
    out[text.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = False
    return out


def only_feedback_rows(data: FeedbackFile, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """In the report layout, rows without sales feedback are not feedback (noted if dated)."""
    rows = data.rows
    if not data.report_layout:
        return rows, []
    has_outcome = rows["outcome"].notna()
    notes = []
    for field, what in (("date", "a date"), ("note", "a comment")):
        if field not in data.headers:
            continue
        alone = ~has_outcome & rows[field].notna()
        if field == "note":  # a dated row is noted already
            alone &= rows["date"].isna()
        notes += [
            Problem(
                file,
                f"{what} without sales feedback; row ignored (pick an outcome to keep it)",
                data.headers[field],
                int(r),
                v,
            )
            for r, v in zip(rows.loc[alone, "source_row"], rows.loc[alone, field], strict=True)
        ]
    notes.sort(key=lambda p: p.row)
    return rows[has_outcome.to_numpy(bool)].reset_index(drop=True), notes


def validate_rows(
    rows: pd.DataFrame,
    file: str,
    headers: dict[str, str],
    lead_ids: pd.Index,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parsed rows (`FIELDS` typed, plus `stage` and `ok`) and one problem per fault found.

    Row-level checks first (lead id, outcome, date), then contradictions and repeats within the
    file among the rows that passed them.
    """
    parsed = pd.DataFrame(
        {
            "lead_id": nonblank_text(rows["lead_id"]),
            "outcome": normalise_outcome(rows["outcome"]),
            "date": parse_timestamps(rows["date"]).astype("datetime64[ns]"),
            "rep": nonblank_text(rows["rep"]),
            "note": nonblank_text(rows["note"]),
            "explore": parse_explore(rows["explore"]),
            "source_row": rows["source_row"].astype("int64"),
        }
    )
    parsed["stage"] = parsed["outcome"].map(STAGE_OF).astype("string")
    today = now.normalize()
    checks = [
        ("lead_id", parsed["lead_id"].isna(), "missing lead id"),
        (
            "lead_id",
            parsed["lead_id"].notna() & ~parsed["lead_id"].isin(lead_ids),
            "unknown lead id",
        ),
        ("outcome", parsed["outcome"].isna(), f"missing outcome (expected one of {OUTCOME_WORDS})"),
        (
            "outcome",
            parsed["outcome"].notna() & ~parsed["outcome"].isin(FEEDBACK_OUTCOMES),
            f"unknown outcome (expected one of {OUTCOME_WORDS})",
        ),
        ("date", rows["date"].isna(), "missing date"),
        ("date", rows["date"].notna() & parsed["date"].isna(), "unparseable date"),
        (
            "date",
            parsed["date"].dt.normalize() > today,
            f"date is in the future (after {today:%Y-%m-%d})",
        ),
    ]
    bad = pd.Series(False, index=parsed.index)
    faults: list[tuple[int, int, Problem]] = []
    for order, (name, mask, message) in enumerate(checks):
        mask = mask.fillna(False).to_numpy(bool)
        bad |= mask
        for i in np.flatnonzero(mask):
            problem = Problem(
                file,
                message,
                headers[name],
                int(parsed["source_row"].iat[i]),
                problem_value(rows[name].iat[i]),
            )
            faults.append((int(i), order, problem))
    clash, clash_faults = _contradictions(parsed, ~bad, file, headers)
    faults += clash_faults
    parsed["ok"] = (~bad & ~clash).to_numpy(bool)
    faults.sort(key=lambda f: (f[0], f[1]))
    return parsed, [p for _, _, p in faults]


def _contradictions(
    parsed: pd.DataFrame, ok: pd.Series, file: str, headers: dict[str, str]
) -> tuple[pd.Series, list[tuple[int, int, Problem]]]:
    """Rows that disagree with another row for the same lead and stage, and exact repeats."""
    clash = pd.Series(False, index=parsed.index)
    faults: list[tuple[int, int, Problem]] = []
    valid = parsed[ok.to_numpy(bool)]
    notes = valid[valid["outcome"].isin(NOTE_OUTCOMES).to_numpy(bool)]
    for (lead, _, _), group in notes.groupby(["lead_id", "outcome", "date"], sort=False):
        first = int(group["source_row"].iat[0])
        for i, row in zip(group.index[1:], group["source_row"].iloc[1:], strict=True):
            message = f"repeats row {first} (same lead, outcome and date); row rejected"
            faults.append((int(i), 91, Problem(file, message, headers["lead_id"], int(row), lead)))
            clash[i] = True
    for (lead, _stage), group in valid.groupby(["lead_id", "stage"], sort=False):
        if len(group) < 2:
            continue
        variants = group.drop_duplicates(["outcome", "date"])
        if len(variants) > 1:
            said = "; ".join(
                f"{o} on {d:%Y-%m-%d} in row {r}"
                for o, d, r in zip(
                    group["outcome"], group["date"], group["source_row"], strict=True
                )
            )
            message = f"conflicting feedback for lead {lead} in this file ({said}); rows rejected"
            for i, row, outcome in zip(
                group.index, group["source_row"], group["outcome"], strict=True
            ):
                problem = Problem(file, message, headers["outcome"], int(row), outcome)
                faults.append((int(i), 90, problem))
            clash[group.index] = True
            continue
        first = int(group["source_row"].iat[0])
        for i, row in zip(group.index[1:], group["source_row"].iloc[1:], strict=True):
            message = f"repeats row {first} (same lead, outcome and date); row rejected"
            faults.append((int(i), 91, Problem(file, message, headers["lead_id"], int(row), lead)))
            clash[i] = True
    return clash, faults
