"""What happened to a scored cohort: the scores a run kept, and the outcomes known now.

A cohort is one scoring run: its `scores.parquet` (lead, grade, a probability per target) and
`manifest.json` (as-of date, the model that scored), read from a scoring output folder or from
each `as_of=YYYY-MM-DD/` entry of a score history. A lead *converted* for a target when the
data now dates its outcome at or before the as-of date plus the target's window (a won deal
counts as a meeting); the outcomes are observed up to the data's export date, so a cohort
whose window has not passed yet is partial, with the share of the window observed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.contract import LeadData
from leadscore.data.io import file_digest
from leadscore.data.snapshots import target_event
from leadscore.errors import BacktestError
from leadscore.scoring.history import MANIFEST_JSON, history_entries
from leadscore.scoring.trend import SCORES_PARQUET

log = logging.getLogger(__name__)

PROB_PREFIX = "p_"
NEEDED_COLUMNS = ("lead_id", "grade")


@dataclass(frozen=True)
class ScoredCohort:
    """The leads one scoring run scored: `scores` holds `lead_id`, `grade` and `p_<target>`."""

    as_of: pd.Timestamp
    folder: Path
    scores: pd.DataFrame = field(repr=False)
    model: dict[str, str] = field(default_factory=dict)  # name, version, run_id, uri
    digest: str = ""

    @property
    def targets(self) -> tuple[str, ...]:
        """Targets the scores hold a probability for."""
        return tuple(c.removeprefix(PROB_PREFIX) for c in self.scores if c.startswith(PROB_PREFIX))


@dataclass(frozen=True)
class CohortOutcomes:
    """One cohort's leads for one target, with what the data now says happened to them.

    `frame` holds the scored leads found in the data: `lead_id`, `grade`, `p` (the probability
    the run gave) and `converted`. `observed_until` is the data's export date.
    """

    cohort: ScoredCohort
    target: str
    window_days: int
    observed_until: pd.Timestamp
    frame: pd.DataFrame = field(repr=False)
    n_scored: int = 0
    n_missing: int = 0  # scored leads the data no longer holds
    n_before_as_of: int = 0  # converted at or before the as-of date, recorded after the scoring

    @property
    def window_end(self) -> pd.Timestamp:
        return self.cohort.as_of + pd.Timedelta(days=self.window_days)

    @property
    def observed_share(self) -> float:
        """Share of the window the data covers (1.0: the window has passed)."""
        seen = (self.observed_until - self.cohort.as_of) / pd.Timedelta(days=self.window_days)
        return float(np.clip(seen, 0.0, 1.0))

    @property
    def matured(self) -> bool:
        return self.observed_until >= self.window_end


# --- reading scored cohorts ------------------------------------------------------------------


def score_folders(dirs: Sequence[Path]) -> list[Path]:
    """Each folder holding a `scores.parquet`: the folder itself, or its history entries.

    Raises `BacktestError` for a folder that is missing or holds no scores.
    """
    out: list[Path] = []
    for folder in map(Path, dirs):
        if not folder.is_dir():
            raise BacktestError(f"{folder}: scores folder not found")
        if (folder / SCORES_PARQUET).is_file():
            out.append(folder)
            continue
        entries = [p for _, p in history_entries(folder) if (p / SCORES_PARQUET).is_file()]
        if not entries:
            raise BacktestError(
                f"{folder}: holds no scores (no {SCORES_PARQUET}, and no history entries "
                f"as_of=YYYY-MM-DD/ with one): pass a `leadscore score` output folder or its "
                "history folder"
            )
        out += entries
    return out


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_JSON
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BacktestError(f"{path}: unreadable manifest: {exc}") from exc


def _read_scores(path: Path) -> pd.DataFrame:
    """The columns a backtest needs from a scores file, lead ids as text."""
    try:
        names = pq.read_schema(path).names
        missing = [c for c in NEEDED_COLUMNS if c not in names]
        if missing:
            raise BacktestError(
                f"{path}: not a leadscore scores file: missing column(s) {', '.join(missing)}"
            )
        wanted = [*NEEDED_COLUMNS, *(c for c in names if c.startswith(PROB_PREFIX))]
        wanted += ["as_of"] if "as_of" in names else []
        frame = pq.read_table(path, columns=wanted).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise BacktestError(f"{path}: unreadable scores file: {exc}") from exc
    frame["lead_id"] = frame["lead_id"].astype("string")
    frame["grade"] = frame["grade"].astype("string")
    return frame


def _as_of(folder: Path, manifest: dict, scores: pd.DataFrame) -> pd.Timestamp:
    """The run's as-of date: from its manifest, else its scores, else the entry's name."""
    candidates = [manifest.get("as_of")]
    if "as_of" in scores and len(scores):
        candidates.append(scores["as_of"].iloc[0])
    candidates.append(folder.name.removeprefix("as_of="))
    for value in candidates:
        try:
            stamp = pd.Timestamp(value) if value is not None else None
        except (ValueError, TypeError):
            continue
        if stamp is not None and not pd.isna(stamp):
            return stamp.normalize()
    raise BacktestError(f"{folder}: cannot tell the scores' as-of date (no manifest, no as_of)")


def read_cohort(folder: Path) -> ScoredCohort:
    """The scoring run kept in `folder`."""
    folder = Path(folder)
    path = folder / SCORES_PARQUET
    scores = _read_scores(path)
    manifest = _read_manifest(folder)
    as_of = _as_of(folder, manifest, scores)
    model = {k: str(v) for k, v in (manifest.get("model") or {}).items() if v is not None}
    scores = scores.drop(columns=["as_of"], errors="ignore")
    return ScoredCohort(as_of, folder, scores, model, file_digest(path))


def read_cohorts(dirs: Sequence[Path]) -> list[ScoredCohort]:
    """Every cohort under `dirs`, oldest first; a scores file given twice is read once."""
    cohorts: dict[str, ScoredCohort] = {}
    for folder in score_folders(dirs):
        cohort = read_cohort(folder)
        if cohort.digest in cohorts:
            log.info(f"{folder}: same scores as {cohorts[cohort.digest].folder}, read once")
            continue
        cohorts[cohort.digest] = cohort
    return sorted(cohorts.values(), key=lambda c: (c.as_of, str(c.folder)))


# --- what happened since ---------------------------------------------------------------------


def outcome_times(data: LeadData, target: str) -> pd.Series | None:
    """When each lead's outcome for `target` happened (NaT: not yet), by lead id; None when the
    data dates no outcome for it (a yes/no flag, or no such column)."""
    leads = data.leads.drop_duplicates("lead_id")
    if f"{target}_at" not in leads:
        return None
    event = target_event(leads, target).astype("datetime64[ns]")
    return pd.Series(event.to_numpy(), index=pd.Index(leads["lead_id"].astype("string")))


def cohort_outcomes(
    cohort: ScoredCohort, events: pd.Series, target: str, window_days: int, until: pd.Timestamp
) -> CohortOutcomes:
    """The cohort's leads for `target` with `converted`: an outcome (`events`, by lead id)
    dated at or before the as-of date plus `window_days`. Leads the data lacks are counted and
    left out."""
    scores = cohort.scores
    found = scores["lead_id"].isin(events.index).to_numpy(bool)
    rows = scores[found]
    when = events.reindex(rows["lead_id"]).to_numpy()
    end = np.datetime64(cohort.as_of + pd.Timedelta(days=window_days), "ns")
    converted = ~np.isnat(when) & (when <= end)
    before = converted & (when <= np.datetime64(cohort.as_of, "ns"))
    frame = pd.DataFrame(
        {
            "lead_id": rows["lead_id"].to_numpy(),
            "grade": rows["grade"].to_numpy(),
            "p": rows[PROB_PREFIX + target].astype("float64").to_numpy(),
            "converted": converted,
        }
    )
    return CohortOutcomes(
        cohort=cohort,
        target=target,
        window_days=window_days,
        observed_until=until,
        frame=frame,
        n_scored=len(scores),
        n_missing=int((~found).sum()),
        n_before_as_of=int(before.sum()),
    )
