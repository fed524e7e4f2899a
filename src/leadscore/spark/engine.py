"""The Spark engine: the open leads read, joined with their events and scored on a Spark cluster.

The steps are the local engine's, with Spark moving the rows:

1. Leads and events are read as Spark DataFrames (CSV, Parquet or a table name) and parsed
   batch by batch in `mapInArrow` through the same data contract, sales feedback and open-lead
   snapshot as the local engine (`spark.parts`); problems and counts come back as marker rows.
2. Each open lead meets its events by a shuffle on a hash of the lead id (`cogroup`); each
   group is scored by `scoring.chunks.score_part` in `applyInArrow`, with the model bundle and
   the previous run broadcast to the workers. Every lead is scored on its own, so the result
   does not depend on the grouping.
3. The scored rows are kept by Spark (persisted) and written as Parquet; the driver then writes
   `scores.parquet`, `scores.csv` and `contributions.parquet` one Spark output file at a time,
   and gets the counts, histogram, owner tallies, top rows and drift sample from Spark
   aggregations: it never holds all leads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from py4j.protocol import Py4JError
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from leadscore.config import SparkSettings
from leadscore.data.contract import read_outcomes
from leadscore.data.io import table_format
from leadscore.data.spill import EVENT_SCHEMA
from leadscore.errors import ContractError, Problem
from leadscore.feedback.store import read_store
from leadscore.reporting.summary import owner_summaries
from leadscore.scoring.chunks import (
    DRIFT_SAMPLE_ROWS,
    ChunkedRun,
    ScoreWriters,
    machine_rows,
    score_part,
    score_paths,
)
from leadscore.scoring.inputs import as_of_seconds
from leadscore.scoring.predict import check_shown_columns
from leadscore.scoring.run import REPORT_MAX_ROWS, ScoredLeads, ScoringJob
from leadscore.scoring.stream import LeadTally, scoring_settings
from leadscore.scoring.trend import PreviousRun
from leadscore.spark.parts import (
    CONTRIB,
    DRIFT,
    FEATURE,
    GROUP,
    INFO,
    KIND,
    N_EVENTS,
    OWNER,
    PROBLEM,
    ROW,
    TALLY,
    PartScoring,
    frame_in_dtypes,
    lead_reading,
    open_leads_of,
    part_stats,
    plain_types,
    problem_of,
    read_event_batches,
    read_leads_batches,
    score_group,
    scored_rows,
    snapshot_schema,
    with_markers,
)

log = logging.getLogger(__name__)

PARTS_DIR = "scores_parts"  # the Spark-written scores, partitioned by as-of date
LOCAL_DRIVER_MEMORY = "4g"  # spark.driver.memory in local mode unless spark.conf sets it
PROBE_ROWS = 200  # leads read on the driver to learn the schemas
MAX_PROBLEMS = 1_000  # problems shown when the input breaks the contract
FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".txt")


def spark_session(conf: SparkSettings) -> SparkSession:
    """The Spark session (an existing one, e.g. on Databricks, is reused as it is)."""
    builder = SparkSession.builder.master(conf.master).appName(conf.app_name)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    settings = dict(conf.conf)
    if conf.master.startswith("local"):  # the workers run this interpreter, with leadscore
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # the executors run in the driver's JVM: more than Spark's 1 GB default heap
        settings.setdefault("spark.driver.memory", LOCAL_DRIVER_MEMORY)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def is_file_source(source: str) -> bool:
    """Whether a leads or events source names a file or folder (else: a table name)."""
    return "/" in source or "\\" in source or source.lower().endswith(FILE_SUFFIXES)


def read_frame(spark: SparkSession, source: str, columns: list[str] | None = None) -> DataFrame:
    """A CSV file (values as text), a Parquet file or folder, or a table, as a DataFrame."""
    if not is_file_source(source):
        frame = spark.table(source)
    elif table_format(Path(source)) == "parquet" or Path(source).is_dir():
        frame = spark.read.parquet(source)
    else:
        frame = spark.read.csv(source, header=True, inferSchema=False, encoding="utf-8")
    if columns is None:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError([Problem(source, "missing column", c) for c in missing])
    return frame.select(*columns)


def _raise_problems(problems: list[Problem], n_found: int, source: str) -> None:
    if not problems:
        return
    if n_found > len(problems):
        problems = [*problems, Problem(source, f"{n_found - len(problems):,} more problems")]
    raise ContractError(problems)


def _markers(parsed: DataFrame) -> tuple[list[dict], list[Problem]]:
    """The tallies of every batch and the first problems found."""
    tallies = [json.loads(r[INFO]) for r in parsed.filter(F.col(KIND) == TALLY).collect()]
    rows = parsed.filter(F.col(KIND) == PROBLEM).select(INFO).limit(MAX_PROBLEMS).collect()
    return tallies, [problem_of(r[INFO]) for r in rows]


def _add_tallies(tally: LeadTally, tallies: list[dict]) -> int:
    """Add the batches' counts to `tally`; the number of problems found in all."""
    for t in tallies:
        tally.n_skipped += t["n_skipped"]
        tally.n_dropped += t["n_dropped"]
        tally.n_feedback += t["n_feedback"]
        if t["data_through"] is not None:
            tally.see_times(pd.DataFrame({"t": [pd.Timestamp(t["data_through"])]}), ("t",))
    return sum(t["n_problems"] for t in tallies)


def _duplicate_ids(raw: DataFrame, column: str) -> list[str]:
    """Lead ids on more than one row (trimmed, as the contract reads them)."""
    ids = raw.select(F.trim(F.col(column)).alias("id")).filter(F.col("id") != "")
    return [r["id"] for r in ids.groupBy("id").count().filter(F.col("count") > 1).collect()]


def read_open_leads(
    spark: SparkSession, job: ScoringJob, source: str, tally: LeadTally, kept: list[DataFrame]
) -> tuple[DataFrame, pa.Schema]:
    """The open leads at the as-of date as a persisted DataFrame (rows only) and their Arrow
    schema; the contract's problems raised together (`ContractError`) unless they are dropped."""
    settings = scoring_settings(job.settings, job.bundle.spec)
    check_shown_columns(settings)
    with_outcomes = job.leads_path is None and settings.data.outcomes is not None
    outcomes, outcome_roles, outcome_problems = None, None, []
    if with_outcomes:
        outcomes, outcome_roles = read_outcomes(settings, outcome_problems)
        if outcomes is None:
            raise ContractError(outcome_problems)
    raw = read_frame(spark, source)
    reading = lead_reading(
        settings,
        raw.columns,
        source,
        job.as_of,
        with_outcomes,
        read_store(settings.data.feedback),
        outcomes,
        outcome_roles,
    )
    raw = raw.select(*reading.needed)
    id_column = reading.roles["lead_id"]
    duplicates = _duplicate_ids(raw, id_column)
    problems = outcome_problems + [
        Problem(source, "duplicate lead id", id_column, None, i, i) for i in duplicates
    ]
    reading = replace(reading, duplicate_ids=frozenset(duplicates))
    probe, _, _ = open_leads_of(raw.limit(PROBE_ROWS).toArrow().to_pandas(), reading)
    schema = snapshot_schema(probe)
    out_schema = with_markers(schema)
    parsed = raw.mapInArrow(
        lambda batches: read_leads_batches(batches, reading, schema),
        from_arrow_schema(out_schema),
    ).persist(StorageLevel.DISK_ONLY)
    kept.append(parsed)
    tallies, found = _markers(parsed)
    n_found = _add_tallies(tally, tallies) + len(problems)
    if not reading.drop:
        _raise_problems(problems + found, n_found, source)
    return parsed.filter(F.col(KIND) == ROW).drop(KIND, INFO), schema


def read_events(
    spark: SparkSession, job: ScoringJob, source: str, tally: LeadTally, kept: list[DataFrame]
) -> DataFrame:
    """The events dated before the as-of date, as (lead_id, seconds, type_code), persisted."""
    ac = job.settings.activity_columns
    columns = (ac.lead_id, ac.occurred_at, ac.type)
    raw = read_frame(spark, source, list(columns))
    drop = job.settings.validation.drop_invalid_rows
    spec = job.bundle.spec
    before = as_of_seconds(job.as_of)
    schema = with_markers(EVENT_SCHEMA)
    parsed = raw.mapInArrow(
        lambda batches: read_event_batches(
            batches, columns, source, spec.activity_types, before, drop
        ),
        from_arrow_schema(schema),
    ).persist(StorageLevel.DISK_ONLY)
    kept.append(parsed)
    tallies, found = _markers(parsed)
    n_bad = _add_tallies(tally, tallies)
    if not drop:
        _raise_problems(found, n_bad, source)
    return parsed.filter(F.col(KIND) == ROW).drop(KIND, INFO)


def output_schemas(job: PartScoring, snaps: pd.DataFrame) -> tuple[pa.Schema, ...]:
    """From a few leads scored on the driver: the Arrow schema of the Spark output, and the
    schemas (with pandas' metadata) of the score rows and of the model inputs."""
    spec = job.bundle.spec
    stats, n_events = part_stats(snaps, None, as_of_seconds(job.as_of), spec)
    table = next(scored_rows(job, snaps, stats, n_events))
    part = score_part(
        job.bundle, snaps, stats, job.settings, job.as_of, job.ref, job.previous, job.rule
    )
    rows = pa.Table.from_pandas(part.out, preserve_index=False)
    features = pa.Table.from_pandas(part.features, preserve_index=False)
    return (
        plain_types(table),
        plain_types(rows).with_metadata(rows.schema.metadata),
        plain_types(features).with_metadata(features.schema.metadata),
    )


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _columns(schema: pa.Schema, prefix: str) -> list[str]:
    return [n for n in schema.names if n.startswith(prefix)]


def write_score_files(
    rows_dir: Path, paths: dict[str, Path], rows: pa.Schema, contrib: list[str], job: ScoringJob
) -> None:
    """scores.parquet, scores.csv and contributions.parquet from the Spark output files, one
    batch of `score.chunk_size` rows at a time, in the local engine's format."""
    with ScoreWriters(paths) as writers:
        for file in sorted(rows_dir.glob("part-*.parquet")):
            batches = pq.ParquetFile(file).iter_batches(job.settings.score.chunk_size)
            for batch in batches:
                table = pa.Table.from_batches([batch])
                effects = pd.DataFrame(
                    {c.removeprefix(CONTRIB): table.column(c).to_numpy() for c in contrib}
                )
                writers.write(frame_in_dtypes(table, rows), effects, job.as_of)


def write_parts(scored: DataFrame, rows: pa.Schema, spark_rows: pa.Schema, target: str) -> None:
    """The score rows as Spark writes them, partitioned by as-of date (text as in the score
    files; the reasons in their own columns); a rerun replaces its date's partition."""

    def machine(batches):
        for batch in batches:
            frame = machine_rows(frame_in_dtypes(pa.Table.from_batches([batch]), rows))
            table = pa.Table.from_pandas(frame, preserve_index=False)
            yield from table.cast(spark_rows).to_batches()

    scored.select(*rows.names).mapInArrow(machine, from_arrow_schema(spark_rows)).write.mode(
        "overwrite"
    ).option("partitionOverwriteMode", "dynamic").partitionBy("as_of").parquet(target)


def _aggregates(scored: DataFrame, job: ScoringJob) -> tuple:
    """Counts, grades, score histogram and owner tallies, from Spark aggregations."""
    totals = scored.agg(
        F.sum(F.col("explore").cast("long")).alias("explore"),
        F.sum(F.col("dormant").cast("long")).alias("dormant"),
        F.sum(N_EVENTS).alias("events"),
    ).first()
    grades = dict.fromkeys("ABCD", 0)
    for r in scored.groupBy("grade").count().collect():
        grades[str(r["grade"])] += int(r["count"])
    hist = np.zeros(101, np.int64)
    for r in scored.groupBy("score").count().collect():
        if 0 <= int(r["score"]) <= 100:
            hist[int(r["score"])] += int(r["count"])
    owner_counts: dict[str, dict[str, int]] = {}
    owner_values: dict[str, float] = {}
    if job.settings.columns.owner:
        for r in scored.groupBy(OWNER, "grade").count().collect():
            owner_counts.setdefault(str(r[OWNER]), {})[str(r["grade"])] = int(r["count"])
        known = scored.filter(F.col("expected_value").isNotNull() & ~F.isnan("expected_value"))
        for r in known.groupBy(OWNER).agg(F.sum("expected_value").alias("ev")).collect():
            owner_values[str(r[OWNER])] = float(r["ev"])
    counts = (int(totals["explore"] or 0), int(totals["dormant"] or 0), int(totals["events"] or 0))
    return counts, grades, hist, owner_summaries(owner_counts, owner_values)


def score_open_leads(
    spark: SparkSession,
    job: ScoringJob,
    leads: DataFrame,
    events: DataFrame | None,
    snapshots: pa.Schema,
    n_open: int,
    previous: PreviousRun | None,
    work_dir: Path,
) -> tuple[ChunkedRun, int]:
    """Score every open lead in Spark; write the score files; the run's aggregates."""
    settings = job.settings
    part_job = PartScoring(
        job.bundle,
        settings,
        job.as_of,
        job.ref,
        previous,
        snapshots,
        max(1, n_open // DRIFT_SAMPLE_ROWS),
    )
    probe = frame_in_dtypes(leads.limit(50).toArrow(), snapshots)
    spark_rows, rows, features = output_schemas(part_job, probe)
    shared = spark.sparkContext.broadcast(part_job)

    def score(left: pa.Table, right: pa.Table) -> pa.Table:
        return score_group(left, right, shared.value, spark_rows)

    parallelism = spark.sparkContext.defaultParallelism
    n_groups = max(math.ceil(n_open / settings.spark.part_size), parallelism)
    if events is None:
        events = spark.createDataFrame([], "lead_id string, seconds long, type_code short")
    group = F.pmod(F.xxhash64("lead_id"), F.lit(n_groups))
    # both sides hash-partitioned alike by group: one shuffle, n_groups partitions downstream
    by_group = [
        frame.withColumn(GROUP, group).repartition(n_groups, GROUP) for frame in (leads, events)
    ]
    scored = (
        by_group[0]
        .groupBy(GROUP)
        .cogroup(by_group[1].groupBy(GROUP))
        .applyInArrow(score, from_arrow_schema(spark_rows))
        .persist(StorageLevel.DISK_ONLY)
    )
    try:
        contrib = _columns(spark_rows, CONTRIB)
        rows_dir = work_dir / "rows"
        started = time.perf_counter()
        # a file: URI, so that Spark writes where the driver reads (not to a default HDFS/DBFS)
        scored.select(*rows.names, *contrib).write.parquet(rows_dir.resolve().as_uri())
        log.info(f"Spark scored and explained {n_open:,} leads in {_since(started)}")
        paths = score_paths(job.out_dir)
        write_score_files(rows_dir, paths, rows, contrib, job)
        log.info(f"scores.parquet and scores.csv written by the driver ({_since(started)})")
        shutil.rmtree(rows_dir)
        target = settings.spark.parts_dir or (job.out_dir / PARTS_DIR).resolve().as_uri()
        row_types = pa.schema(spark_rows.field(n) for n in rows.names)
        write_parts(scored, rows, row_types, target)
        log.info(f"{target} written by Spark ({_since(started)})")
        if settings.spark.parts_dir is None:  # a configured location (a URI) is logged only
            paths = {**paths, "scores_parts": job.out_dir / PARTS_DIR}
        (n_explore, n_dormant, n_events), grades, hist, owners = _aggregates(scored, job)
        top = scored.orderBy(F.desc("score"), F.asc("lead_id")).limit(REPORT_MAX_ROWS)
        top_rows = frame_in_dtypes(top.select(*rows.names).toArrow(), rows)
        feature_cols = _columns(spark_rows, FEATURE)
        drift = scored.filter(F.col(DRIFT)).select(*feature_cols, "score").toArrow()
        drift_features = frame_in_dtypes(
            drift.rename_columns([c.removeprefix(FEATURE) for c in drift.column_names]),
            features,
        )
        drift_scores = drift.column("score").to_numpy()
        log.info(f"counts, top rows and drift sample from Spark ({_since(started)})")
    finally:
        with contextlib.suppress(Py4JError, ConnectionError):
            scored.unpersist()
    run = ChunkedRun(
        top=top_rows.reset_index(drop=True),
        n_explore=n_explore,
        n_dormant=n_dormant,
        grade_counts=grades,
        score_hist=hist,
        owners=owners,
        drift_features=drift_features,
        drift_scores=drift_scores,
        paths=paths,
    )
    return run, n_events


def score_with_spark(
    job: ScoringJob, progress: Callable[[int, int], None] | None = None
) -> ScoredLeads:
    """The Spark engine as a scorer of `run_scoring` (see the module's docstring)."""
    spark = spark_session(job.settings.spark)
    tally = LeadTally()
    source = str(job.leads_path or job.settings.data.leads)
    kept: list[DataFrame] = []  # persisted by Spark while the run needs them
    events = None
    try:
        leads, snapshots = read_open_leads(spark, job, source, tally, kept)
        n_open = leads.count()
        job.open_leads_read(tally, n_open)
        if job.bundle.spec.has_activities and job.acts_path is not None:
            events = read_events(spark, job, str(job.acts_path), tally, kept)
            log.info(f"activities of {job.acts_path} read by Spark")
        job.lap("activities")
        warnings = job.checked(tally)
        files = is_file_source(source) and (
            job.acts_path is None or is_file_source(str(job.acts_path))
        )
        with tempfile.TemporaryDirectory(dir=job.out_dir, prefix=".spark-") as work:
            previous = job.previous_run(Path(work) if files else None)
            run, n_events = score_open_leads(
                spark, job, leads, events, snapshots, n_open, previous, Path(work)
            )
    finally:
        for frame in kept:  # best effort: a lost JVM must not hide the error that lost it
            with contextlib.suppress(Py4JError, ConnectionError):
                frame.unpersist()
    if progress is not None:
        progress(n_open, n_open)
    return ScoredLeads(run, tally, n_open, n_events, events is not None, warnings)
