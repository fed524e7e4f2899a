"""What both report files share: the layout of the lead list, the run's summary and its context.

The lead list reads left to right as sales works it: who the lead is (the lead id, the
`columns.display` columns, the owner), how good it is (grade, score, probabilities, trend), why
(the top reasons for and against), then, in the workbook, the feedback columns, and last the
details (expected value, fit, engagement, trend reason, flags).

The workbook is also the feedback form: sheet "Scores" has one row per lead, headed "Lead", and
the empty columns "Sales feedback" (a drop-down of `FEEDBACK_OUTCOMES`), "Feedback date" and
"Comment". Feedback ingestion reads these names back, so they live in `leadscore.data.schema`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.data.schema import (
    COMMENT_HEADER,
    EXPLORE_HEADER,
    FEEDBACK_OUTCOMES,
    LABEL_OUTCOMES,
    LEAD_ID_HEADER,
    OWNER_HEADER,
)

SHEET_ABOUT = "About"
SHEET_ACCOUNTS = "Accounts"
ACCOUNTS_LISTED = 5_000  # accounts in the workbook's sheet (highest score first)
ACCOUNTS_IN_HTML = 50
# (accounts column, header, kind) of the accounts' sheet and section, after the display columns
ACCOUNT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("grade", "Grade", "grade"),
    ("score", "Score", "int"),
    ("p_meeting", "P(meeting)", "percent"),
    ("p_won", "P(won)", "percent"),
    ("n_open_leads", "Open leads", "int"),
    ("top_lead_id", "Top lead", "text"),
    ("roles_engaged", "Roles engaged", "note"),
    ("roles_missing", "Typical roles missing", "note"),
)
SHEET_OWNERS = "Owners"
REASONS_FOR_HEADER = "Top reasons for"
REASONS_AGAINST_HEADER = "Top reasons against"
DEFAULT_TOP_N = 200
DEFAULT_TITLE = "Lead scores"
DEFAULT_THRESHOLDS = {"A": 75.0, "B": 50.0, "C": 25.0}
GRADE_COLOURS = {"A": "C6EFCE", "B": "E2EFDA", "C": "FFEB9C", "D": "FFC7CE"}
GRADE_TEXT_COLOURS = {"A": "006100", "B": "375623", "C": "9C5700", "D": "9C0006"}
NO_OWNER = "(no owner)"
TOP_LEADS_PER_OWNER = 5  # listed per owner in the owners' summary

# (scores column, header, kind): kind picks the number format and width. Identity columns
# (the lead id, display and owner columns) come first, then these groups in this order.
RANK_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("grade", "Grade", "grade"),
    ("account_grade", "Account grade", "grade"),  # the lead's account's (account scoring)
    ("score", "Score", "int"),
    ("p_meeting", "P(meeting)", "percent"),
    ("p_won", "P(won)", "percent"),
    ("trend", "Trend", "text"),
)
DETAIL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("expected_value", "Expected value", "money"),
    ("fit_score", "Fit (pts)", "points"),
    ("engagement_score", "Engagement (pts)", "points"),
    ("trend_reason", "Trend reason", "note"),
    ("dormant", "Dormant", "bool"),
    ("explore", EXPLORE_HEADER, "bool"),
)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lead_id", LEAD_ID_HEADER, "text"),
    *RANK_COLUMNS,
    *DETAIL_COLUMNS,
)
DROP_WHEN_BLANK = ("expected_value", "trend", "trend_reason")  # left out when all empty
KNOWN_HEADERS = {h.casefold() for _, h, _ in COLUMNS} | {
    h.casefold() for h in (REASONS_FOR_HEADER, REASONS_AGAINST_HEADER, OWNER_HEADER)
}

READING_GUIDE = (
    "Score (0-100) ranks the lead against the open leads the model was trained on: a score of "
    "80 means a higher chance of the headline outcome than 80% of them. P(meeting) and P(won) "
    "are the calibrated probabilities themselves ('30%' means 3 in 10 such leads).",
    "Each reason is a fact about the lead with its effect in percentage points (pts): how much "
    "it moves this lead's probability away from the model's starting point (its average "
    "prediction, the same for every lead). The starting point plus all effects gives the "
    "lead's probability.",
    "Top reasons for raise the probability, top reasons against lower it; the strongest come "
    "first. Effects are shared fairly between features (SHAP values) and add up; they are not "
    "the result of changing one fact alone.",
    "Fit sums the effects of who the lead is (attributes); engagement sums what the lead has "
    "done (its activity by type), both in pts. The lead's timeline (its age and how long since "
    "its last activity) counts in neither.",
    "Trend compares the probability with the last run: up or down when it moved clearly (by "
    "both amounts under Trend), else steady; new: not scored last time; model_changed: another "
    "model scored it then and that week could not be rescored, so the two are not compared. "
    "Trend reason names what moved it most.",
    "Dormant: the lead is older than any lead the model learned from; it is scored as if it "
    "were that old (the model's horizon), not extrapolated.",
    "Explore marks a small random share of leads included to keep learning; work them as usual.",
    f"Sales feedback: pick an outcome from the drop-down ({', '.join(FEEDBACK_OUTCOMES)}), put "
    f"the date in Feedback date and anything worth knowing in {COMMENT_HEADER}. "
    f"{', '.join(LABEL_OUTCOMES)} teach the next model; no_response (could not reach the lead) "
    "and score_wrong (the score looks wrong to you) are stored and counted for review, never "
    "used as outcomes. Keep the sheet and header names as they are.",
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


def grade_counts(scores: pd.DataFrame) -> dict[str, int]:
    """Leads per grade A-D."""
    if "grade" not in scores:
        return {}
    counts = scores["grade"].astype(str).value_counts()
    return {g: int(counts.get(g, 0)) for g in "ABCD"}


def nice_header(column: str) -> str:
    """A column name as a header: "company_name" -> "Company name" (as written when taken)."""
    text = re.sub(r"[_\s]+", " ", str(column)).strip()
    header = text[:1].upper() + text[1:] if text else str(column)
    return str(column) if header.casefold() in KNOWN_HEADERS else header


def owner_labels(values: pd.Series) -> pd.Series:
    """Owner names as text, a missing owner as `NO_OWNER`."""
    text = values.astype("string").str.strip()
    return text.mask(text.isna() | text.eq(""), NO_OWNER).astype(object)


@dataclass(frozen=True)
class OwnerSummary:
    """One owner's leads in the whole run: per grade, and their summed expected value."""

    owner: str
    grade_counts: Mapping[str, int]
    expected_value: float | None = None  # None: no lead of theirs has one

    @property
    def n(self) -> int:
        return int(sum(self.grade_counts.values()))


def owner_summaries(
    counts: Mapping[str, Mapping[str, int]], values: Mapping[str, float] | None = None
) -> tuple[OwnerSummary, ...]:
    """`OwnerSummary` per owner from counts per grade (and summed values), by name, no owner
    last."""
    values = values or {}
    names = sorted(counts, key=lambda o: (o == NO_OWNER, o.casefold(), o))
    return tuple(
        OwnerSummary(o, {g: int(counts[o].get(g, 0)) for g in "ABCD"}, values.get(o)) for o in names
    )


def owners_of(scores: pd.DataFrame, owner_column: str | None) -> tuple[OwnerSummary, ...]:
    """Per-owner counts of ``scores`` themselves (empty without an owner column)."""
    if not owner_column or owner_column not in scores or "grade" not in scores:
        return ()
    owners = owner_labels(scores[owner_column])
    counts = pd.crosstab(owners, scores["grade"].astype(str))
    table = {o: {str(g): int(n) for g, n in row.items()} for o, row in counts.iterrows()}
    values = {}
    if "expected_value" in scores:
        ev = pd.to_numeric(scores["expected_value"], errors="coerce")
        known = ev.notna()
        values = {str(o): float(v) for o, v in ev[known].groupby(owners[known]).sum().items()}
    return owner_summaries(table, values)


@dataclass(frozen=True)
class RunSummary:
    """What the whole scoring run counted, for the report's summary and chart.

    The lead list may hold only the top rows of a large run; these describe every lead scored.
    ``score_hist[s]`` is the number of leads with score ``s`` (0-100); ``warnings`` say how the
    run fell short (e.g. no activity data) and are shown prominently in both reports;
    ``owners`` count each owner's leads per grade (with an owner column).
    """

    n_scored: int
    grade_counts: Mapping[str, int]
    score_hist: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    n_dormant: int | None = None  # leads older than the model's horizon (None: not counted)
    owners: tuple[OwnerSummary, ...] = ()

    @classmethod
    def of(
        cls, scores: pd.DataFrame, n_scored: int | None = None, owner_column: str | None = None
    ) -> RunSummary:
        """The summary of ``scores`` themselves, when they are the whole run."""
        hist: tuple[int, ...] = ()
        if "score" in scores:
            values = pd.to_numeric(scores["score"], errors="coerce").dropna()
            values = values.round().clip(0, 100).astype(np.int64).to_numpy()
            hist = tuple(int(c) for c in np.bincount(values, minlength=101))
        n = len(scores) if n_scored is None else int(n_scored)
        return cls(
            n_scored=n,
            grade_counts=grade_counts(scores),
            score_hist=hist,
            owners=owners_of(scores, owner_column),
        )


@dataclass(frozen=True)
class ReportContext:
    """What the reports say about the run besides its leads: model, date, counts and settings.

    Left at None, ``model_name``, ``model_version``, ``run_id`` and ``as_of`` are taken from the
    scores' columns of the same names, ``explore_share`` from the mean of their ``explore``
    column, and ``n_scored`` is the number of rows of the scores (a `RunSummary` given to the
    writers counts the whole run instead, when the scores are only its top rows).
    ``grade_thresholds`` are merged over `DEFAULT_THRESHOLDS`; ``top_n`` leads (per owner, with
    an owner column) are listed in the HTML page. ``display_columns`` and ``owner_column`` name
    the scores' columns that say who the lead is and whose it is (`columns.display`,
    `columns.owner`); ``currency`` labels expected value, and ``mean_won_amount`` (the average
    won deal in training) is what it falls back on for a lead without its own deal amount.
    """

    model_name: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    as_of: str | None = None  # YYYY-MM-DD
    n_scored: int | None = None
    n_skipped: int = 0
    grade_thresholds: Mapping[str, float] = field(default_factory=dict)
    headline_target: str | None = None
    # the explainer's expected value as a probability (the model's average prediction, where
    # every lead's reasons start from); not a base rate, which is an observed conversion rate
    starting_point: float | None = None
    explore_share: float | None = None
    top_n: int = DEFAULT_TOP_N
    title: str = DEFAULT_TITLE
    horizon_days: float | None = None  # the oldest lead age the model was trained on
    trend_min_points: float | None = None  # how far P moves for up/down (with the share)
    trend_min_relative: float | None = None
    display_columns: tuple[str, ...] = ()
    owner_column: str | None = None
    currency: str | None = None
    mean_won_amount: float | None = None
    account_display: tuple[str, ...] = ()  # the accounts' display columns (account scoring)
    # what each grade meant in validation, best first: (grade, "P >= 1.2%: converted at ...")
    grade_lines: tuple[tuple[str, str], ...] = ()

    @property
    def thresholds(self) -> dict[str, float]:
        """The A-C grade thresholds: the defaults, updated by ``grade_thresholds``."""
        return {**DEFAULT_THRESHOLDS, **dict(self.grade_thresholds or {})}

    @property
    def value_header(self) -> str:
        """ "Expected value (EUR)", or without a currency "Expected value"."""
        return f"Expected value ({self.currency})" if self.currency else "Expected value"

    def identity(self, scores: pd.DataFrame) -> list[tuple[str, str]]:
        """(scores column, header) of the identity columns present: lead id, display, owner."""
        cols = [("lead_id", LEAD_ID_HEADER)] if "lead_id" in scores else []
        cols += [(c, nice_header(c)) for c in self.display_columns if c in scores]
        if self.owner_column and self.owner_column in scores:
            cols.append((self.owner_column, OWNER_HEADER))
        return cols


def report_table(
    scores: pd.DataFrame, context: ReportContext | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The scores as shown to sales, in reading order: identity, rank, reasons, details.

    Readable headers, reasons joined one per line; and each column's kind (``identity`` for the
    lead id, display and owner columns; ``reasons``; a number format's kind otherwise).
    """
    context = context or ReportContext()
    data: dict[str, pd.Series] = {}
    kinds: list[str] = []
    for col, header in context.identity(scores):
        data[header] = scores[col]
        kinds.append("identity")

    def add(columns: tuple[tuple[str, str, str], ...]) -> None:
        for col, header, kind in columns:
            if col in scores and not (col in DROP_WHEN_BLANK and is_blank(scores[col])):
                data[context.value_header if col == "expected_value" else header] = scores[col]
                kinds.append(kind)

    add(RANK_COLUMNS)
    for sign, header in (("pos", REASONS_FOR_HEADER), ("neg", REASONS_AGAINST_HEADER)):
        data[header] = joined_reasons(scores, sign)
        kinds.append("reasons")
    add(DETAIL_COLUMNS)
    return pd.DataFrame(data, index=scores.index), kinds


def lead_label(row: pd.Series, context: ReportContext) -> str:
    """A lead as sales names it: its first display value with the lead id, else the id."""
    lead = "" if pd.isna(row.get("lead_id")) else str(row.get("lead_id"))
    for col in context.display_columns:
        value = row.get(col)
        if value is not None and not pd.isna(value) and str(value).strip():
            return f"{str(value).strip()} ({lead})" if lead else str(value).strip()
    return lead


def top_leads_by_owner(
    scores: pd.DataFrame, context: ReportContext, per_owner: int = TOP_LEADS_PER_OWNER
) -> dict[str, list[str]]:
    """Each owner's highest-scored leads among ``scores``, as "Name (id): A, score 91"."""
    if not context.owner_column or context.owner_column not in scores:
        return {}
    ordered = sort_scores(scores)
    owners = owner_labels(ordered[context.owner_column])
    out: dict[str, list[str]] = {}
    for i in ordered.groupby(owners, sort=False).head(per_owner).index:
        row = ordered.loc[i]
        grade = "" if pd.isna(row.get("grade")) else f"{row.get('grade')}, "
        score = "" if pd.isna(row.get("score")) else f"score {int(row.get('score'))}"
        out.setdefault(owners[i], []).append(f"{lead_label(row, context)}: {grade}{score}")
    return out


def grade_counts_text(counts: Mapping[str, int]) -> str:
    """ "A: 20, B: 30, C: 50, D: 900"."""
    return ", ".join(f"{g}: {k:,}" for g, k in counts.items())


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


def money_text(value: float, currency: str | None) -> str:
    """ "EUR 12,340" (or "12,340" without a currency)."""
    return f"{currency} {value:,.0f}" if currency else f"{value:,.0f}"


def expected_value_note(scores: pd.DataFrame, context: ReportContext) -> str | None:
    """How expected value was computed, or why it is empty; None without P(won)."""
    if "expected_value" not in scores or "p_won" not in scores:
        return None
    if is_blank(scores["expected_value"]):
        return (
            "not shown: no deal amounts are known (map the deal amount column as "
            "columns.amount in the config and retrain)"
        )
    currency = f" in {context.currency}" if context.currency else ""
    if context.mean_won_amount is None:
        return (
            f"P(won) x the lead's own deal amount{currency}; empty for leads without one (the "
            "training data had no won deal amounts)"
        )
    average = money_text(float(context.mean_won_amount), context.currency)
    return (
        f"P(won) x the lead's own deal amount where known, else x the average won deal in "
        f"training ({average}), the same for every such lead"
    )


def summary_items(
    scores: pd.DataFrame,
    context: ReportContext,
    summary: RunSummary | None = None,
    listed: int | None = None,
    listed_how: str = "highest scores",
) -> list[tuple[str, str]]:
    """(label, text) pairs describing the run: model, as-of date, counts, thresholds.

    Counts come from ``summary`` (default: the rows of ``scores``); ``listed`` leads (default:
    all rows of ``scores``), chosen by ``listed_how``, are in the lead list, which says so when
    that is not every lead.
    """
    thresholds = context.thresholds
    run = summary or RunSummary.of(scores, context.n_scored, context.owner_column)
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
        items.append(("Leads listed", f"top {listed:,} of {run.n_scored:,} ({listed_how})"))
    if context.headline_target:
        items.append(("Score is the probability of", str(context.headline_target)))
    if context.starting_point is not None:
        items.append(
            ("Model's starting point (average prediction)", f"{100 * context.starting_point:.1f}%")
        )
    share = explore_share(scores, context)
    if share is not None:
        items.append(("Explore share", f"{100 * share:.1f}%"))
    if context.grade_lines:
        items += [(f"Grade {grade}", text) for grade, text in context.grade_lines]
    else:
        a, b, c = (float(thresholds[k]) for k in "ABC")
        items.append(
            ("Grades", f"A: score >= {a:g}; B: {b:g}-{a:g}; C: {c:g}-{b:g}; D: below {c:g}")
        )
    if run.grade_counts:
        items.append(("Leads per grade", grade_counts_text(run.grade_counts)))
    note = expected_value_note(scores, context)
    if note is not None:
        items.append((context.value_header, note))
    if context.trend_min_points is not None and context.trend_min_relative is not None:
        rule = (
            f"up/down when the probability moved by at least {context.trend_min_points:g} pts "
            f"and {100 * context.trend_min_relative:g}% of its last value, else steady"
        )
        items.append(("Trend", rule))
    if run.n_dormant is not None:
        items.append(("Dormant leads", dormant_text(run.n_dormant, context.horizon_days)))
    return items


def dormant_text(n_dormant: int, horizon_days: float | None) -> str:
    """ "1,234 older than the model's 182-day horizon, scored as 182 days old"."""
    if horizon_days is None:
        return f"{n_dormant:,}"
    h = f"{horizon_days:g}"
    return f"{n_dormant:,} older than the model's {h}-day horizon, scored as {h} days old"


def date_text(value: object) -> str:
    """A date value as YYYY-MM-DD (missing: empty; not a date: as written)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return str(value)


def account_table(accounts: pd.DataFrame, display: tuple[str, ...]) -> pd.DataFrame:
    """The scored accounts as shown to sales: account id, display columns, grade, score,
    probabilities, open leads, the top lead, buying-group coverage and the reasons joined."""
    data: dict[str, pd.Series] = {"Account": accounts["account_id"]}
    for col in display:
        if col in accounts:
            data[nice_header(col)] = accounts[col]
    for col, header, _ in ACCOUNT_COLUMNS:
        if col in accounts:
            data[header] = accounts[col]
    for sign, header in (("pos", REASONS_FOR_HEADER), ("neg", REASONS_AGAINST_HEADER)):
        data[header] = joined_reasons(accounts, sign)
    return pd.DataFrame(data, index=accounts.index)
