"""What Spark's Python workers run, batch by batch and part by part (Arrow in, Arrow out).

No pyspark here: these functions take and return Arrow tables, so they are the local engine's
steps (the data contract, the sales feedback, the open-lead snapshot, `score_part`) with the
rows cut differently. Rows of three kinds leave the reading steps, told apart by `KIND`: the
parsed rows themselves, the problems found (`INFO`: the problem as JSON) and one tally per
batch (`INFO`: counts and the newest timestamp, as JSON), so that one pass over the input gives
the rows and what the local engine counts while it streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.data.contract import (
    attach_outcomes,
    attribute_column_problems,
    drop_leads,
    lead_roles,
    parse_leads,
)
from leadscore.data.features import (
    ActivityStats,
    FeatureSpec,
    add_events_at,
    empty_stats,
    to_seconds,
)
from leadscore.data.ids import lead_hashes
from leadscore.data.parse import nonblank_text, parse_timestamps
from leadscore.data.snapshots import scoring_snapshots
from leadscore.data.spill import EVENT_SCHEMA, frame_schema
from leadscore.errors import ContractError, Problem
from leadscore.feedback.apply import apply_feedback
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.summary import owner_labels
from leadscore.scoring.chunks import score_part
from leadscore.scoring.stream import LEAD_TIME_COLUMNS, LeadTally, iter_chunks
from leadscore.scoring.tracking import ModelRef
from leadscore.scoring.trend import PreviousRun, TrendRule

KIND, INFO = "_kind", "_info"  # which kind of row, and the problem or tally of a non-row
ROW, PROBLEM, TALLY = "row", "problem", "tally"
GROUP = "_group"  # the Spark group (a hash of the lead id) a lead is scored in
CONTRIB = "_c_"  # prefix of the effects per reason group (contributions.parquet's columns)
FEATURE = "_f_"  # prefix of the model inputs kept for the drift sample (null elsewhere)
DRIFT = "_drift"  # the row is in the drift sample
OWNER = "_owner"  # the owner as the reports count it (`owner_labels`)
N_EVENTS = "_n_events"  # the lead's events before the as-of date
MAX_BATCH_PROBLEMS = 1_000  # problems kept per batch (every one counted)
OUTPUT_BATCH_ROWS = 10_000  # scored rows per Arrow batch handed back to Spark's JVM


def problem_json(p: Problem) -> str:
    """A problem as JSON text (values that JSON lacks as their text)."""
    raw = asdict(p)
    if raw["value"] is not None and not isinstance(raw["value"], str | int | float | bool):
        raw["value"] = str(raw["value"])
    return json.dumps(raw)


def problem_of(text: str) -> Problem:
    return Problem(**json.loads(text))


def marker_rows(schema: pa.Schema, kind: str, infos: list[str]) -> pa.RecordBatch:
    """Rows of `schema` that carry only a kind and an info text (every other column null)."""
    arrays = [
        pa.array([kind] * len(infos), pa.string())
        if f.name == KIND
        else pa.array(infos, pa.string())
        if f.name == INFO
        else pa.nulls(len(infos), f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def tally_info(tally: LeadTally, n_rows: int, n_problems: int) -> str:
    through = None if tally.data_through is None else tally.data_through.isoformat()
    return json.dumps(
        {
            "n_rows": n_rows,
            "n_skipped": tally.n_skipped,
            "n_dropped": tally.n_dropped,
            "n_feedback": tally.n_feedback,
            "n_problems": n_problems,
            "data_through": through,
        }
    )


def spark_arrow(schema: pa.Schema) -> pa.Schema:
    """The schema as Spark hands it over: timestamps in microseconds, no metadata."""
    return pa.schema(
        pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f for f in schema
    ).remove_metadata()


def with_markers(schema: pa.Schema) -> pa.Schema:
    return (
        spark_arrow(schema).append(pa.field(KIND, pa.string())).append(pa.field(INFO, pa.string()))
    )


@dataclass(frozen=True)
class LeadReading:
    """How the leads are read through the data contract, as the local engine reads them."""

    settings: Settings  # `scoring_settings`: the model's attribute columns
    roles: dict[str, str]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    shown: tuple[str, ...]
    file: str
    as_of: pd.Timestamp
    feedback: pd.DataFrame  # the sales feedback store
    outcomes: pd.DataFrame | None = None  # a separate outcomes file, read whole
    outcome_roles: dict[str, str] | None = None
    duplicate_ids: frozenset[str] = frozenset()  # dropped when the config drops bad rows

    @property
    def needed(self) -> list[str]:
        """The columns read from the leads."""
        return list(
            dict.fromkeys([*self.roles.values(), *self.categorical, *self.numeric, *self.shown])
        )

    @property
    def drop(self) -> bool:
        return self.settings.validation.drop_invalid_rows


def lead_reading(
    settings: Settings,
    header: list[str],
    file: str,
    as_of: pd.Timestamp,
    include_outcomes: bool,
    feedback: pd.DataFrame,
    outcomes: pd.DataFrame | None = None,
    outcome_roles: dict[str, str] | None = None,
) -> LeadReading:
    """The reading of leads with these columns; `ContractError` when a column is missing."""
    cols = settings.columns
    categorical, numeric = list(cols.categorical or []), list(cols.numeric or [])
    roles = lead_roles(settings, header, include_outcomes)
    shown = list(cols.shown)
    problems = [
        Problem(file, "missing column", c) for c in [*roles.values(), *shown] if c not in header
    ]
    problems += attribute_column_problems(header, categorical + numeric, file)
    if problems:
        raise ContractError(problems)
    return LeadReading(
        settings,
        roles,
        tuple(categorical),
        tuple(numeric),
        tuple(shown),
        file,
        as_of,
        feedback,
        outcomes,
        outcome_roles,
    )


def open_leads_of(raw: pd.DataFrame, reading: LeadReading) -> tuple[pd.DataFrame, list, LeadTally]:
    """One batch of raw leads: its open snapshots at the as-of date, its problems (rows are not
    numbered: a Spark batch does not know where it starts in the file) and its tally."""
    raw = raw.reset_index(drop=True)
    settings, tally = reading.settings, LeadTally()
    leads, found = parse_leads(
        raw, reading.roles, list(reading.categorical), list(reading.numeric), settings, reading.file
    )
    for col in reading.shown:
        if col not in leads:  # a model trained with it as a feature reads it as one
            leads[col] = nonblank_text(raw[col])
    if reading.outcomes is not None:
        leads, late = attach_outcomes(
            leads, reading.outcomes, reading.outcome_roles or {}, str(settings.data.outcomes)
        )
        found += late
    found = [p if p.row is None else Problem(**{**asdict(p), "row": None}) for p in found]
    if reading.drop:
        bad = {p.lead_id for p in found if p.lead_id is not None} | set(reading.duplicate_ids)
        kept = drop_leads(leads, bad)
        tally.n_dropped += len(leads) - len(kept)
        leads = kept
    tally.see_times(leads, LEAD_TIME_COLUMNS)
    if not reading.feedback.empty:
        leads, counts = apply_feedback(leads, reading.feedback)
        tally.n_feedback += counts.applied
    snaps, skipped = scoring_snapshots(leads, reading.as_of)
    tally.n_skipped += skipped
    return snaps, found, tally


def snapshot_schema(snaps: pd.DataFrame) -> pa.Schema:
    """The Arrow schema of open snapshots, with pandas' metadata: as the local engine's spill
    files hold them, so a part read back has the same dtypes in both engines."""
    schema = frame_schema(snaps)
    return pa.Table.from_pandas(snaps.head(0), schema=schema, preserve_index=False).schema


def read_leads_batches(
    batches: Iterable[pa.RecordBatch], reading: LeadReading, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """mapInArrow: raw leads in, open snapshots (`schema`, with markers) and markers out."""
    out_schema = with_markers(schema)
    for batch in batches:
        raw = batch.to_pandas()
        snaps, found, tally = open_leads_of(raw, reading)
        if found:
            infos = [problem_json(p) for p in found[:MAX_BATCH_PROBLEMS]]
            yield marker_rows(out_schema, PROBLEM, infos)
        if found and not reading.drop:
            snaps = snaps.head(0)  # the run fails: no more rows are passed on
        yield marker_rows(out_schema, TALLY, [tally_info(tally, len(snaps), len(found))])
        if len(snaps):
            table = pa.Table.from_pandas(snaps[schema.names], schema=schema, preserve_index=False)
            table = table.cast(spark_arrow(schema))
            table = table.append_column(KIND, pa.array([ROW] * len(snaps), pa.string()))
            table = table.append_column(INFO, pa.nulls(len(snaps), pa.string()))
            yield from table.to_batches()


def read_event_batches(
    batches: Iterable[pa.RecordBatch],
    columns: tuple[str, str, str],
    file: str,
    activity_types: tuple[str, ...],
    before_seconds: int,
    drop: bool,
) -> Iterator[pa.RecordBatch]:
    """mapInArrow: raw events (lead id, time, type) in; (lead_id, seconds, type_code) of the
    events dated before `before_seconds` out, with markers (bad rows, newest timestamp)."""
    lead_col, when_col, type_col = columns
    out_schema = with_markers(EVENT_SCHEMA)
    types = pd.Index(activity_types)
    for batch in batches:
        raw = batch.to_pandas()
        when = parse_timestamps(raw[when_col])
        bad = (when.isna() | raw[type_col].isna()).to_numpy(bool)
        problems = [
            problem_json(
                Problem(
                    file,
                    "unparseable or missing timestamp, or missing activity type",
                    None,
                    None,
                    None if pd.isna(v) else str(v),
                )
            )
            for v in raw[when_col][bad].head(MAX_BATCH_PROBLEMS)
        ]
        if problems:
            yield marker_rows(out_schema, PROBLEM, problems)
        good = ~bad
        tally = LeadTally()
        tally.see_times(pd.DataFrame({"occurred_at": when[good]}), ("occurred_at",))
        yield marker_rows(out_schema, TALLY, [tally_info(tally, 0, int(bad.sum()))])
        if problems and not drop:
            continue
        seconds = to_seconds(when[good])
        keep = seconds < before_seconds
        kinds = raw[type_col][good].astype("string").str.strip()[keep]
        ids = raw[lead_col][good].astype("string").str.strip()[keep]
        table = pa.table(
            {
                "lead_id": pa.array(ids.to_numpy(object, na_value=None), pa.string()),
                "seconds": pa.array(seconds[keep], pa.int64()),
                "type_code": pa.array(types.get_indexer(kinds).astype(np.int16), pa.int16()),
                KIND: pa.array([ROW] * int(keep.sum()), pa.string()),
                INFO: pa.nulls(int(keep.sum()), pa.string()),
            }
        )
        yield from table.to_batches()


@dataclass(frozen=True)
class PartScoring:
    """What scoring one Spark group needs besides its rows (broadcast to the workers)."""

    bundle: LeadScoreModel
    settings: Settings
    as_of: pd.Timestamp
    ref: ModelRef
    previous: PreviousRun | None
    snapshots: pa.Schema  # `snapshot_schema` of the open leads
    drift_stride: int  # one lead in this many (by lead id hash) is in the drift sample

    @property
    def rule(self) -> TrendRule:
        return TrendRule.of(self.settings.score)


def frame_in_dtypes(table: pa.Table, schema: pa.Schema) -> pd.DataFrame:
    """Rows from Spark back in the dtypes that `schema`'s pandas metadata records (those of the
    local engine's frames: the spilled leads, the score rows, the model inputs)."""
    plain = schema.remove_metadata()
    typed = table.select(plain.names).cast(plain)
    return typed.replace_schema_metadata(schema.metadata).to_pandas()


def part_stats(
    snaps: pd.DataFrame, events: pa.Table | None, t: int, spec: FeatureSpec
) -> tuple[ActivityStats | None, np.ndarray]:
    """Activity aggregates at `t` of a group's leads from the group's events, and each lead's
    number of events (events of leads not open are in the group too and left out)."""
    if not spec.has_activities:
        return None, np.zeros(len(snaps), np.int64)
    stats = empty_stats(len(snaps), spec)
    n_events = np.zeros(len(snaps), np.int64)
    if events is not None and events.num_rows:
        index = pd.Index(snaps["lead_id"])
        rows = index.get_indexer(events.column("lead_id").to_pandas())
        seconds = events.column("seconds").to_numpy().astype(np.int64)
        kinds = events.column("type_code").to_numpy().astype(np.int64)
        add_events_at(stats, t, rows, kinds, seconds, spec)
        n_events = np.bincount(rows[rows >= 0], minlength=len(snaps)).astype(np.int64)
    return stats, n_events


def scored_rows(
    job: PartScoring, snaps: pd.DataFrame, stats: ActivityStats | None, n_events: np.ndarray
) -> Iterator[pa.Table]:
    """`score_part` chunk by chunk over a group's leads; each chunk's rows as one Arrow table:
    the score rows, the effects (`CONTRIB`), the drift sample's inputs (`FEATURE`, `DRIFT`),
    the owner as counted (`OWNER`) and the events per lead (`N_EVENTS`)."""
    settings = job.settings
    owner = settings.columns.owner
    for start, part, pstats in iter_chunks([(snaps, stats)], settings.score.chunk_size):
        scored = score_part(
            job.bundle, part, pstats, settings, job.as_of, job.ref, job.previous, job.rule
        )
        out = scored.out.copy()
        for g in scored.contrib_pp.columns:
            out[f"{CONTRIB}{g}"] = scored.contrib_pp[g].to_numpy(np.float32)
        drift = (lead_hashes(out["lead_id"]) % np.uint64(job.drift_stride)) == 0
        for col in scored.features.columns:
            out[f"{FEATURE}{col}"] = scored.features[col].where(drift)
        out[DRIFT] = drift
        counted = owner and owner in out
        out[OWNER] = owner_labels(out[owner]) if counted else pd.Series(pd.NA, index=out.index)
        out[OWNER] = out[OWNER].astype("string")
        out[N_EVENTS] = n_events[start : start + len(part)]
        yield pa.Table.from_pandas(out, preserve_index=False)


def plain_types(table: pa.Table) -> pa.Schema:
    """The table's schema as Spark can hold it: text as plain strings, no metadata."""
    return pa.schema(
        pa.field(f.name, pa.string())
        if pa.types.is_large_string(f.type) or pa.types.is_null(f.type)
        else f
        for f in table.schema
    )


def score_group(
    leads: pa.Table, events: pa.Table | None, job: PartScoring, schema: pa.Schema
) -> pa.Table:
    """applyInArrow (cogrouped by `GROUP`): one group's open leads and events in (rows only,
    no markers), its scored rows out (`schema`: the Spark output schema)."""
    if leads.num_rows == 0:
        return schema.empty_table()
    snaps = frame_in_dtypes(leads, job.snapshots)
    t = int(to_seconds(pd.DatetimeIndex([job.as_of]))[0])
    stats, n_events = part_stats(snaps, events, t, job.bundle.spec)
    tables = [table.cast(schema) for table in scored_rows(job, snaps, stats, n_events)]
    batches = pa.concat_tables(tables).to_batches(max_chunksize=OUTPUT_BATCH_ROWS)
    return pa.Table.from_batches(batches, schema=schema)
