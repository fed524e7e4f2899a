"""Streaming reads through the data contract: the leads file and the event log batch by batch,
with problems kept by row across batches and raised together at the end of the file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.contract import (
    attach_outcomes,
    attribute_column_problems,
    duplicate_problems,
    lead_roles,
    parse_leads,
    read_outcomes,
)
from leadscore.data.ids import HashSet, lead_hashes
from leadscore.data.io import iter_table_batches, table_columns
from leadscore.data.parse import nonblank_text, parse_timestamps
from leadscore.errors import ContractError, DataFileError, Problem

LEAD_BATCH_ROWS = 100_000  # leads parsed at a time when streaming a leads file for scoring
EVENT_BATCH_ROWS = 500_000  # events parsed at a time when streaming an event log
MAX_STREAM_PROBLEMS = 1_000  # problems kept (the rest counted) while a file streams


def _shift_rows(problems: list[Problem], offset: int) -> list[Problem]:
    return [p if p.row is None else replace(p, row=p.row + offset) for p in problems]


def _duplicate_id_problems(path: Path, column: str, batch_rows: int) -> list[Problem]:
    """Every row whose lead id an earlier row already has, from one pass over the id column
    (ids are remembered as 64-bit hashes)."""
    seen, offset, problems = HashSet(), 0, []
    for raw in iter_table_batches(path, [column], batch_rows):
        ids = raw[column].reset_index(drop=True).astype("string").str.strip()
        hashes = lead_hashes(ids)
        found = duplicate_problems(ids, str(path), column, seen.contains(hashes))
        seen.add(hashes[ids.notna().to_numpy(bool)])
        problems += _shift_rows(found, offset)
        offset += len(raw)
    return problems


def iter_lead_batches(
    settings: Settings,
    leads_path: Path | None = None,
    include_outcomes: bool = True,
    batch_rows: int = LEAD_BATCH_ROWS,
) -> Iterator[tuple[pd.DataFrame, list[Problem]]]:
    """The leads file in canonical form, batch by batch, each batch with its problems.

    The same parsing and checks as `read_lead_data` without holding the whole file: rows are
    numbered from the start of the file. The id column is read once first, and every duplicate
    id problem comes with the first batch, before any row of that id is passed on: a caller that
    drops the leads a problem names drops every row of a duplicated id, as `load_lead_data`
    does (which row is right cannot be known). The attribute columns must be configured,
    since nothing can be inferred from part of a file. A separate outcomes file is read whole
    and attached by lead id (its own problems come with the first batch; outcomes of leads not
    in the file are not looked for). A file that cannot be read or lacks a column raises
    `ContractError`.
    """
    path = Path(leads_path or settings.data.leads)
    file = str(path)
    cols = settings.columns
    if cols.categorical is None and cols.numeric is None:
        raise ValueError("reading leads in batches needs the attribute columns configured")
    categorical, numeric = list(cols.categorical or []), list(cols.numeric or [])
    try:
        header = table_columns(path)
    except pd.errors.EmptyDataError as exc:
        raise ContractError([Problem(file, "the file is empty")]) from exc
    except (DataFileError, OSError, ValueError) as exc:
        message = "file not found" if not path.is_file() else f"cannot read: {exc}"
        raise ContractError([Problem(file, message)]) from exc
    roles = lead_roles(settings, header, include_outcomes)
    shown = list(cols.shown)  # display and owner columns: carried as text, never features
    problems = [
        Problem(file, "missing column", c) for c in [*roles.values(), *shown] if c not in header
    ]
    problems += attribute_column_problems(header, categorical + numeric, file)
    if problems:
        raise ContractError(problems)
    outcomes, outcome_roles, outcome_problems = None, {}, []
    if include_outcomes and settings.data.outcomes is not None:
        outcomes, outcome_roles = read_outcomes(settings, outcome_problems)
        if outcomes is None:
            raise ContractError(outcome_problems)
    needed = list(dict.fromkeys([*roles.values(), *categorical, *numeric, *shown]))
    offset = 0
    try:
        duplicates = _duplicate_id_problems(path, roles["lead_id"], batch_rows)
        for raw in iter_table_batches(path, needed, batch_rows):
            raw = raw.reset_index(drop=True)
            leads, found = parse_leads(raw, roles, categorical, numeric, settings, file)
            for col in shown:
                if col not in leads:  # a model trained with it as a feature reads it as one
                    leads[col] = nonblank_text(raw[col])
            found = _shift_rows(found, offset)
            if outcomes is not None:
                leads, late = attach_outcomes(
                    leads, outcomes, outcome_roles, str(settings.data.outcomes)
                )
                found += late
            if offset == 0:
                found = outcome_problems + duplicates + found
            yield leads, found
            offset += len(raw)
        if offset == 0:
            raise DataFileError(f"{path}: the file has a header but no rows")
    except DataFileError as exc:
        raise ContractError([Problem(file, str(exc).removeprefix(f"{path}: "))]) from exc


@dataclass
class ProblemLog:
    """Problems found while a file streams: the first `limit` kept, every one counted.

    A streaming read collects the problems of the whole file and raises them together at its end
    (`raise_if_any`, with a line counting those not kept), unless the config drops bad rows.
    """

    source: str
    more: str = "problems"  # what the count line calls the problems not kept
    limit: int = MAX_STREAM_PROBLEMS
    problems: list[Problem] = field(default_factory=list)
    n_found: int = 0

    @property
    def room(self) -> int:
        """How many more problems are kept."""
        return max(0, self.limit - len(self.problems))

    def add(self, found: Sequence[Problem], n_found: int | None = None) -> None:
        """Count `n_found` problems (default: those in `found`); keep the ones there is room for."""
        self.n_found += len(found) if n_found is None else n_found
        self.problems += found[: self.room]

    def raise_if_any(self) -> None:
        """Raise `ContractError` with every problem kept, and a count of the others."""
        if not self.problems:
            return
        problems = list(self.problems)
        if self.n_found > len(problems):
            problems.append(
                Problem(self.source, f"{self.n_found - len(problems):,} more {self.more}")
            )
        raise ContractError(problems)


def _bad_event_problems(
    occurred_at: pd.Series, bad: np.ndarray, offset: int, file: str, room: int
) -> list[Problem]:
    """One problem per bad event row (at most `room`), rows numbered from the file's start."""
    problems = []
    for pos in np.flatnonzero(bad)[:room]:
        value = occurred_at.iloc[pos]
        problems.append(
            Problem(
                file,
                "unparseable or missing timestamp, or missing activity type",
                None,
                offset + int(pos) + 2,
                None if pd.isna(value) else value,
            )
        )
    return problems


def iter_events(
    path: Path, settings: Settings, batch_rows: int = EVENT_BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Stream the event log as frames of (lead_id, occurred_at, activity_type).

    An unparseable timestamp or a missing type is a contract problem naming the row; bad rows
    are left out of the batches and all problems raised together at the end of the file, unless
    the config says to drop bad rows.
    """
    ac = settings.activity_columns
    drop = settings.validation.drop_invalid_rows
    log = ProblemLog(str(path), more="bad rows")
    offset = 0
    for raw in iter_table_batches(path, [ac.lead_id, ac.occurred_at, ac.type], batch_rows):
        when = parse_timestamps(raw[ac.occurred_at])
        bad = (when.isna() | raw[ac.type].isna()).to_numpy(bool)
        found = _bad_event_problems(raw[ac.occurred_at], bad, offset, str(path), log.room)
        log.add(found, int(bad.sum()))
        offset += len(raw)
        if drop or not log.problems:
            yield pd.DataFrame(
                {
                    "lead_id": raw[ac.lead_id].astype("string").str.strip(),
                    "occurred_at": when,
                    "activity_type": raw[ac.type].astype("string").str.strip(),
                }
            )[~bad]
    if not drop:
        log.raise_if_any()
