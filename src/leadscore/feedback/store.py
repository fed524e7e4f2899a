"""The feedback store: an append-only folder of Parquet parts, and the ingest that fills it.

The store (`settings.data.feedback`) is a folder of Parquet parts named
`part-<ingested_at UTC, YYYYmmddTHHMMSSffffff>Z-<sha256[:12] of the source file>-<batch>.parquet`.
Parts are never rewritten or deleted; each is written to a temporary file and renamed, at most
`BATCH_ROWS` rows at a time, so an interrupted ingest leaves a readable store that is complete up
to its last finished part. A row is identified by its source file's digest and row number:
ingesting a file again adds only the rows not stored yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.config import Settings
from leadscore.data.io import atomic_path, file_digest, read_table
from leadscore.data.parse import nonblank_text, utc_naive
from leadscore.data.schema import NOTE_OUTCOMES
from leadscore.errors import FeedbackError, Problem
from leadscore.feedback.read import read_feedback_file
from leadscore.feedback.validate import only_feedback_rows, validate_rows

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


@dataclass(frozen=True)
class FeedbackSummary:
    """What one ingest did: row counts, the problems of rejected rows and notes on the rest.

    `new_by_outcome` counts the new rows per outcome; the notes for review among them
    (`no_response`, `score_wrong`) are stored like the rest but never become labels.
    """

    new: int
    already_stored: int
    rejected: int
    files: int
    readable_files: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    parts: tuple[Path, ...] = ()
    new_by_outcome: Mapping[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the terminal: `feedback: N new, M already stored, K rejected`, and the
        notes for review among the new rows ("(3 not used as labels: no_response 2, ...)")."""
        notes = {o: n for o, n in self.new_by_outcome.items() if o in NOTE_OUTCOMES and n}
        review = ""
        if notes:
            listed = ", ".join(f"{o} {n}" for o, n in notes.items())
            review = f" ({sum(notes.values())} not used as labels: {listed})"
        return (
            f"feedback: {self.new} new{review}, {self.already_stored} already stored, "
            f"{self.rejected} rejected"
        )


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
    known = pd.Index(nonblank_text(pd.Series(lead_ids)).dropna().unique())
    folder = Path(settings.data.feedback)
    history = read_store(folder)
    stored = set(zip(history["source_digest"], history["source_row"], strict=True))
    last = history["ingested_at"].max() if len(history) else None

    new = already = rejected = readable = 0
    problems: list[Problem] = []
    warnings: list[Problem] = []
    parts: list[Path] = []
    by_outcome: dict[str, int] = {}
    for path in map(Path, files):
        data, file_problems = read_feedback_file(path)
        if data is None:
            problems += file_problems
            continue
        readable += 1
        digest = file_digest(path)
        rows, notes = only_feedback_rows(data, str(path))
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
        for outcome, n in out["outcome"].value_counts(sort=False).items():
            by_outcome[str(outcome)] = by_outcome.get(str(outcome), 0) + int(n)
    return FeedbackSummary(
        new=new,
        already_stored=already,
        rejected=rejected,
        files=len(files),
        readable_files=readable,
        problems=tuple(problems),
        warnings=tuple(warnings),
        parts=tuple(parts),
        new_by_outcome=dict(sorted(by_outcome.items())),
    )
