"""Sales feedback: read what reps wrote back, keep every word of it, and let it correct the labels.

Input files are the filled-in `report.xlsx` (sheet "Scores"; the rows whose "Sales feedback" cell
is filled) or CSV files with columns `lead_id, outcome, date` and optional `rep, note, explore`
(a CSV saved from the report, with its "Lead", "Sales feedback", "Feedback date" headers, works
too). Outcomes are `meeting_held`, `disqualified`, `won` and `lost`; case, surrounding spaces and
spaces or hyphens inside the word ("Meeting held") do not matter. Dates are best written as
YYYY-MM-DD; a date is *in the future* when its calendar day is after today's (UTC).

Every row is checked and every problem is reported with its file and row (numbered as a
spreadsheet does: the header is row 1 of a CSV; in the report the real sheet row). Rows with a
problem are rejected; the valid rows of the same file are kept. Within one file, rows for the same
lead and *stage* (`meeting`: meeting_held; `close`: won, lost, disqualified) that disagree (won
and lost, two different dates) are all rejected; an exact repeat of an earlier row is rejected
as a duplicate.

The store (`settings.data.feedback`) is an append-only folder of Parquet parts named
`part-<ingested_at UTC, YYYYmmddTHHMMSSffffff>Z-<sha256[:12] of the source file>-<batch>.parquet`.
Parts are never rewritten or deleted; each is written to a temporary file and renamed, at most
`BATCH_ROWS` rows at a time, so an interrupted ingest leaves a readable store that is complete up
to its last finished part. A row is identified by its source file's digest and row number:
ingesting a file again adds only the rows not stored yet.

For training, a later entry (later `ingested_at`, then later `source_row`) for the same lead and
stage supersedes an earlier one (`current_feedback`); `apply_feedback` writes the current entries
onto the canonical leads' `meeting_at` / `won_at` / `lost_at`, feedback winning over the CRM.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.config import Settings
from leadscore.data.contract import FALSE_WORDS, TRUE_WORDS, parse_timestamps, problem_value
from leadscore.data.io import atomic_path, file_digest, read_csv_text, read_table
from leadscore.errors import FeedbackError, Problem
from leadscore.reporting.report import (
    FEEDBACK_COLUMNS,
    FEEDBACK_OUTCOMES,
    LEAD_ID_HEADER,
    SHEET_SCORES,
    restore_text,
)

# the outcomes are the report's drop-down (`FEEDBACK_OUTCOMES`); each belongs to one stage
STAGE_OF: dict[str, str] = {
    "meeting_held": "meeting",
    "won": "close",
    "lost": "close",
    "disqualified": "close",
}
OUTCOME_WORDS = ", ".join(FEEDBACK_OUTCOMES)

# The report's layout, from `leadscore.reporting.report` (its sheet, headers and explore header).
SHEET_NAME = SHEET_SCORES
OUTCOME_HEADER, DATE_HEADER = FEEDBACK_COLUMNS
EXPLORE_HEADER = "Explore"
HEADER_SCAN_ROWS = 20

FIELDS: tuple[str, ...] = ("lead_id", "outcome", "date", "rep", "note", "explore")
REQUIRED_FIELDS: tuple[str, ...] = ("lead_id", "outcome", "date")
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "lead_id": ("lead_id", LEAD_ID_HEADER),
    "outcome": ("outcome", OUTCOME_HEADER),
    "date": ("date", DATE_HEADER),
    "rep": ("rep",),
    "note": ("note",),
    "explore": ("explore", EXPLORE_HEADER),
}
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")

BATCH_ROWS = 10_000
PART_PREFIX = "part-"
STORE_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "outcome",
    "date",
    "rep",
    "note",
    "explore",
    "source_file",
    "source_digest",
    "source_row",
    "ingested_at",
)
STORE_SCHEMA = pa.schema(
    [
        ("lead_id", pa.string()),
        ("outcome", pa.string()),
        ("date", pa.timestamp("ns")),
        ("rep", pa.string()),
        ("note", pa.string()),
        ("explore", pa.bool_()),
        ("source_file", pa.string()),
        ("source_digest", pa.string()),
        ("source_row", pa.int64()),
        ("ingested_at", pa.timestamp("ns")),
    ]
)
OUTCOME_COLUMNS: tuple[str, ...] = ("meeting_at", "won_at", "lost_at")

SAMPLE_DISQUALIFY_SHARE = 0.15
SAMPLE_REPS: tuple[str, ...] = ("Alex Morgan", "Sam Patel", "Jordan Lee", "Maria Rossi", "Chen Wei")
SAMPLE_NOTES: dict[str, tuple[str, ...]] = {
    "meeting_held": ("intro call done", "demo given", "discovery call, good fit"),
    "won": ("contract signed", "signed after trial", "closed"),
    "lost": ("went with a competitor", "no budget this year", "project cancelled"),
    "disqualified": ("no reply after 3 attempts", "not a buyer", "too small for us"),
}
SAMPLE_NOTE_SHARE = 0.6


@dataclass(frozen=True)
class FeedbackSummary:
    """What one ingest did: row counts, the problems of rejected rows and notes on the rest."""

    new: int
    already_stored: int
    rejected: int
    files: int
    readable_files: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    parts: tuple[Path, ...] = ()

    def line(self) -> str:
        """One line for the terminal: `feedback: N new, M already stored, K rejected`."""
        return (
            f"feedback: {self.new} new, {self.already_stored} already stored, "
            f"{self.rejected} rejected"
        )


@dataclass(frozen=True)
class FeedbackCounts:
    """What `apply_feedback` did to the leads.

    `applied` counts current entries on known leads; of those, `added` filled an outcome the CRM
    did not have, `overridden` changed a CRM value (`conflicting` is the part of `overridden`
    where the CRM had the opposite outcome: CRM won vs lost/disqualified, CRM lost vs won) and
    `unchanged` agreed with the CRM (same calendar day). `explore` counts applied entries on leads
    marked explore; `unknown` entries name a lead not in the leads; `before_created` entries are
    dated before the lead's creation day and are not applied.
    """

    applied: int = 0
    added: int = 0
    overridden: int = 0
    conflicting: int = 0
    unchanged: int = 0
    explore: int = 0
    unknown: int = 0
    before_created: int = 0


@dataclass(frozen=True)
class FeedbackFile:
    """One input file's rows as text (`FIELDS`), with sheet row numbers and its headers."""

    rows: pd.DataFrame
    headers: dict[str, str]
    report_layout: bool


# --- small helpers ---------------------------------------------------------------------------


def utc_naive(ts: pd.Timestamp | str | dt.datetime) -> pd.Timestamp:
    """A timestamp as naive UTC (aware ones are converted, naive ones taken as UTC)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


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


def _nonblank_text(raw: pd.Series) -> pd.Series:
    """Trimmed text; empty or blank cells are missing (a blank cell in a sheet is no value)."""
    text = raw.astype("string").str.strip()
    return text.mask(text == "")


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


# --- reading input files ---------------------------------------------------------------------


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
        if SHEET_NAME not in book.sheetnames:
            return None, [Problem(file, f"no sheet named '{SHEET_NAME}'")]
        rows = book[SHEET_NAME].iter_rows(values_only=True)
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
                    f"sheet '{SHEET_NAME}' has no header row with "
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
    text = pd.DataFrame(
        {name: _nonblank_text(raw.iloc[:, pos]) for name, (pos, _) in found.items()}
    )
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


# --- validating rows -------------------------------------------------------------------------


def _only_feedback_rows(data: FeedbackFile, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """In the report layout, rows without sales feedback are not feedback (noted if dated)."""
    rows = data.rows
    if not data.report_layout:
        return rows, []
    has_outcome = rows["outcome"].notna()
    dated = ~has_outcome & rows["date"].notna()
    notes = [
        Problem(
            file,
            "a date without sales feedback; row ignored",
            data.headers["date"],
            int(r),
            v,
        )
        for r, v in zip(rows.loc[dated, "source_row"], rows.loc[dated, "date"], strict=True)
    ]
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
            "lead_id": _nonblank_text(rows["lead_id"]),
            "outcome": normalise_outcome(rows["outcome"]),
            "date": parse_timestamps(rows["date"]).astype("datetime64[ns]"),
            "rep": _nonblank_text(rows["rep"]),
            "note": _nonblank_text(rows["note"]),
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
            parsed["outcome"].notna() & parsed["stage"].isna(),
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


# --- the store -------------------------------------------------------------------------------


def empty_store() -> pd.DataFrame:
    """A store frame with no rows and the store's dtypes."""
    return _typed(STORE_SCHEMA.empty_table().to_pandas())


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Store dtypes: text as `string`, `explore` as nullable boolean, times as datetime64[ns]."""
    out = pd.DataFrame(index=frame.index)
    for name in STORE_COLUMNS:
        values = frame[name]
        if name in ("date", "ingested_at"):
            out[name] = values.astype("datetime64[ns]")
        elif name == "explore":
            out[name] = values.astype("boolean")
        elif name == "source_row":
            out[name] = values.astype("int64")
        else:
            out[name] = values.astype("string")
    return out


def part_name(ingested_at: pd.Timestamp, digest: str, batch: int) -> str:
    """Unique, time-sortable part file name."""
    return f"{PART_PREFIX}{ingested_at:%Y%m%dT%H%M%S%f}Z-{digest[:12]}-{batch:05d}.parquet"


def part_files(folder: Path) -> list[Path]:
    """The store's finished parts in ingest order (temporary files are not parts)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{PART_PREFIX}*.parquet") if p.is_file())


def read_store(folder: Path) -> pd.DataFrame:
    """All stored feedback (the full history), in ingest order; empty when there is none."""
    tables = []
    for path in part_files(folder):
        try:
            tables.append(pq.read_table(path).select(list(STORE_COLUMNS)).cast(STORE_SCHEMA))
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise FeedbackError(f"{path}: unreadable feedback part: {exc}") from exc
    if not tables:
        return empty_store()
    frame = _typed(pa.concat_tables(tables).to_pandas())
    return frame.sort_values(["ingested_at", "source_row"], kind="stable").reset_index(drop=True)


def write_part(frame: pd.DataFrame, target: Path) -> Path:
    """Write one part atomically (temporary file, then rename); never replace an existing part."""
    target = Path(target)
    if target.exists():
        raise FeedbackError(f"{target}: feedback part exists already; parts are never rewritten")
    table = pa.Table.from_pandas(_typed(frame), schema=STORE_SCHEMA, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


def _store_rows(
    parsed: pd.DataFrame, file: str, digest: str, ingested_at: pd.Timestamp
) -> pd.DataFrame:
    out = parsed[["lead_id", "outcome", "date", "rep", "note", "explore", "source_row"]].copy()
    out["source_file"] = file
    out["source_digest"] = digest
    out["ingested_at"] = ingested_at
    return _typed(out).reset_index(drop=True)


def _write_batches(
    rows: pd.DataFrame, folder: Path, ingested_at: pd.Timestamp, digest: str, batch_rows: int
) -> list[Path]:
    written = []
    for batch, start in enumerate(range(0, len(rows), batch_rows)):
        target = Path(folder) / part_name(ingested_at, digest, batch)
        written.append(write_part(rows.iloc[start : start + batch_rows], target))
    return written


def _known_lead_ids(settings: Settings) -> pd.Series:
    """The lead id column of the configured leads file."""
    column = settings.columns.lead_id
    return read_table(settings.data.leads, columns=[column])[column]


def _next_ingest_time(last: pd.Timestamp | None) -> pd.Timestamp:
    """Now (UTC, microseconds), strictly after the last ingest so part names keep their order."""
    stamp = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us")
    if last is not None and pd.notna(last) and stamp <= last:
        stamp = last.floor("us") + pd.Timedelta(microseconds=1)
    return stamp


def ingest_feedback(
    settings: Settings,
    files: list[Path],
    now: pd.Timestamp | None = None,
    lead_ids: pd.Series | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
) -> FeedbackSummary:
    """Validate feedback files and append their new valid rows to the store.

    Files are taken in the order given (a later file supersedes an earlier one for the same lead
    and stage). `now` (default: the current UTC time) decides which dates are in the future;
    `lead_ids` (default: the configured leads file's lead id column) which leads exist.
    Rows already stored (same file digest and row) are counted, not written again.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    now = utc_naive(now) if now is not None else utc_naive(pd.Timestamp.now(tz="UTC"))
    if lead_ids is None:
        lead_ids = _known_lead_ids(settings)
    known = pd.Index(_nonblank_text(pd.Series(lead_ids)).dropna().unique())
    folder = Path(settings.data.feedback)
    history = read_store(folder)
    stored = set(zip(history["source_digest"], history["source_row"], strict=True))
    last = history["ingested_at"].max() if len(history) else None

    new = already = rejected = readable = 0
    problems: list[Problem] = []
    warnings: list[Problem] = []
    parts: list[Path] = []
    for path in map(Path, files):
        data, file_problems = read_feedback_file(path)
        if data is None:
            problems += file_problems
            continue
        readable += 1
        digest = file_digest(path)
        rows, notes = _only_feedback_rows(data, str(path))
        warnings += notes
        parsed, faults = validate_rows(rows, str(path), data.headers, known, now)
        is_stored = np.array([(digest, int(r)) in stored for r in parsed["source_row"]], bool)
        stored_rows = set(parsed.loc[is_stored, "source_row"].tolist())
        problems += [p for p in faults if p.row not in stored_rows]
        ok = parsed["ok"].to_numpy(bool)
        already += int(is_stored.sum())
        rejected += int((~ok & ~is_stored).sum())
        fresh = parsed[ok & ~is_stored]
        if fresh.empty:
            continue
        last = _next_ingest_time(last)
        out = _store_rows(fresh, path.name, digest, last)
        parts += _write_batches(out, folder, last, digest, batch_rows)
        stored |= {(digest, int(r)) for r in out["source_row"]}
        new += len(out)
    return FeedbackSummary(
        new=new,
        already_stored=already,
        rejected=rejected,
        files=len(files),
        readable_files=readable,
        problems=tuple(problems),
        warnings=tuple(warnings),
        parts=tuple(parts),
    )


# --- using feedback for training -------------------------------------------------------------


def current_feedback(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (lead, stage): the latest entry (by `ingested_at`, then `source_row`).

    Accepts the store's history or any frame with `lead_id, outcome, date` (then the row order
    decides). Adds a `stage` column; rows with an unknown outcome are left out.
    """
    frame = history.copy()
    frame["lead_id"] = _nonblank_text(frame["lead_id"])
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
        applied=int(use.sum()),
        explore=explore,
        unknown=unknown,
        before_created=int(before.sum()),
        **totals,
    )
    return out, counts


# --- synthetic feedback for the sample -------------------------------------------------------


def sample_feedback(
    leads_truth: pd.DataFrame,
    open_lead_ids: pd.Series,
    as_of: pd.Timestamp,
    rng_seed: int,
    *,
    horizon: pd.Timedelta,
    share: float = 0.3,
) -> pd.DataFrame:
    """Plausible sales feedback rows (`lead_id, outcome, date, rep, note`) for open leads.

    A `share` of the open leads (drawn at random) gets feedback on what truly happened in
    `(as_of, as_of + horizon]`: `meeting_held`, `won` and `lost` at their true days (a loss
    without a meeting is reported as `disqualified`), and, for some leads that went nowhere
    (no meeting or win ever, nothing in the window), a `disqualified` on a random day of the
    window. Dates are YYYY-MM-DD text, never after `as_of + horizon`. Deterministic for a seed.
    """
    rng = np.random.default_rng(rng_seed)
    as_of = utc_naive(as_of)
    end = as_of + horizon
    ids = set(_nonblank_text(pd.Series(open_lead_ids)).dropna())
    truth = leads_truth.assign(lead_id=_nonblank_text(leads_truth["lead_id"]))
    truth = truth[truth["lead_id"].isin(ids)].drop_duplicates("lead_id")
    truth = truth.sort_values("lead_id", kind="stable").reset_index(drop=True)
    n_pick = round(share * len(truth))
    picked = truth.iloc[np.sort(rng.choice(len(truth), size=n_pick, replace=False))]
    picked = picked.reset_index(drop=True)

    def times(name: str) -> pd.Series:
        if name not in picked:
            return pd.Series(pd.NaT, index=picked.index, dtype="datetime64[ns]")
        return picked[name].astype("datetime64[ns]")

    meeting, won, lost = times("meeting_at"), times("won_at"), times("lost_at")

    def window(t: pd.Series) -> np.ndarray:
        return ((t > as_of) & (t <= end)).to_numpy(bool)

    dq_day = as_of.normalize() + pd.to_timedelta(
        rng.integers(1, max(horizon.days, 1) + 1, size=len(picked)), unit="D"
    )
    dq_draw = rng.random(len(picked)) < SAMPLE_DISQUALIFY_SHARE
    rep = np.asarray(SAMPLE_REPS, dtype=object)[rng.integers(0, len(SAMPLE_REPS), len(picked))]
    note_pick = rng.integers(0, 3, size=len(picked) * 2).reshape(-1, 2)
    note_keep = rng.random((len(picked), 2)) < SAMPLE_NOTE_SHARE

    nothing = ~(window(meeting) | window(won) | window(lost)) & meeting.isna() & won.isna()
    lost_kind = np.where(meeting.notna() & (meeting <= lost), "lost", "disqualified")
    parts = [
        (window(meeting), "meeting_held", meeting, 0),
        (window(won), "won", won, 1),
        (window(lost) & (lost_kind == "lost"), "lost", lost, 1),
        (window(lost) & (lost_kind == "disqualified"), "disqualified", lost, 1),
        (nothing.to_numpy(bool) & dq_draw, "disqualified", pd.Series(dq_day), 1),
    ]
    frames = []
    for mask, outcome, when, slot in parts:
        idx = np.flatnonzero(mask)
        notes = np.asarray(SAMPLE_NOTES[outcome], dtype=object)[note_pick[idx, slot]]
        frames.append(
            pd.DataFrame(
                {
                    "lead_id": picked["lead_id"].to_numpy()[idx],
                    "outcome": outcome,
                    "when": when.to_numpy()[idx].astype("datetime64[ns]"),
                    "rep": rep[idx],
                    "note": np.where(note_keep[idx, slot], notes, None),
                    "order": slot,
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    rows["when"] = rows["when"].dt.normalize()
    rows = rows.sort_values(["when", "lead_id", "order"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype("string"),
            "outcome": rows["outcome"].astype("string"),
            "date": rows["when"].dt.strftime("%Y-%m-%d").astype("string"),
            "rep": rows["rep"].astype("string"),
            "note": rows["note"].astype("string"),
        }
    )
