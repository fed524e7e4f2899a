"""The scores workbook for sales (report.xlsx): the lead list with its feedback columns, the
owners' summary ("Owners", with an owner column) and "About"."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.io import atomic_path
from leadscore.data.schema import (
    COMMENT_HEADER,
    FEEDBACK_COLUMNS,
    FEEDBACK_OUTCOMES,
    LEAD_ID_HEADER,
    OWNER_HEADER,
    SHEET_SCORES,
)
from leadscore.reporting.safe_text import safe_frame, safe_text
from leadscore.reporting.summary import (
    ACCOUNT_COLUMNS,
    ACCOUNTS_LISTED,
    GRADE_COLOURS,
    GRADE_TEXT_COLOURS,
    READING_GUIDE,
    REASONS_AGAINST_HEADER,
    REASONS_FOR_HEADER,
    SHEET_ABOUT,
    SHEET_ACCOUNTS,
    SHEET_OWNERS,
    ReportContext,
    RunSummary,
    account_table,
    report_table,
    sort_scores,
    summary_items,
    top_leads_by_owner,
)

EXCEL_MAX_ROWS = 1_048_575  # data rows below the header
HEADER_FILL = "1F4E78"
OUTCOME_HEADER, DATE_HEADER = FEEDBACK_COLUMNS
FEEDBACK_HEADERS = (OUTCOME_HEADER, DATE_HEADER, COMMENT_HEADER)
FEEDBACK_KINDS = ("feedback", "date", "comment")
NUMBER_FORMATS = {"int": "0", "percent": "0.0%", "money": "#,##0", "points": "+0.0;-0.0;0.0"}
WIDTHS = {
    "text": 18,
    "int": 8,
    "grade": 8,
    "percent": 12,
    "money": 15,
    "points": 14,
    "bool": 9,
    "note": 40,
    "reasons": 55,
    "feedback": 16,
    "date": 14,
    "comment": 30,
}
IDENTITY_WIDTHS = {LEAD_ID_HEADER: 12, OWNER_HEADER: 16}  # display columns: DISPLAY_WIDTH
DISPLAY_WIDTH = 24
WRAPPED_KINDS = ("reasons", "note")  # cells that wrap; the row grows to show all their lines
LINE_HEIGHT = 15.0  # points per line of 11-pt Calibri, Excel's default row height
MAX_ROW_LINES = 12


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
    context: ReportContext,
    max_rows: int = EXCEL_MAX_ROWS,
    summary: RunSummary | None = None,
    accounts: pd.DataFrame | None = None,
    accounts_note: str | None = None,
) -> Path:
    """Write the scores workbook for sales, atomically (temporary file, then rename).

    Sheet "Scores": leads by score (highest first) in reading order: identity (lead id, the
    display columns, owner), grade, score, probabilities and trend, the reasons for and against
    (one per line, wrapped, rows as tall as their lines), then the feedback columns "Sales
    feedback" (drop-down of `FEEDBACK_OUTCOMES`), "Feedback date" (date validation) and
    "Comment", then the details. The header and the identity columns are frozen; autofilter;
    colour-coded grades; percentages as percentages; printed landscape, one page wide, the
    header repeated on every page (print area: identity to feedback). Sheet "Owners" (with an
    owner column): per owner, leads by grade, expected value and top leads. Sheet "About": run
    details, counts, grade thresholds, how to read. Text goes through `safe_text`. Only the top
    ``max_rows`` leads are written (at most Excel's 1,048,575); "About" says so when rows were
    left out. openpyxl writes about 7,000 rows/s, so a million rows take over two minutes: pass
    a smaller ``max_rows`` where that matters. ``summary`` holds the whole run's counts when
    ``scores`` are only its top rows; its warnings head "About", which is then the sheet the
    workbook opens on, and sit in red above the header of "Scores" (feedback ingestion finds
    the header below them). ``accounts`` (account scoring: `accounts.csv`'s rows, highest
    score first) become the sheet "Accounts", headed by ``accounts_note`` when given.
    """
    from openpyxl import Workbook

    limit = max(0, min(int(max_rows), EXCEL_MAX_ROWS))
    ordered = sort_scores(scores)
    listed = ordered.iloc[:limit]
    table, kinds = report_table(listed, context)
    table = safe_frame(table)
    run = summary or RunSummary.of(scores, context.n_scored, context.owner_column)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(SHEET_SCORES)
    _write_scores_sheet(ws, table, kinds, run.warnings)
    if context.owner_column:
        _write_owners_sheet(wb.create_sheet(SHEET_OWNERS), run, listed, context)
    if accounts is not None:
        _write_accounts_sheet(wb.create_sheet(SHEET_ACCOUNTS), accounts, context, accounts_note)
    about = wb.create_sheet(SHEET_ABOUT)
    items = summary_items(scores, context, run, listed=len(table))
    _write_about_sheet(about, items, run.warnings)
    if run.warnings:
        wb.active = about
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return Path(path)


def with_feedback_columns(headers: list[str], kinds: list[str]) -> tuple[list[str], list[str]]:
    """Headers and kinds with the feedback columns right after the reasons (else at the end)."""
    at = max((i + 1 for i, k in enumerate(kinds) if k == "reasons"), default=len(kinds))
    return (
        [*headers[:at], *FEEDBACK_HEADERS, *headers[at:]],
        [*kinds[:at], *FEEDBACK_KINDS, *kinds[at:]],
    )


def column_widths(headers: list[str], kinds: list[str]) -> list[float]:
    """Each column's width in characters."""
    return [
        IDENTITY_WIDTHS.get(h, DISPLAY_WIDTH) if k == "identity" else WIDTHS.get(k, 18)
        for h, k in zip(headers, kinds, strict=True)
    ]


def wrapped_lines(values: list, width: float) -> np.ndarray:
    """Lines each text takes in a wrapped cell ``width`` characters wide (at least 1)."""
    per_line = max(1, int(width) - 2)
    out = np.ones(len(values), np.int64)
    for i, text in enumerate(values):
        if isinstance(text, str) and text:
            out[i] = sum(max(1, math.ceil(len(part) / per_line)) for part in text.splitlines())
    return out


def row_lines(columns: list[list], kinds: list[str], widths: list[float]) -> np.ndarray:
    """Lines each data row needs: the most any of its wrapped cells takes."""
    n = len(columns[0]) if columns else 0
    lines = np.ones(n, np.int64)
    for values, kind, width in zip(columns, kinds, widths, strict=True):
        if kind in WRAPPED_KINDS:
            lines = np.maximum(lines, wrapped_lines(values, width))
    return np.minimum(lines, MAX_ROW_LINES)


def _feedback_validations(ws, letters: dict[str, str], first: int, last_row: int) -> None:
    """The outcome drop-down and the date check on the feedback columns."""
    from openpyxl.worksheet.datavalidation import DataValidation

    outcomes = DataValidation(
        type="list",
        formula1='"' + ",".join(FEEDBACK_OUTCOMES) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=OUTCOME_HEADER,
        error="Choose one of: " + ", ".join(FEEDBACK_OUTCOMES),
        promptTitle=OUTCOME_HEADER,
        prompt="Outcome for this lead (no_response, score_wrong: stored, not used as outcomes)",
        showInputMessage=True,
    )
    outcomes.add(f"{letters['feedback']}{first}:{letters['feedback']}{last_row}")
    dates = DataValidation(
        type="date",
        operator="between",
        formula1="DATE(2000,1,1)",
        formula2="DATE(2100,12,31)",
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=DATE_HEADER,
        error="Enter a date, e.g. 2025-03-31",
    )
    dates.add(f"{letters['date']}{first}:{letters['date']}{last_row}")
    ws.data_validations.append(outcomes)
    ws.data_validations.append(dates)


def _print_setup(ws, header_at: int, last_letter: str, last_row: int) -> None:
    """Landscape, one page wide, the header row on every page, identity to feedback printed."""
    from openpyxl.worksheet.properties import PageSetupProperties

    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_title_rows = f"{header_at}:{header_at}"
    ws.print_area = f"A1:{last_letter}{last_row}"
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.print_options.gridLines = True


def _write_scores_sheet(
    ws, table: pd.DataFrame, kinds: list[str], warnings: tuple[str, ...] = ()
) -> None:
    """Fill a write-only worksheet with the warnings (one line each, red), the report table with
    the feedback columns after the reasons, its layout and its print setup."""
    from openpyxl.cell import Cell, WriteOnlyCell
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    headers, all_kinds = with_feedback_columns(list(table.columns), kinds)
    n_rows = len(table)
    top = len(warnings)  # rows above the header
    header_at, first = top + 1, top + 2
    last_row = max(n_rows + header_at, first)
    letters = [get_column_letter(i + 1) for i in range(len(headers))]
    widths = column_widths(headers, all_kinds)
    for letter, width in zip(letters, widths, strict=True):
        ws.column_dimensions[letter].width = width
    by_kind = {k: letters[all_kinds.index(k)] for k in FEEDBACK_KINDS}
    # a column style (set before any row is written): applies to the dates sales type in
    ws.column_dimensions[by_kind["date"]].number_format = "yyyy-mm-dd"
    n_identity = all_kinds.count("identity")
    ws.freeze_panes = f"{get_column_letter(n_identity + 1)}{first}"
    ws.auto_filter.ref = f"A{header_at}:{letters[-1]}{last_row}"
    _print_setup(ws, header_at, by_kind["comment"], last_row)
    _feedback_validations(ws, by_kind, first, last_row)

    if "grade" in all_kinds:
        g = letters[all_kinds.index("grade")]
        for grade, colour in GRADE_COLOURS.items():
            rule = CellIsRule(
                operator="equal",
                formula=[f'"{grade}"'],
                fill=PatternFill("solid", start_color=colour, end_color=colour),
                font=Font(color=GRADE_TEXT_COLOURS[grade], bold=True),
            )
            ws.conditional_formatting.add(f"{g}{first}:{g}{last_row}", rule)

    red = Font(bold=True, color=GRADE_TEXT_COLOURS["D"])
    for text in warnings:
        cell = WriteOnlyCell(ws, value=_about_text(f"Warning: {text}"))
        cell.font = red
        ws.append([cell])

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
    data = [_excel_column(table[c], kind) for c, kind in zip(table.columns, kinds, strict=True)]
    feedback_at = all_kinds.index(FEEDBACK_KINDS[0])
    empty = [[None] * n_rows for _ in FEEDBACK_KINDS]
    columns = [*data[:feedback_at], *empty, *data[feedback_at:]]
    lines = row_lines(columns, all_kinds, widths)
    for i in range(n_rows):
        row = []
        for kind, values in zip(all_kinds, columns, strict=True):
            value = values[i]
            if kind == "grade":
                style = grade_styles.get(value) if isinstance(value, str) else None
            else:
                style = kind_styles.get(kind)
            row.append(value if style is None else Cell(ws, 1, 1, value, style_array=style))
        sheet_row = first + i
        if lines[i] > 1:  # write-only: a row's height is read when the row is written
            ws.row_dimensions[sheet_row].height = LINE_HEIGHT * int(lines[i])
        ws.append(row)
        if lines[i] > 1:
            del ws.row_dimensions[sheet_row]


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
        cell.alignment = Alignment(vertical="top")
        kinds[kind] = cell._style
    cell = WriteOnlyCell(ws)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    kinds["reasons"] = kinds["note"] = cell._style
    cell = WriteOnlyCell(ws)
    cell.alignment = Alignment(vertical="top")
    kinds["identity"] = kinds["text"] = kinds["bool"] = cell._style
    for grade, colour in GRADE_COLOURS.items():
        cell = WriteOnlyCell(ws)
        cell.fill = PatternFill("solid", start_color=colour, end_color=colour)
        cell.font = Font(color=GRADE_TEXT_COLOURS[grade], bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="top")
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


def _write_owners_sheet(ws, run: RunSummary, listed: pd.DataFrame, context: ReportContext) -> None:
    """Per owner: leads by grade and expected value (the whole run), top leads (the listed)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    owners = run.owners or RunSummary.of(listed, None, context.owner_column).owners
    tops = top_leads_by_owner(listed, context)
    headers = [OWNER_HEADER, "Leads", "A", "B", "C", "D", context.value_header, "Top leads"]
    for letter, width in zip("ABCDEFGH", (24, 9, 8, 8, 8, 8, 18, 70), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "B3"
    ws.auto_filter.ref = f"A2:H{max(len(owners) + 2, 3)}"
    note = WriteOnlyCell(
        ws,
        value="Leads per grade and expected value count every lead scored; top leads are each "
        "owner's highest scores on sheet Scores.",
    )
    note.font = Font(italic=True, color="555555")
    ws.append([note])
    header_row = []
    for name in headers:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
        header_row.append(cell)
    ws.append(header_row)
    top_align = Alignment(wrap_text=True, vertical="top")
    for i, owner in enumerate(owners):
        leads = tops.get(owner.owner, [])
        name, top_cell = (
            WriteOnlyCell(ws, value=_excel_value(_about_text(v)))
            for v in (owner.owner, "\n".join(leads))
        )
        name.alignment = top_cell.alignment = top_align
        value = WriteOnlyCell(ws, value=owner.expected_value)
        value.number_format = NUMBER_FORMATS["money"]
        counts = [owner.grade_counts.get(g, 0) for g in "ABCD"]
        if len(leads) > 1:
            ws.row_dimensions[3 + i].height = LINE_HEIGHT * len(leads)
        ws.append([name, owner.n, *counts, value, top_cell])


def _write_accounts_sheet(
    ws, accounts: pd.DataFrame, context: ReportContext, note: str | None
) -> None:
    """The accounts, highest score first: who, grade (coloured), score, probabilities, open
    leads, the top lead, buying-group coverage and the reasons (one per line)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    display = tuple(c for c in accounts.columns if c in context.account_display)
    table = safe_frame(account_table(accounts.iloc[:ACCOUNTS_LISTED], display))
    kinds = {h: k for _, h, k in ACCOUNT_COLUMNS}
    for i, name in enumerate(table.columns):
        wide = name in (REASONS_FOR_HEADER, REASONS_AGAINST_HEADER)
        width = 60 if wide else 28 if kinds.get(name) == "note" else 14
        ws.column_dimensions[get_column_letter(i + 1)].width = width
    ws.freeze_panes = "B3" if note else "B2"
    if note:
        cell = WriteOnlyCell(ws, value=_about_text(f"Note: {note}"))
        cell.font = Font(bold=True, color=GRADE_TEXT_COLOURS["D"])
        ws.append([cell])
    header = []
    for name in table.columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
        header.append(cell)
    ws.append(header)
    wrap = Alignment(wrap_text=True, vertical="top")
    for values in table.itertuples(index=False):
        row = []
        for name, value in zip(table.columns, values, strict=True):
            cell = WriteOnlyCell(ws, value=_excel_value(value))
            kind = kinds.get(name)
            if kind == "percent":
                cell.number_format = "0.0%"
            elif kind == "grade" and value in GRADE_COLOURS:
                fill = GRADE_COLOURS[value]
                cell.fill = PatternFill("solid", start_color=fill, end_color=fill)
                cell.font = Font(bold=True, color=GRADE_TEXT_COLOURS[value])
            if name in (REASONS_FOR_HEADER, REASONS_AGAINST_HEADER) or kind == "note":
                cell.alignment = wrap
            row.append(cell)
        ws.append(row)


def _write_about_sheet(ws, items: list[tuple[str, str]], warnings: tuple[str, ...]) -> None:
    """Warnings (bold red), key/value run details, then how to read the report."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 100
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    title = WriteOnlyCell(ws, value="About this report")
    title.font = Font(bold=True, size=14)
    ws.append([title])
    red = Font(bold=True, color=GRADE_TEXT_COLOURS["D"])
    for text in warnings:
        key, value = (WriteOnlyCell(ws, value=v) for v in ("Warning", _about_text(text)))
        key.font = value.font = red
        value.alignment = wrap
        ws.append([key, value])
    for label, text in items:
        key = WriteOnlyCell(ws, value=label)
        key.font = bold
        value = WriteOnlyCell(ws, value=_excel_value(_about_text(text)))
        value.alignment = wrap
        ws.append([key, value])
    # the grade table (share, conversion rate and lift per grade) goes here, before the guide
    ws.append([])
    heading = WriteOnlyCell(ws, value="How to read it")
    heading.font = bold
    ws.append([heading])
    for line in READING_GUIDE:
        cell = WriteOnlyCell(ws, value=_excel_value(_about_text(line)))
        cell.alignment = wrap
        ws.append([None, cell])


def _about_text(text: str) -> str:
    """About-sheet text made formula-safe like the data."""
    return str(safe_text(pd.Series([text], dtype=object)).iloc[0])
