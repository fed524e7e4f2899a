"""What both report files share: the layout of the lead list, the run's summary and its context.

The workbook is also the feedback form: sheet "Scores" has one row per lead, headed "Lead", and
the empty columns "Sales feedback" (a drop-down of `FEEDBACK_OUTCOMES`) and "Feedback date".
Feedback ingestion reads these names back, so they live in `leadscore.data.schema`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.data.schema import EXPLORE_HEADER, FEEDBACK_OUTCOMES, LEAD_ID_HEADER

SHEET_ABOUT = "About"
REASONS_FOR_HEADER = "Top reasons for"
REASONS_AGAINST_HEADER = "Top reasons against"
DEFAULT_TOP_N = 200
DEFAULT_TITLE = "Lead scores"
DEFAULT_THRESHOLDS = {"A": 75.0, "B": 50.0, "C": 25.0}
GRADE_COLOURS = {"A": "C6EFCE", "B": "E2EFDA", "C": "FFEB9C", "D": "FFC7CE"}
GRADE_TEXT_COLOURS = {"A": "006100", "B": "375623", "C": "9C5700", "D": "9C0006"}

# (scores column, header, kind): kind picks the number format and width.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lead_id", LEAD_ID_HEADER, "text"),
    ("score", "Score", "int"),
    ("grade", "Grade", "grade"),
    ("p_meeting", "P(meeting)", "percent"),
    ("p_won", "P(won)", "percent"),
    ("expected_value", "Expected value", "money"),
    ("fit_score", "Fit (pts)", "points"),
    ("engagement_score", "Engagement (pts)", "points"),
    ("trend", "Trend", "text"),
    ("explore", EXPLORE_HEADER, "bool"),
)
DROP_WHEN_BLANK = ("expected_value", "trend")  # optional columns left out when all empty

READING_GUIDE = (
    "Score (0-100) ranks the lead against the open leads the model was trained on: a score of "
    "80 means a higher chance of the headline outcome than 80% of them. P(meeting) and P(won) "
    "are the calibrated probabilities themselves ('30%' means 3 in 10 such leads).",
    "Each reason is a fact about the lead with its effect in percentage points (pts): how much "
    "it moves this lead's probability away from the base rate of an average lead. The base "
    "rate plus all effects gives the lead's probability.",
    "Top reasons for raise the probability, top reasons against lower it; the strongest come "
    "first. Effects are shared fairly between features (SHAP values) and add up; they are not "
    "the result of changing one fact alone.",
    "Fit sums the effects of who the lead is (attributes); engagement sums what the lead has "
    "done (activity and recency), both in pts. The lead's age counts in neither.",
    "Explore marks a small random share of leads included to keep learning; work them as usual.",
    f"Sales feedback: pick an outcome from the drop-down ({', '.join(FEEDBACK_OUTCOMES)}) "
    "and put the date in Feedback date. Keep the sheet and header names as they are.",
)


def sort_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Highest score first; ties keep their input order."""
    if "score" not in scores:
        return scores.reset_index(drop=True)
    return scores.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def reason_columns(scores: pd.DataFrame, sign: str) -> list[str]:
    """``reason_pos_1, reason_pos_2, ...`` (or ``neg``) present in ``scores``, in order."""
    found = [c for c in scores.columns if re.fullmatch(rf"reason_{sign}_\d+", str(c))]
    return sorted(found, key=lambda c: int(str(c).rsplit("_", 1)[1]))


def joined_reasons(scores: pd.DataFrame, sign: str, sep: str = "\n") -> pd.Series:
    """One cell per lead: its non-empty reasons of one sign, one per line."""
    cols = reason_columns(scores, sign)
    out = pd.Series("", index=scores.index, dtype=object)
    for c in cols:
        text = scores[c].astype(object).where(scores[c].notna(), "").astype(str)
        out = np.where(out == "", text, np.where(text == "", out, out + sep + text))
        out = pd.Series(out, index=scores.index, dtype=object)
    return out


def is_blank(series: pd.Series) -> bool:
    """True when every value is missing or empty text."""
    values = series.astype(object)
    return bool((values.isna() | values.astype(str).str.strip().eq("")).all())


def report_table(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The scores as shown to sales: readable headers, joined reasons; and each column's kind."""
    data: dict[str, pd.Series] = {}
    kinds: list[str] = []
    for col, header, kind in COLUMNS:
        if col in scores and not (col in DROP_WHEN_BLANK and is_blank(scores[col])):
            data[header] = scores[col]
            kinds.append(kind)
    for sign, header in (("pos", REASONS_FOR_HEADER), ("neg", REASONS_AGAINST_HEADER)):
        data[header] = joined_reasons(scores, sign)
        kinds.append("reasons")
    return pd.DataFrame(data, index=scores.index), kinds


def grade_counts(scores: pd.DataFrame) -> dict[str, int]:
    """Leads per grade A-D."""
    if "grade" not in scores:
        return {}
    counts = scores["grade"].astype(str).value_counts()
    return {g: int(counts.get(g, 0)) for g in "ABCD"}


@dataclass(frozen=True)
class RunSummary:
    """What the whole scoring run counted, for the report's summary and chart.

    The lead list may hold only the top rows of a large run; these describe every lead scored.
    ``score_hist[s]`` is the number of leads with score ``s`` (0-100); ``warnings`` say how the
    run fell short (e.g. no activity data) and are shown prominently in both reports.
    """

    n_scored: int
    grade_counts: Mapping[str, int]
    score_hist: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, scores: pd.DataFrame, n_scored: int | None = None) -> RunSummary:
        """The summary of ``scores`` themselves, when they are the whole run."""
        hist: tuple[int, ...] = ()
        if "score" in scores:
            values = pd.to_numeric(scores["score"], errors="coerce").dropna()
            values = values.round().clip(0, 100).astype(np.int64).to_numpy()
            hist = tuple(int(c) for c in np.bincount(values, minlength=101))
        n = len(scores) if n_scored is None else int(n_scored)
        return cls(n_scored=n, grade_counts=grade_counts(scores), score_hist=hist)


@dataclass(frozen=True)
class ReportContext:
    """What the reports say about the run besides its leads: model, date, counts and settings.

    Left at None, ``model_name``, ``model_version``, ``run_id`` and ``as_of`` are taken from the
    scores' columns of the same names, ``explore_share`` from the mean of their ``explore``
    column, and ``n_scored`` is the number of rows of the scores (a `RunSummary` given to the
    writers counts the whole run instead, when the scores are only its top rows).
    ``grade_thresholds`` are merged over `DEFAULT_THRESHOLDS`; ``top_n`` leads are listed in
    the HTML page.
    """

    model_name: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    as_of: str | None = None  # YYYY-MM-DD
    n_scored: int | None = None
    n_skipped: int = 0
    grade_thresholds: Mapping[str, float] = field(default_factory=dict)
    headline_target: str | None = None
    base_rate: float | None = None
    explore_share: float | None = None
    top_n: int = DEFAULT_TOP_N
    title: str = DEFAULT_TITLE

    @property
    def thresholds(self) -> dict[str, float]:
        """The A-C grade thresholds: the defaults, updated by ``grade_thresholds``."""
        return {**DEFAULT_THRESHOLDS, **dict(self.grade_thresholds or {})}


def context_value(
    context: ReportContext, scores: pd.DataFrame, key: str, default: object = ""
) -> object:
    """``context.<key>``, else the first value of column ``key`` in ``scores``, else ``default``."""
    value = getattr(context, key)
    if value is not None:
        return value
    if key in scores and len(scores) and pd.notna(scores[key].iloc[0]):
        return scores[key].iloc[0]
    return default


def explore_share(scores: pd.DataFrame, context: ReportContext) -> float | None:
    """Share of leads listed for exploration (context, else the ``explore`` column), if known."""
    if context.explore_share is not None:
        return float(context.explore_share)
    if "explore" in scores and len(scores):
        return float(scores["explore"].fillna(False).astype(bool).mean())
    return None


def summary_items(
    scores: pd.DataFrame,
    context: ReportContext,
    summary: RunSummary | None = None,
    listed: int | None = None,
) -> list[tuple[str, str]]:
    """(label, text) pairs describing the run: model, as-of date, counts, thresholds.

    Counts come from ``summary`` (default: the rows of ``scores``); ``listed`` leads (default:
    all rows of ``scores``) are in the lead list, which says so when that is not every lead.
    """
    thresholds = context.thresholds
    run = summary or RunSummary.of(scores, context.n_scored)
    listed = len(scores) if listed is None else listed
    items = [
        ("Model", str(context_value(context, scores, "model_name"))),
        ("Model version", str(context_value(context, scores, "model_version"))),
        ("Run id", str(context_value(context, scores, "run_id"))),
        ("As of", date_text(context_value(context, scores, "as_of"))),
        ("Leads scored", f"{run.n_scored:,}"),
        ("Leads skipped", f"{int(context.n_skipped):,}"),
    ]
    if listed < run.n_scored:
        items.append(("Leads listed", f"top {listed:,} of {run.n_scored:,} (highest scores)"))
    if context.headline_target:
        items.append(("Score is the probability of", str(context.headline_target)))
    if context.base_rate is not None:
        items.append(("Base rate", f"{100 * float(context.base_rate):.1f}%"))
    share = explore_share(scores, context)
    if share is not None:
        items.append(("Explore share", f"{100 * share:.1f}%"))
    a, b, c = (float(thresholds[k]) for k in "ABC")
    items.append(("Grades", f"A: score >= {a:g}; B: {b:g}-{a:g}; C: {c:g}-{b:g}; D: below {c:g}"))
    if run.grade_counts:
        counts = ", ".join(f"{g}: {k:,}" for g, k in run.grade_counts.items())
        items.append(("Leads per grade", counts))
    return items


def date_text(value: object) -> str:
    """A date value as YYYY-MM-DD (missing: empty; not a date: as written)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return str(value)
