"""The scores workbook for sales (report.xlsx): lead list with feedback columns, and "About"."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.io import atomic_path
from leadscore.data.schema import FEEDBACK_COLUMNS, FEEDBACK_OUTCOMES, SHEET_SCORES
from leadscore.reporting.safe_text import safe_frame, safe_text
from leadscore.reporting.summary import (
    GRADE_COLOURS,
    GRADE_TEXT_COLOURS,
    READING_GUIDE,
    SHEET_ABOUT,
    ReportContext,
    RunSummary,
    report_table,
    sort_scores,
    summary_items,
)

EXCEL_MAX_ROWS = 1_048_575  # data rows below the header
HEADER_FILL = "1F4E78"
OUTCOME_HEADER, DATE_HEADER = FEEDBACK_COLUMNS
NUMBER_FORMATS = {"int": "0", "percent": "0.0%", "money": "#,##0", "points": "+0.0;-0.0;0.0"}
WIDTHS = {"text": 18, "int": 8, "grade": 8, "percent": 12, "money": 15, "points": 14, "bool": 9}


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
    items = summary_items(scores, context, summary, listed=len(table))
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
        errorTitle=OUTCOME_HEADER,
        error="Choose one of: " + ", ".join(FEEDBACK_OUTCOMES),
        promptTitle=OUTCOME_HEADER,
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
        errorTitle=DATE_HEADER,
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
