"""Files sales reads: the scores workbook (xlsx), a one-page HTML summary, and CSV-safe text.

Spreadsheet safety: every *text* cell we write to CSV or XLSX goes through `safe_text`, which
puts an apostrophe in front of text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return (OWASP's CSV-injection advice), so no spreadsheet treats a lead's data as a formula.
Numbers stay numbers. `restore_text` undoes it exactly (for reading files back).

The workbook is also the feedback form: sheet "Scores" has one row per lead, headed "Lead", and
the empty columns "Sales feedback" (a drop-down of `FEEDBACK_OUTCOMES`) and "Feedback date".
Feedback ingestion reads these names back, so they are constants here and must stay stable.

``meta`` keys used by both writers (all optional): ``model_name``, ``model_version``,
``run_id``, ``as_of`` (else taken from the ``scores`` columns of the same names),
``n_scored`` (default: rows of ``scores``; a `RunSummary` passed to the writers counts the
whole run instead, when ``scores`` are only its top rows), ``n_skipped``, ``grade_thresholds``
(``{"A": 75, "B": 50, "C": 25}``), ``headline_target``, ``base_rate``, ``explore_share``
(else the mean of ``scores["explore"]``), ``top_n`` (HTML, default 200), ``title``.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.io import atomic_path, write_text

SHEET_SCORES = "Scores"
SHEET_ABOUT = "About"
LEAD_ID_HEADER = "Lead"
FEEDBACK_COLUMNS = ("Sales feedback", "Feedback date")
FEEDBACK_OUTCOMES = ("meeting_held", "disqualified", "won", "lost")
REASONS_FOR_HEADER = "Top reasons for"
REASONS_AGAINST_HEADER = "Top reasons against"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
EXCEL_MAX_ROWS = 1_048_575  # data rows below the header
DEFAULT_TOP_N = 200
DEFAULT_THRESHOLDS = {"A": 75.0, "B": 50.0, "C": 25.0}
GRADE_COLOURS = {"A": "C6EFCE", "B": "E2EFDA", "C": "FFEB9C", "D": "FFC7CE"}
GRADE_TEXT_COLOURS = {"A": "006100", "B": "375623", "C": "9C5700", "D": "9C0006"}
HEADER_FILL = "1F4E78"

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
    ("explore", "Explore", "bool"),
)
DROP_WHEN_BLANK = ("expected_value", "trend")  # optional columns left out when all empty
NUMBER_FORMATS = {"int": "0", "percent": "0.0%", "money": "#,##0", "points": "+0.0;-0.0;0.0"}
WIDTHS = {"text": 18, "int": 8, "grade": 8, "percent": 12, "money": 15, "points": 14, "bool": 9}

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
    "Sales feedback: pick an outcome from the drop-down (meeting_held, disqualified, won, lost) "
    "and put the date in Feedback date. Keep the sheet and header names as they are.",
)


def _is_text_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _strings(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as object values and a mask of the values that are ``str``."""
    text = series.astype(object)
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        return text, series.notna().astype(bool)
    return text, text.map(type).eq(str)


def _starts_risky(text: pd.Series) -> pd.Series:
    """Text starting with a formula character, or with ``'`` and then one."""
    first, second = text.str[:1], text.str[1:2]
    return first.isin(FORMULA_PREFIXES) | (first.eq(ESCAPE) & second.isin(FORMULA_PREFIXES))


def safe_text(series: pd.Series) -> pd.Series:
    """Neutralise spreadsheet formulas in a text column (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``;
    so does text that already starts with ``'`` followed by one of those, which makes
    `restore_text` an exact inverse. Non-text values (numbers, booleans, dates, missing) and
    numeric columns are returned unchanged; categorical columns come back as object.
    """
    if not _is_text_dtype(series):
        return series
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    text, is_str = _strings(series)
    risky = is_str & _starts_risky(text.where(is_str))
    if not risky.any():
        return series
    out = series.copy()
    out[risky] = ESCAPE + text[risky].astype(str)
    return out


def restore_text(series: pd.Series) -> pd.Series:
    """Undo `safe_text`: drop the ``'`` it added (for reading our own files back)."""
    if not _is_text_dtype(series):
        return series
    text, is_str = _strings(series)
    text = text.where(is_str)
    rest = text.str[1:]
    added = is_str & text.str[:1].eq(ESCAPE) & _starts_risky(rest)
    if not added.any():
        return series
    out = series.copy()
    out[added] = rest[added]
    return out


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with `safe_text` applied to every text column (numbers untouched)."""
    out = frame.copy()
    for col in frame.columns:
        if _is_text_dtype(frame[col]):
            out[col] = safe_text(frame[col])
    return out


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


def meta_value(meta: Mapping, scores: pd.DataFrame, key: str, default: object = "") -> object:
    """``meta[key]``, else the first value of column ``key`` in ``scores``, else ``default``."""
    if meta.get(key) is not None:
        return meta[key]
    if key in scores and len(scores) and pd.notna(scores[key].iloc[0]):
        return scores[key].iloc[0]
    return default


def explore_share(scores: pd.DataFrame, meta: Mapping) -> float | None:
    """Share of leads listed for exploration (meta, else the ``explore`` column), if known."""
    if meta.get("explore_share") is not None:
        return float(meta["explore_share"])
    if "explore" in scores and len(scores):
        return float(scores["explore"].fillna(False).astype(bool).mean())
    return None


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


def summary_items(
    scores: pd.DataFrame,
    meta: Mapping,
    summary: RunSummary | None = None,
    listed: int | None = None,
) -> list[tuple[str, str]]:
    """(label, text) pairs describing the run: model, as-of date, counts, thresholds.

    Counts come from ``summary`` (default: the rows of ``scores``); ``listed`` leads (default:
    all rows of ``scores``) are in the lead list, which says so when that is not every lead.
    """
    thresholds = {**DEFAULT_THRESHOLDS, **dict(meta.get("grade_thresholds") or {})}
    run = summary or RunSummary.of(scores, meta.get("n_scored"))
    listed = len(scores) if listed is None else listed
    items = [
        ("Model", str(meta_value(meta, scores, "model_name"))),
        ("Model version", str(meta_value(meta, scores, "model_version"))),
        ("Run id", str(meta_value(meta, scores, "run_id"))),
        ("As of", _date_text(meta_value(meta, scores, "as_of"))),
        ("Leads scored", f"{run.n_scored:,}"),
        ("Leads skipped", f"{int(meta.get('n_skipped', 0)):,}"),
    ]
    if listed < run.n_scored:
        items.append(("Leads listed", f"top {listed:,} of {run.n_scored:,} (highest scores)"))
    if meta.get("headline_target"):
        items.append(("Score is the probability of", str(meta["headline_target"])))
    if meta.get("base_rate") is not None:
        items.append(("Base rate", f"{100 * float(meta['base_rate']):.1f}%"))
    share = explore_share(scores, meta)
    if share is not None:
        items.append(("Explore share", f"{100 * share:.1f}%"))
    a, b, c = (float(thresholds[k]) for k in "ABC")
    items.append(("Grades", f"A: score >= {a:g}; B: {b:g}-{a:g}; C: {c:g}-{b:g}; D: below {c:g}"))
    if run.grade_counts:
        counts = ", ".join(f"{g}: {k:,}" for g, k in run.grade_counts.items())
        items.append(("Leads per grade", counts))
    return items


def _date_text(value: object) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return str(value)


def _excel_value(value: object) -> object:
    """A cell value openpyxl can store as a constant (never a formula)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None)
    if isinstance(value, datetime | date | int):
        return value
    return _xml_safe(str(value))


def _xml_safe(text: str) -> str:
    """Text without the control characters XML (and so xlsx) cannot hold, at most 32,767 chars.

    Removing a character can expose a formula prefix ("\x01=1+1"), so the result is made
    formula-safe again.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cleaned = ILLEGAL_CHARACTERS_RE.sub("", text)[:32_767]
    if cleaned == text:
        return text
    return str(safe_text(pd.Series([cleaned], dtype=object)).iloc[0])


def write_report_xlsx(
    scores: pd.DataFrame,
    path: str | Path,
    meta: Mapping,
    max_rows: int = EXCEL_MAX_ROWS,
    summary: RunSummary | None = None,
) -> Path:
    """Write the scores workbook for sales, atomically (temporary file, then rename).

    Sheet "Scores": leads by score (highest first), frozen header row, autofilter, colour-coded
    grades, percentages as percentages, reasons one per line in wrapped cells, and the feedback
    columns: "Sales feedback" (drop-down of `FEEDBACK_OUTCOMES`) and "Feedback date" (date
    format, date validation). Sheet "About": run details, counts, grade thresholds, how to read.
    Text goes through `safe_text`. Only the top ``max_rows`` leads are written (at most Excel's
    1,048,575); "About" says so when rows were left out. openpyxl writes about 7,000 rows/s, so
    a million rows take over two minutes: pass a smaller ``max_rows`` where that matters.
    ``summary`` holds the whole run's counts when ``scores`` are only its top rows; its warnings
    head "About", which is then the sheet the workbook opens on.
    """
    from openpyxl import Workbook

    limit = max(0, min(int(max_rows), EXCEL_MAX_ROWS))
    ordered = sort_scores(scores)
    table, kinds = report_table(ordered.iloc[:limit])
    table = safe_frame(table)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(SHEET_SCORES)
    _write_scores_sheet(ws, table, kinds)
    about = wb.create_sheet(SHEET_ABOUT)
    warnings = summary.warnings if summary is not None else ()
    items = summary_items(scores, meta, summary, listed=len(table))
    _write_about_sheet(about, items, warnings)
    if warnings:
        wb.active = about
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return Path(path)


def _write_scores_sheet(ws, table: pd.DataFrame, kinds: list[str]) -> None:
    """Fill a write-only worksheet with the report table and the feedback columns."""
    from openpyxl.cell import Cell, WriteOnlyCell
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    headers = [*table.columns, *FEEDBACK_COLUMNS]
    all_kinds = [*kinds, "feedback", "date"]
    n_rows = len(table)
    last_row = max(n_rows + 1, 2)
    letters = [get_column_letter(i + 1) for i in range(len(headers))]
    widths = {**WIDTHS, "reasons": 60, "feedback": 16, "date": 14}
    for letter, kind in zip(letters, all_kinds, strict=True):
        ws.column_dimensions[letter].width = widths[kind]
    # a column style (set before any row is written): applies to the dates sales type in
    ws.column_dimensions[letters[-1]].number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{letters[-1]}{last_row}"

    fb_letter, date_letter = letters[-2], letters[-1]
    outcomes = DataValidation(
        type="list",
        formula1='"' + ",".join(FEEDBACK_OUTCOMES) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Sales feedback",
        error="Choose one of: " + ", ".join(FEEDBACK_OUTCOMES),
        promptTitle="Sales feedback",
        prompt="Outcome for this lead",
        showInputMessage=True,
    )
    outcomes.add(f"{fb_letter}2:{fb_letter}{last_row}")
    dates = DataValidation(
        type="date",
        operator="between",
        formula1="DATE(2000,1,1)",
        formula2="DATE(2100,12,31)",
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Feedback date",
        error="Enter a date, e.g. 2025-03-31",
    )
    dates.add(f"{date_letter}2:{date_letter}{last_row}")
    ws.data_validations.append(outcomes)
    ws.data_validations.append(dates)

    if "grade" in all_kinds:
        g = letters[all_kinds.index("grade")]
        for grade, colour in GRADE_COLOURS.items():
            rule = CellIsRule(
                operator="equal",
                formula=[f'"{grade}"'],
                fill=PatternFill("solid", start_color=colour, end_color=colour),
                font=Font(color=GRADE_TEXT_COLOURS[grade], bold=True),
            )
            ws.conditional_formatting.add(f"{g}2:{g}{last_row}", rule)

    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    header_row = []
    for name in headers:
        cell = WriteOnlyCell(ws, value=name)
        cell.font, cell.fill = header_font, header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        header_row.append(cell)
    ws.append(header_row)

    kind_styles, grade_styles = _cell_styles(ws)
    columns = [_excel_column(table[c], kind) for c, kind in zip(table.columns, kinds, strict=True)]
    for i in range(n_rows):
        row = []
        for kind, values in zip(kinds, columns, strict=True):
            value = values[i]
            if kind == "grade":
                style = grade_styles.get(value) if isinstance(value, str) else None
            else:
                style = kind_styles.get(kind)
            row.append(value if style is None else Cell(ws, 1, 1, value, style_array=style))
        ws.append(row)


def _cell_styles(ws) -> tuple[dict, dict]:
    """Style arrays per column kind and per grade letter, registered once with the workbook.

    Copying a registered style array into each cell is much faster than setting fonts, fills
    and formats cell by cell, which matters for a million rows.
    """
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    kinds, grades = {}, {}
    for kind, fmt in NUMBER_FORMATS.items():
        cell = WriteOnlyCell(ws)
        cell.number_format = fmt
        kinds[kind] = cell._style
    cell = WriteOnlyCell(ws)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    kinds["reasons"] = cell._style
    for grade, colour in GRADE_COLOURS.items():
        cell = WriteOnlyCell(ws)
        cell.fill = PatternFill("solid", start_color=colour, end_color=colour)
        cell.font = Font(color=GRADE_TEXT_COLOURS[grade], bold=True)
        cell.alignment = Alignment(horizontal="center")
        grades[grade] = cell._style
    return kinds, grades


def _excel_column(series: pd.Series, kind: str) -> list:
    """A column's values as constants openpyxl stores as is (numbers stay numbers)."""
    if kind in NUMBER_FORMATS:
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        values = values.where(np.isfinite(values))
        if kind == "int":
            return [None if math.isnan(v) else round(v) for v in values.tolist()]
        return [None if math.isnan(v) else v for v in values.tolist()]
    return [_excel_value(v) for v in series.tolist()]


def _write_about_sheet(ws, items: list[tuple[str, str]], warnings: tuple[str, ...]) -> None:
    """Warnings (bold red), key/value run details, then how to read the report."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 100
    bold = Font(bold=True)
    title = WriteOnlyCell(ws, value="About this report")
    title.font = Font(bold=True, size=14)
    ws.append([title])
    red = Font(bold=True, color=GRADE_TEXT_COLOURS["D"])
    for text in warnings:
        key, value = (WriteOnlyCell(ws, value=v) for v in ("Warning", _about_text(text)))
        key.font = value.font = red
        value.alignment = Alignment(wrap_text=True, vertical="top")
        ws.append([key, value])
    for label, text in items:
        key = WriteOnlyCell(ws, value=label)
        key.font = bold
        ws.append([key, _excel_value(_about_text(text))])
    ws.append([])
    heading = WriteOnlyCell(ws, value="How to read it")
    heading.font = bold
    ws.append([heading])
    wrap = Alignment(wrap_text=True, vertical="top")
    for line in READING_GUIDE:
        cell = WriteOnlyCell(ws, value=_excel_value(_about_text(line)))
        cell.alignment = wrap
        ws.append([None, cell])


def _about_text(text: str) -> str:
    """About-sheet text made formula-safe like the data."""
    return str(safe_text(pd.Series([text], dtype=object)).iloc[0])


# --------------------------------------------------------------------------------------- HTML


def score_chart_png(score_hist: tuple[int, ...], thresholds: Mapping[str, float]) -> bytes:
    """Histogram of scores (0-100) with the grade thresholds, as PNG bytes (matplotlib Agg).

    ``score_hist[s]`` is the number of leads with score ``s`` (`RunSummary.score_hist`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(
        np.arange(len(score_hist)),
        bins=np.arange(0, 105, 5),
        weights=np.asarray(score_hist, float),
        color="#4472C4",
        edgecolor="white",
    )
    for grade in "ABC":
        x = float(thresholds[grade])
        ax.axvline(x, color="#666666", linestyle="--", linewidth=1)
        ax.text(
            x + 1,
            1,
            f"{grade} from {x:g}",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="#444444",
        )
    ax.set_xlim(0, 100)
    ax.set_xlabel("Score")
    ax.set_ylabel("Leads")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:24px;
color:#222;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#1F4E78;color:#fff;position:sticky;top:0}
td.num{text-align:right;white-space:nowrap}
.summary td{border:none;padding:2px 12px 2px 0}.summary td:first-child{font-weight:600}
ul{margin:0;padding-left:16px}li{margin:0 0 2px}
.for li{color:#1e6b2e}.against li{color:#9c0006}
.grade{font-weight:700;text-align:center;border-radius:3px}
.gA{background:#C6EFCE;color:#006100}.gB{background:#E2EFDA;color:#375623}
.gC{background:#FFEB9C;color:#9C5700}.gD{background:#FFC7CE;color:#9C0006}
.guide li{color:#333;margin-bottom:4px}
.tag{font-size:11px;background:#eee;color:#555;border-radius:3px;padding:1px 4px}
.warning{background:#FFC7CE;color:#9C0006;font-weight:600;padding:8px 12px;border-radius:3px}
"""


def _esc(value: object) -> str:
    """HTML-escaped text of a value (missing: empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _percent(value: object) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{100 * number:.1f}%"


def _number(value: object, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else format(number, fmt)


def _truthy(value: object) -> bool:
    """A flag's value, with missing values as False."""
    return bool(value) if not pd.isna(value) else False


def _reason_list(row: pd.Series, cols: list[str], css: str) -> str:
    items = [f"<li>{_esc(row[c])}</li>" for c in cols if isinstance(row[c], str) and row[c]]
    return f'<ul class="{css}">{"".join(items)}</ul>' if items else ""


def leads_table_html(top: pd.DataFrame) -> str:
    """The top leads as an HTML table (every data value escaped)."""
    pos, neg = reason_columns(top, "pos"), reason_columns(top, "neg")
    cols: list[tuple[str, str]] = [("lead_id", LEAD_ID_HEADER), ("score", "Score")]
    cols += [
        (c, h)
        for c, h, _ in COLUMNS[2:]
        if c in top and c != "explore" and not (c in DROP_WHEN_BLANK and is_blank(top[c]))
    ]
    head = "".join(f"<th>{_esc(h)}</th>" for _, h in cols)
    head += f"<th>{REASONS_FOR_HEADER}</th><th>{REASONS_AGAINST_HEADER}</th>"
    body = []
    for _, row in top.iterrows():
        cells = []
        for col, _ in cols:
            value = row[col]
            if col == "grade":
                grade = _esc(value)
                css = f"grade g{grade}" if grade in GRADE_COLOURS else "grade"
                cells.append(f'<td class="{css}">{grade}</td>')
            elif col in ("p_meeting", "p_won"):
                cells.append(f'<td class="num">{_percent(value)}</td>')
            elif col == "expected_value":
                cells.append(f'<td class="num">{_number(value, ",.0f")}</td>')
            elif col in ("fit_score", "engagement_score"):
                cells.append(f'<td class="num">{_number(value, "+.1f")}</td>')
            elif col == "score":
                cells.append(f'<td class="num">{_number(value, ".0f")}</td>')
            elif col == "lead_id" and "explore" in top and _truthy(row["explore"]):
                cells.append(f'<td>{_esc(value)} <span class="tag">explore</span></td>')
            else:
                cells.append(f"<td>{_esc(value)}</td>")
        cells.append(f"<td>{_reason_list(row, pos, 'for')}</td>")
        cells.append(f"<td>{_reason_list(row, neg, 'against')}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report_html(
    scores: pd.DataFrame, path: str | Path, meta: Mapping, summary: RunSummary | None = None
) -> Path:
    """Write one self-contained HTML page: run summary, score chart, top leads with reasons.

    No network resources: inline CSS, the chart as a base64 PNG ``data:`` URI, no scripts or
    fonts. Every data value is HTML-escaped. ``meta["top_n"]`` leads are listed (default 200).
    The summary, chart and warnings come from ``summary`` (the whole run; default: ``scores``).
    """
    ordered = sort_scores(scores)
    run = summary or RunSummary.of(scores, meta.get("n_scored"))
    top_n = int(meta.get("top_n") or DEFAULT_TOP_N)
    thresholds = {**DEFAULT_THRESHOLDS, **dict(meta.get("grade_thresholds") or {})}
    title = str(meta.get("title") or "Lead scores")
    warnings = "".join(f'<p class="warning">Warning: {_esc(w)}</p>' for w in run.warnings)
    items = summary_items(scores, meta, run)
    summary_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in items)
    chart = ""
    if sum(run.score_hist):
        png = base64.b64encode(score_chart_png(run.score_hist, thresholds)).decode("ascii")
        chart = (
            "<h2>Score distribution</h2>"
            f'<img alt="Histogram of lead scores" src="data:image/png;base64,{png}">'
        )
    shown = min(top_n, len(ordered))
    guide = "".join(f"<li>{_esc(line)}</li>" for line in READING_GUIDE[:5])
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">{_esc(meta_value(meta, scores, "model_name"))} '
        f"{_esc(meta_value(meta, scores, 'model_version'))}, "
        f"as of {_esc(_date_text(meta_value(meta, scores, 'as_of')))}</p>"
        f"{warnings}"
        f'<table class="summary">{summary_rows}</table>'
        f"{chart}"
        f"<h2>Top {shown:,} leads of {run.n_scored:,}</h2>"
        f"{leads_table_html(ordered.iloc[:shown])}"
        f'<h2>How to read it</h2><ul class="guide">{guide}</ul>'
        "</body></html>\n"
    )
    return write_text(path, page)
