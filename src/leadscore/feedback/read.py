"""Reading feedback files: the filled-in report (xlsx) or a CSV, as text rows with row numbers.

Input files are the filled-in `report.xlsx` (sheet "Scores"; the rows whose "Sales feedback" cell
is filled; its "Comment" is the row's note) or CSV files with columns `lead_id, outcome, date`
and optional `rep, note, explore` (a CSV saved from the report, with its "Lead", "Sales
feedback", "Feedback date", "Comment" headers, works too). Rows are numbered as a spreadsheet
does: the header is row 1 of a CSV; in the report the real sheet row. A file that cannot be used
comes back as None with the reasons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.io import read_csv_text
from leadscore.data.parse import nonblank_text
from leadscore.data.schema import (
    COMMENT_HEADER,
    EXPLORE_HEADER,
    FEEDBACK_COLUMNS,
    LEAD_ID_HEADER,
    SHEET_SCORES,
)
from leadscore.errors import Problem
from leadscore.reporting.safe_text import restore_text

OUTCOME_HEADER, DATE_HEADER = FEEDBACK_COLUMNS
HEADER_SCAN_ROWS = 20

FIELDS: tuple[str, ...] = ("lead_id", "outcome", "date", "rep", "note", "explore")
REQUIRED_FIELDS: tuple[str, ...] = ("lead_id", "outcome", "date")
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "lead_id": ("lead_id", LEAD_ID_HEADER),
    "outcome": ("outcome", OUTCOME_HEADER),
    "date": ("date", DATE_HEADER),
    "rep": ("rep",),
    "note": ("note", COMMENT_HEADER),
    "explore": ("explore", EXPLORE_HEADER),
}
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")


@dataclass(frozen=True)
class FeedbackFile:
    """One input file's rows as text (`FIELDS`), with sheet row numbers and its headers."""

    rows: pd.DataFrame
    headers: dict[str, str]
    report_layout: bool


def _cell_text(value: object, date_cell: bool = False) -> str | None:
    """A spreadsheet cell as text: ids without '.0', dates as ISO, serial dates in date cells."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        if date_cell and 0 < value < 2_958_466:
            from openpyxl.utils.datetime import from_excel

            return from_excel(value).isoformat()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    text = str(value).strip()
    return text or None


def _field_of(header: object) -> str | None:
    """The field a header names (case and spaces ignored), or None."""
    if header is None:
        return None
    key = str(header).strip().casefold()
    for name, aliases in HEADER_ALIASES.items():
        if key in (a.casefold() for a in aliases):
            return name
    return None


def _headers(cells: list[object]) -> dict[str, tuple[int, str]]:
    """Field -> (position, header as written), first occurrence of each."""
    found: dict[str, tuple[int, str]] = {}
    for pos, cell in enumerate(cells):
        name = _field_of(cell)
        if name is not None and name not in found:
            found[name] = (pos, str(cell).strip())
    return found


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(XLSX_SUFFIXES):
        return "xlsx"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _rows_frame(frame: pd.DataFrame, row_numbers: list[int] | np.ndarray) -> pd.DataFrame:
    """`FIELDS` as text (absent ones all missing) and `source_row`, on a fresh index."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in FIELDS:
        values = frame[name].to_numpy(dtype=object) if name in frame else None
        out[name] = pd.Series(values, index=out.index, dtype="string")
    out["source_row"] = np.asarray(row_numbers, dtype=np.int64)
    return out


def read_report_xlsx(path: Path) -> tuple[FeedbackFile | None, list[Problem]]:
    """Rows of the report's "Scores" sheet with its sheet row numbers (None if unreadable)."""
    from openpyxl import load_workbook

    file = str(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        return None, [Problem(file, f"cannot read as an Excel workbook: {exc}")]
    try:
        if SHEET_SCORES not in book.sheetnames:
            return None, [Problem(file, f"no sheet named '{SHEET_SCORES}'")]
        rows = book[SHEET_SCORES].iter_rows(values_only=True)
        header_row, found = 0, {}
        for number, cells in enumerate(rows, start=1):
            found = _headers(list(cells))
            if all(f in found for f in ("lead_id", "outcome")):
                header_row = number
                break
            if number >= HEADER_SCAN_ROWS:
                break
        if not header_row:
            return None, [
                Problem(
                    file,
                    f"sheet '{SHEET_SCORES}' has no header row with "
                    f"'{LEAD_ID_HEADER}' and '{OUTCOME_HEADER}'",
                )
            ]
        missing = [f for f in REQUIRED_FIELDS if f not in found]
        if missing:
            return None, [Problem(file, "missing column", HEADER_ALIASES[f][-1]) for f in missing]
        records, numbers = [], []
        for number, cells in enumerate(rows, start=header_row + 1):
            cells = list(cells)
            record = [
                _cell_text(cells[pos] if pos < len(cells) else None, date_cell=(name == "date"))
                for name, (pos, _) in found.items()
            ]
            if any(v is not None for v in record):
                records.append(record)
                numbers.append(number)
    finally:
        book.close()
    headers = {name: header for name, (_, header) in found.items()}
    frame = pd.DataFrame(records, columns=list(found), dtype=object)
    rows = _rows_frame(frame, numbers)
    rows["lead_id"] = restore_text(rows["lead_id"])  # undo the report's formula guard
    return FeedbackFile(rows, headers, True), []


def read_feedback_csv(path: Path) -> tuple[FeedbackFile | None, list[Problem]]:
    """Rows of a feedback CSV with spreadsheet row numbers (None if unreadable)."""
    file = str(path)
    try:
        raw = read_csv_text(path, skip_blank_lines=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return None, [Problem(file, "the file is empty")]
    except (ValueError, OSError) as exc:
        return None, [Problem(file, f"cannot read as CSV: {exc}")]
    found = _headers(list(raw.columns))
    missing = [f for f in REQUIRED_FIELDS if f not in found]
    if missing:
        return None, [Problem(file, "missing column", HEADER_ALIASES[f][0]) for f in missing]
    text = pd.DataFrame({name: nonblank_text(raw.iloc[:, pos]) for name, (pos, _) in found.items()})
    filled = text.notna().any(axis=1).to_numpy(bool)
    headers = {name: header for name, (_, header) in found.items()}
    report_layout = headers["outcome"].casefold() == OUTCOME_HEADER.casefold()
    rows = _rows_frame(text[filled], np.flatnonzero(filled) + 2)
    return FeedbackFile(rows, headers, report_layout), []


def read_feedback_file(path: Path) -> tuple[FeedbackFile | None, list[Problem]]:
    """Read an xlsx report or a CSV; None and the reasons when the file cannot be used."""
    path = Path(path)
    if not path.is_file():
        return None, [Problem(str(path), "file not found")]
    kind = _file_kind(path)
    if kind is None:
        return None, [Problem(str(path), "unknown file type (expected .xlsx or .csv)")]
    return read_report_xlsx(path) if kind == "xlsx" else read_feedback_csv(path)
