"""The trend since the previous run in the same folder: how the headline probability moved, and why.

Each run writes, beside `scores.parquet`, `contributions.parquet`: per lead its effect per reason
group in percentage points of the headline probability (`Explanation.contrib_pp`, float32).
When a folder is scored for a later as-of date, the run already there is kept as
`previous_scores.parquet` and `previous_contributions.parquet` before the new one is written.

Rules, per lead (P is the headline probability as written, rounded to 6 decimals):

* ``new``: not scored in the previous run; ``model_changed``: scored by another model then
  (another training run or version) and that date could not be rescored with this one (the
  scorer rescores it first: `leadscore.scoring.rescore`), so the two are not compared;
* ``up`` / ``down``: P moved by at least ``score.trend_min_points`` percentage points AND by at
  least ``score.trend_min_relative`` of last run's P, in that direction (the sign of the change);
* ``steady`` otherwise; an empty trend when the folder holds no earlier run.

``trend_reason`` names, for ``up`` and ``down``, the reason group whose effect moved most in
the trend's direction, as the group's fact now with the change in points: "No activity for 21
days: -3.1 pts since last week". Under one model the effects add up to P minus the same base
rate, so the changes of all groups add up to the change in P and the largest one in the
trend's direction always exists.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.config import Score
from leadscore.data.features import FeatureSpec
from leadscore.data.io import atomic_path
from leadscore.scoring.reasons import group_phrases
from leadscore.scoring.tracking import ModelRef

log = logging.getLogger(__name__)

SCORES_PARQUET = "scores.parquet"
CONTRIBUTIONS_PARQUET = "contributions.parquet"
PREVIOUS_SCORES = "previous_scores.parquet"
PREVIOUS_CONTRIBUTIONS = "previous_contributions.parquet"
AS_OF_KEY = b"leadscore.as_of"  # schema metadata of contributions.parquet: the run's as-of date
NEW, UP, DOWN, STEADY, MODEL_CHANGED = "new", "up", "down", "steady", "model_changed"
TREND_VALUES = ("", NEW, UP, DOWN, STEADY, MODEL_CHANGED)


@dataclass(frozen=True)
class TrendRule:
    """How far the headline probability must move to be a trend (both must hold)."""

    min_relative: float = 0.2  # share of last run's probability
    min_points: float = 0.5  # percentage points

    @classmethod
    def of(cls, score: Score) -> TrendRule:
        return cls(score.trend_min_relative, score.trend_min_points)


@dataclass(frozen=True)
class PreviousRun:
    """The earlier run kept in the output folder: its leads, probabilities and effects.

    ``contributions`` (rows in ``lead_ids`` order, one float32 column per group of ``groups``)
    is None when that run kept none (older versions) or the file does not belong to it; ``p`` is
    None when it has no column for the headline target.
    """

    as_of: pd.Timestamp
    lead_ids: pd.Index
    p: np.ndarray | None
    model_version: str
    run_id: str
    groups: tuple[str, ...] = ()
    contributions: np.ndarray | None = None

    def rows_of(self, lead_ids: pd.Series) -> np.ndarray:
        """Each lead's row in this run, -1 where it was not scored."""
        return self.lead_ids.get_indexer(lead_ids.to_numpy(dtype=object))


def _first_as_of(path: Path) -> pd.Timestamp | None:
    """The as-of date of a scores file (its first row), None when it has no rows."""
    file = pq.ParquetFile(path)
    if file.metadata.num_rows == 0:
        return None
    values = file.read_row_group(0, columns=["as_of"]).column("as_of")
    return pd.Timestamp(values[0].as_py())


def keep_previous_run(out_dir: Path, as_of: pd.Timestamp) -> None:
    """When the folder holds a run for an earlier date, keep it as the previous run.

    A rerun for the same date keeps the previous run it had, so its trend is the same.
    """
    current = out_dir / SCORES_PARQUET
    if not current.exists():
        return
    before = _first_as_of(current)
    if before is None or before >= as_of:
        return
    with atomic_path(out_dir / PREVIOUS_SCORES) as tmp:
        shutil.copyfile(current, tmp)
    effects = out_dir / CONTRIBUTIONS_PARQUET
    if effects.exists():
        with atomic_path(out_dir / PREVIOUS_CONTRIBUTIONS) as tmp:
            shutil.copyfile(effects, tmp)
    else:
        (out_dir / PREVIOUS_CONTRIBUTIONS).unlink(missing_ok=True)


def read_previous_run(out_dir: Path, as_of: pd.Timestamp, headline: str) -> PreviousRun | None:
    """The previous run kept in `out_dir` (see `keep_previous_run`), if it is before `as_of`."""
    path = out_dir / PREVIOUS_SCORES
    if not path.exists():
        return None
    p_col = f"p_{headline}"
    names = set(pq.read_schema(path).names)
    wanted = ["lead_id", "as_of", *(c for c in ("model_version", "run_id", p_col) if c in names)]
    table = pq.read_table(path, columns=wanted)
    if table.num_rows == 0:
        return None
    before = pd.Timestamp(table.column("as_of")[0].as_py())
    if before >= as_of:
        return None
    first = {c: table.column(c)[0].as_py() for c in ("model_version", "run_id") if c in names}
    ids = table.column("lead_id").combine_chunks().cast(pa.large_string())
    lead_ids = pd.Index(ids.to_numpy(zero_copy_only=False), dtype=object)
    p = table.column(p_col).to_numpy().astype(np.float64) if p_col in names else None
    groups, effects = _previous_contributions(out_dir, before, ids)
    return PreviousRun(
        as_of=before,
        lead_ids=lead_ids,
        p=p,
        model_version=str(first.get("model_version") or ""),
        run_id=str(first.get("run_id") or ""),
        groups=groups,
        contributions=effects,
    )


def _previous_contributions(
    out_dir: Path, as_of: pd.Timestamp, lead_ids: pa.Array
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """Groups and effects of the previous run, when its contributions file is there and its own."""
    path = out_dir / PREVIOUS_CONTRIBUTIONS
    if not path.exists():
        return (), None
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    own = meta.get(AS_OF_KEY) == f"{as_of:%Y-%m-%d}".encode() and table.num_rows == len(lead_ids)
    ids = table.column("lead_id").combine_chunks().cast(pa.large_string())
    if not own or not ids.equals(lead_ids):
        log.warning(f"{path.name} does not match {PREVIOUS_SCORES}: trend reasons left out")
        return (), None
    groups = tuple(n for n in table.column_names if n != "lead_id")
    effects = np.empty((table.num_rows, len(groups)), dtype=np.float32)
    for j, g in enumerate(groups):
        effects[:, j] = table.column(g).to_numpy()
    return groups, effects


def contributions_table(
    lead_ids: pd.Series, contrib_pp: pd.DataFrame, as_of: pd.Timestamp
) -> pa.Table:
    """One chunk of contributions.parquet: lead_id and a float32 column per group (pts)."""
    columns = {"lead_id": pa.array(lead_ids.to_numpy(dtype=object), type=pa.string())}
    for group in contrib_pp.columns:
        columns[str(group)] = pa.array(contrib_pp[group].to_numpy(np.float32))
    table = pa.table(columns)
    return table.replace_schema_metadata({AS_OF_KEY: f"{as_of:%Y-%m-%d}".encode()})


def same_model(previous: PreviousRun, ref: ModelRef) -> bool:
    """Whether the previous run was scored by this model (its training run, else its version)."""
    if previous.p is None:
        return False
    if previous.run_id and ref.run_id:
        return previous.run_id == ref.run_id
    return previous.model_version == ref.version


def trend_labels(p_now: np.ndarray, p_before: np.ndarray, rule: TrendRule) -> np.ndarray:
    """'up' / 'down' where P moved far enough (both rules) in that direction, else 'steady'."""
    change = np.asarray(p_now, np.float64) - np.asarray(p_before, np.float64)
    size = np.abs(change)
    far = np.round(100 * size, 9) >= rule.min_points
    far &= np.round(size, 9) >= np.round(rule.min_relative * np.asarray(p_before), 9)
    return np.select([far & (change > 0), far & (change < 0)], [UP, DOWN], STEADY)


def since_text(as_of: pd.Timestamp, before: pd.Timestamp) -> str:
    """ "since last week" for a run 7 days before, else "since YYYY-MM-DD"."""
    days = (as_of.normalize() - before.normalize()).days
    return "since last week" if days == 7 else f"since {before:%Y-%m-%d}"


def trend_reasons(
    trend: np.ndarray,
    change_pp: np.ndarray,
    groups: list[str],
    features: pd.DataFrame,
    spec: FeatureSpec,
    since: str,
) -> np.ndarray:
    """Per row, the group whose effect moved most in the trend's direction, in words.

    ``change_pp`` is the effect now minus the effect then (rows x groups, points); rows that
    are neither up nor down get an empty reason. ``features`` give the facts (the lead now).
    """
    out = np.full(len(trend), "", dtype=object)
    up, down = trend == UP, trend == DOWN
    if not (up.any() or down.any()):
        return out
    change = np.nan_to_num(change_pp, nan=0.0)
    pick = np.where(up, np.argmax(change, axis=1), np.argmin(change, axis=1))
    moved = np.take_along_axis(change, pick[:, None], axis=1)[:, 0]
    sign = np.where(up, "+", "-").astype(object)
    for j, group in enumerate(groups):
        rows = np.flatnonzero((up | down) & (pick == j))
        if rows.size == 0:
            continue
        facts = group_phrases(str(group), features.iloc[rows], spec)
        points = np.array([f"{v:.1f}" for v in np.abs(moved[rows])], dtype=object)
        out[rows] = facts + ": " + sign[rows] + points + f" pts {since}"
    return out


def trend_columns(
    lead_ids: pd.Series,
    p_now: np.ndarray,
    contrib_pp: pd.DataFrame,
    features: pd.DataFrame,
    spec: FeatureSpec,
    previous: PreviousRun | None,
    ref: ModelRef,
    rule: TrendRule,
    as_of: pd.Timestamp,
) -> tuple[pd.Series, pd.Series]:
    """The ``trend`` and ``trend_reason`` columns of one chunk of scores (see the module doc)."""
    n = len(lead_ids)
    trend = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    if previous is not None:
        rows = previous.rows_of(lead_ids)
        seen = rows >= 0
        trend[~seen] = NEW
        if not same_model(previous, ref):
            trend[seen] = MODEL_CHANGED
            reason[seen] = _model_changed_text(previous, ref)
        elif seen.any():
            idx = np.flatnonzero(seen)
            trend[idx] = trend_labels(np.asarray(p_now)[idx], previous.p[rows[idx]], rule)
            if previous.contributions is not None and tuple(contrib_pp.columns) == previous.groups:
                now = contrib_pp.to_numpy(np.float64)[idx]
                change = now - previous.contributions[rows[idx]].astype(np.float64)
                since = since_text(as_of, previous.as_of)
                reason[idx] = trend_reasons(
                    trend[idx], change, list(contrib_pp.columns), features.iloc[idx], spec, since
                )
    index = lead_ids.index
    return (
        pd.Series(trend, index=index, dtype="string"),
        pd.Series(reason, index=index, dtype="string"),
    )


def _model_changed_text(previous: PreviousRun, ref: ModelRef) -> str:
    """Why a lead scored before has no up/down: another model scored it then."""
    if previous.model_version and ref.version and previous.model_version != ref.version:
        return (
            f"New model (version {ref.version}, was {previous.model_version}): "
            "not compared with the last run"
        )
    return "New model since the last run: not compared"
