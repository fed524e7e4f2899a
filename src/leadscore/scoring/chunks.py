"""The chunk loop: score, write scores.parquet and scores.csv, keep what reports and drift need."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.config import Settings
from leadscore.data.io import atomic_path
from leadscore.errors import ScoringError
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.safe_text import safe_text
from leadscore.scoring.predict import label_chunk, score_chunk
from leadscore.scoring.stream import Part, iter_chunks
from leadscore.scoring.tracking import ModelRef

SCORES_PARQUET = "scores.parquet"
SCORES_CSV = "scores.csv"
DRIFT_SAMPLE_ROWS = 100_000
UNGUARDED_COLUMNS = ("grade", "trend")  # text columns whose values are known to be safe


@dataclass(frozen=True)
class ChunkedRun:
    """What the chunk loop keeps: the top rows for reports, counts, a sample for drift."""

    top: pd.DataFrame
    n_explore: int
    grade_counts: dict[str, int]
    score_hist: np.ndarray
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


def top_rows(top: pd.DataFrame, chunk: pd.DataFrame, keep: int) -> pd.DataFrame:
    """The `keep` highest-scored rows of both (ties by lead id)."""
    return (
        pd.concat([top, chunk])
        .sort_values(["score", "lead_id"], ascending=[False, True], kind="stable")
        .head(keep)
    )


def score_in_chunks(
    bundle: LeadScoreModel,
    parts: Iterable[Part],
    n: int,
    settings: Settings,
    as_of: pd.Timestamp,
    ref: ModelRef,
    previous: pd.DataFrame | None,
    out_dir: Path,
    keep_top: int,
    progress: Callable[[int, int], None] | None = None,
) -> ChunkedRun:
    """Score all `n` open leads chunk by chunk; write scores.parquet and scores.csv atomically.

    `keep_top` rows (the highest scores) are kept for the reports; `progress(done, n)` is called
    after each chunk.
    """
    drift_stride = max(1, n // DRIFT_SAMPLE_ROWS)
    top = pd.DataFrame()
    hist = np.zeros(101, np.int64)
    grades = dict.fromkeys("ABCD", 0)
    n_explore = 0
    drift_parts, drift_scores = [], []
    paths = {"scores_parquet": out_dir / SCORES_PARQUET, "scores_csv": out_dir / SCORES_CSV}
    with (
        atomic_path(paths["scores_parquet"]) as pq_tmp,
        atomic_path(paths["scores_csv"]) as csv_tmp,
    ):
        pq_writer = csv_writer = None
        for start, part, part_stats in iter_chunks(parts, settings.score.chunk_size):
            stop = start + len(part)
            out, features = score_chunk(bundle, part, part_stats, settings)
            out = label_chunk(out, as_of, ref, previous, settings.score.explore_share)
            table = pa.Table.from_pandas(out, preserve_index=False)
            safe_table = pa.Table.from_pandas(csv_safe(out), preserve_index=False)
            if pq_writer is None:
                pq_writer = pq.ParquetWriter(pq_tmp, table.schema, compression="zstd")
                csv_writer = pacsv.CSVWriter(csv_tmp, safe_table.schema)
            pq_writer.write_table(table)
            csv_writer.write_table(safe_table)
            n_explore += int(out["explore"].sum())
            for g, c in out["grade"].value_counts().items():
                grades[str(g)] += int(c)
            hist += np.bincount(out["score"].to_numpy(), minlength=101)[:101]
            top = top_rows(top, out, keep_top)
            keep = np.arange(start, stop)[(np.arange(start, stop) % drift_stride) == 0]
            drift_parts.append(features.iloc[keep - start])
            drift_scores.append(out["score"].to_numpy()[keep - start])
            if progress is not None:
                progress(stop, n)
        if pq_writer is None:
            raise ScoringError(f"no lead is open at {as_of:%Y-%m-%d}: nothing to score")
        pq_writer.close()
        csv_writer.close()
    return ChunkedRun(
        top=top.reset_index(drop=True),
        n_explore=n_explore,
        grade_counts=grades,
        score_hist=hist,
        drift_features=pd.concat(drift_parts),
        drift_scores=np.concatenate(drift_scores),
        paths=paths,
    )
