"""The chunk loop: score, write scores.parquet and scores.csv, keep what reports and drift need.

The two score files are for machines (a CRM import, a warehouse): their text uses ASCII signs
("-2.3 pts", not the typographic minus the reports show; "..." for a cut value), an empty text
is a missing value (an empty CSV field, a Parquet null), and every reason comes with its feature
group and its points beside it (`reason_pos_1_code`, `reason_pos_1_points`, ...). Parquet also
has `reasons`, each lead's reasons as a list of (code, points, text), strongest for first, then
strongest against. Both files hold the same columns and values otherwise; `model_version` is
text in both (a CSV reader should be told so: it looks like a number).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.config import Settings
from leadscore.data.features import ActivityStats
from leadscore.data.io import atomic_path
from leadscore.errors import ScoringError
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.safe_text import safe_text
from leadscore.reporting.summary import OwnerSummary, owner_labels, owner_summaries
from leadscore.scoring.predict import REASON_COLUMN, label_chunk, score_chunk
from leadscore.scoring.stream import Part, iter_chunks
from leadscore.scoring.tracking import ModelRef
from leadscore.scoring.trend import (
    CONTRIBUTIONS_PARQUET,
    SCORES_PARQUET,
    PreviousRun,
    TrendRule,
    contributions_table,
    trend_columns,
)

SCORES_CSV = "scores.csv"
DRIFT_SAMPLE_ROWS = 100_000
UNGUARDED_COLUMNS = ("grade", "trend")  # text columns whose values are known to be safe
REASONS_LIST = "reasons"  # the Parquet list column of each lead's reasons
REASON_TYPE = pa.struct([("code", pa.string()), ("points", pa.float64()), ("text", pa.string())])
# typographic signs of the reasons, as CSV importers read them safely
ASCII_SIGNS = {"\u2212": "-", "\u2026": "...", "\u2013": "-", "\u00d7": "x"}


@dataclass(frozen=True)
class ChunkedRun:
    """What the chunk loop keeps: the top rows for reports, counts, a sample for drift."""

    top: pd.DataFrame
    n_explore: int
    n_dormant: int
    grade_counts: dict[str, int]
    score_hist: np.ndarray
    owners: tuple[OwnerSummary, ...]  # per owner, counted over every lead (with an owner column)
    drift_features: pd.DataFrame
    drift_scores: np.ndarray
    paths: dict[str, Path]


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy with the formula guard on every text column a spreadsheet could misread."""
    safe = table.copy()
    for col in safe.columns:
        if pd.api.types.is_string_dtype(safe[col]) and col not in UNGUARDED_COLUMNS:
            safe[col] = safe_text(safe[col])
    return safe


def machine_rows(out: pd.DataFrame) -> pd.DataFrame:
    """The rows as the score files hold them: ASCII signs in the sentences, empty text missing."""
    rows = out.copy()
    for col in rows.columns:
        values = rows[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype("string[pyarrow]")  # vectorised string operations
        if REASON_COLUMN.fullmatch(str(col)) or col == "trend_reason":
            for sign, ascii_sign in ASCII_SIGNS.items():
                text = text.str.replace(sign, ascii_sign, regex=False)
        rows[col] = text.mask(text.eq(""))
    return rows


def reasons_list(rows: pd.DataFrame) -> pa.Array:
    """Each lead's reasons as a list of (code, points, text): for first, then against."""
    slots = [f"reason_{s}_{k}" for s in ("pos", "neg") for k in range(1, 100)]
    slots = [c for c in slots if f"{c}_code" in rows]
    if not slots:
        return pa.nulls(len(rows), pa.list_(REASON_TYPE))
    codes = np.stack([rows[f"{c}_code"].to_numpy(object, na_value=None) for c in slots], 1)
    points = np.stack([rows[f"{c}_points"].to_numpy(float) for c in slots], 1)
    texts = np.stack([rows[c].to_numpy(object, na_value=None) for c in slots], 1)
    valid = pd.notna(codes)
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    items = pa.StructArray.from_arrays(
        [
            pa.array(codes[valid], pa.string()),
            pa.array(points[valid], pa.float64()),
            pa.array(texts[valid], pa.string()),
        ],
        fields=list(REASON_TYPE),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), items, type=pa.list_(REASON_TYPE))


def score_tables(out: pd.DataFrame, schema: pa.Schema | None) -> tuple[pa.Table, pa.Table]:
    """The chunk's rows for scores.parquet (with the reasons list) and for scores.csv (formula
    guard on, no list), with `schema` (the first chunk's; None: this is the first chunk).

    Text columns are Arrow strings in every chunk, also when a chunk's values are all missing.
    """
    rows = machine_rows(out)

    def typed(frame: pd.DataFrame, target: pa.Schema | None) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if target is None:
            target = pa.schema(
                pa.field(f.name, pa.string())
                if pa.types.is_large_string(f.type) or pa.types.is_null(f.type)
                else f
                for f in table.schema
            )
        return table.cast(target.remove_metadata()).replace_schema_metadata(target.metadata)

    base = None if schema is None else schema.remove(schema.get_field_index(REASONS_LIST))
    table = typed(rows, base)
    table = table.append_column(pa.field(REASONS_LIST, pa.list_(REASON_TYPE)), reasons_list(rows))
    csv = typed(csv_safe(rows), table.schema.remove(table.schema.get_field_index(REASONS_LIST)))
    return table, csv


def owner_tally(
    out: pd.DataFrame, column: str | None, counts: dict[str, dict[str, int]], values: dict
) -> None:
    """Add the chunk's leads per owner and grade, and their expected value, to the totals."""
    if not column or column not in out:
        return
    owners = owner_labels(out[column])
    for (owner, grade), n in out.groupby([owners, out["grade"]]).size().items():
        mine = counts.setdefault(str(owner), {})
        mine[str(grade)] = mine.get(str(grade), 0) + int(n)
    ev = pd.to_numeric(out["expected_value"], errors="coerce")
    known = ev.notna()
    for owner, total in ev[known].groupby(owners[known]).sum().items():
        values[str(owner)] = values.get(str(owner), 0.0) + float(total)


def top_rows(top: pd.DataFrame, chunk: pd.DataFrame, keep: int) -> pd.DataFrame:
    """The `keep` highest-scored rows of both (ties by lead id)."""
    return (
        pd.concat([top, chunk])
        .sort_values(["score", "lead_id"], ascending=[False, True], kind="stable")
        .head(keep)
    )


def score_paths(out_dir: Path) -> dict[str, Path]:
    """Where a run writes its scores and its effects per reason group."""
    return {
        "scores_parquet": out_dir / SCORES_PARQUET,
        "scores_csv": out_dir / SCORES_CSV,
        "contributions": out_dir / CONTRIBUTIONS_PARQUET,
    }


class ScoreWriters:
    """scores.parquet, scores.csv and contributions.parquet written batch by batch, atomically:
    the files appear, complete, when the block ends without an error."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = paths
        self.n_rows = 0
        self._stack = ExitStack()
        self._writers: tuple | None = None

    def __enter__(self) -> ScoreWriters:
        stack = self._stack.__enter__()
        self._tmp = [stack.enter_context(atomic_path(self.paths[k])) for k in self.paths]
        return self

    def write(self, out: pd.DataFrame, contrib_pp: pd.DataFrame, as_of: pd.Timestamp) -> None:
        """Append scored rows (`score_part`'s `out`) and their effects."""
        schema = self._writers[0].schema if self._writers else None
        table, safe_table = score_tables(out, schema)
        effects = contributions_table(out["lead_id"], contrib_pp, as_of)
        if self._writers is None:
            pq_tmp, csv_tmp, effects_tmp = self._tmp
            self._writers = (
                pq.ParquetWriter(pq_tmp, table.schema, compression="zstd"),
                pacsv.CSVWriter(csv_tmp, safe_table.schema),
                pq.ParquetWriter(effects_tmp, effects.schema, compression="zstd"),
            )
        for writer, rows in zip(self._writers, (table, safe_table, effects), strict=True):
            writer.write_table(rows)
        self.n_rows += len(out)

    def __exit__(self, *exc) -> bool:
        try:
            if self._writers is not None:
                for writer in self._writers:
                    writer.close()
        finally:
            result = self._stack.__exit__(*exc)
        return bool(result)


@dataclass(frozen=True)
class ScoredPart:
    """One part of open leads scored and labelled: the rows as scores.parquet holds them (before
    the machine form), the model's inputs (for drift) and the headline effects (for the trend)."""

    out: pd.DataFrame
    features: pd.DataFrame
    contrib_pp: pd.DataFrame
    shown: pd.DataFrame  # the leads as they stand (true age), for the wording


def score_part(
    bundle: LeadScoreModel,
    leads: pd.DataFrame,
    stats: ActivityStats | None,
    settings: Settings,
    as_of: pd.Timestamp,
    ref: ModelRef,
    previous: PreviousRun | None,
    rule: TrendRule,
) -> ScoredPart:
    """Score, explain, trend and label some open leads: every row on its own, so the result
    does not depend on how the leads are cut into parts (the local and the Spark engine both
    call this)."""
    scored = score_chunk(bundle, leads, stats, settings)
    out = scored.out
    trend, reason = trend_columns(
        out["lead_id"],
        out[f"p_{bundle.headline_target}"].to_numpy(),
        scored.contrib_pp,
        scored.shown,
        bundle.spec,
        previous,
        ref,
        rule,
        as_of,
    )
    out = label_chunk(out, as_of, ref, settings.score.explore_share, trend, reason)
    return ScoredPart(out, scored.features, scored.contrib_pp, scored.shown)


def score_in_chunks(
    bundle: LeadScoreModel,
    parts: Iterable[Part],
    n: int,
    settings: Settings,
    as_of: pd.Timestamp,
    ref: ModelRef,
    previous: PreviousRun | None,
    out_dir: Path,
    keep_top: int,
    progress: Callable[[int, int], None] | None = None,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    on_chunk: Callable[[pd.DataFrame, ScoredPart], None] | None = None,
) -> ChunkedRun:
    """Score all `n` open leads chunk by chunk; write scores.parquet, scores.csv and
    contributions.parquet (the effects per reason group, for next run's trend) atomically.

    The trend compares with `previous` (None: no earlier run in the folder). `keep_top` rows
    (the highest scores) are kept for the reports; `progress(done, n)` is called after each
    chunk. `prepare` turns each chunk of leads into what the model reads (the accounts'
    attributes joined on); `on_chunk(leads, scored)` sees every scored chunk (account tallies).
    """
    drift_stride = max(1, n // DRIFT_SAMPLE_ROWS)
    top = pd.DataFrame()
    hist = np.zeros(101, np.int64)
    grades = dict.fromkeys("ABCD", 0)
    n_explore = n_dormant = 0
    drift_parts, drift_scores = [], []
    owner_counts: dict[str, dict[str, int]] = {}
    owner_values: dict[str, float] = {}
    rule = TrendRule.of(settings.score)
    paths = score_paths(out_dir)
    with ScoreWriters(paths) as writers:
        for start, part, part_stats in iter_chunks(parts, settings.score.chunk_size):
            stop = start + len(part)
            if prepare is not None:
                part = prepare(part)
            scored = score_part(bundle, part, part_stats, settings, as_of, ref, previous, rule)
            if on_chunk is not None:
                on_chunk(part, scored)
            out, features = scored.out, scored.features
            writers.write(out, scored.contrib_pp, as_of)
            n_explore += int(out["explore"].sum())
            n_dormant += int(out["dormant"].sum())
            for g, c in out["grade"].value_counts().items():
                grades[str(g)] += int(c)
            hist += np.bincount(out["score"].to_numpy(), minlength=101)[:101]
            owner_tally(out, settings.columns.owner, owner_counts, owner_values)
            top = top_rows(top, out, keep_top)
            keep = np.arange(start, stop)[(np.arange(start, stop) % drift_stride) == 0]
            drift_parts.append(features.iloc[keep - start])
            drift_scores.append(out["score"].to_numpy()[keep - start])
            if progress is not None:
                progress(stop, n)
        if not writers.n_rows:
            raise ScoringError(f"no lead is open at {as_of:%Y-%m-%d}: nothing to score")
    return ChunkedRun(
        top=top.reset_index(drop=True),
        n_explore=n_explore,
        n_dormant=n_dormant,
        grade_counts=grades,
        score_hist=hist,
        owners=owner_summaries(owner_counts, owner_values),
        drift_features=pd.concat(drift_parts),
        drift_scores=np.concatenate(drift_scores),
        paths=paths,
    )
