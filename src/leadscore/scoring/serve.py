"""The logged MLflow model's Python side: lead rows in the user's own columns in, and per lead
the values the weekly scorer writes out (probabilities, score, grade, reasons).

Input: one row per lead under the leads file's column names (the config's `columns` roles: the
id, the creation time, the deal amount, the attribute columns; `leadscore.data.model_input`),
plus the lead's activity either as a column `events` (a list per lead of mappings in the activity
log's column names, e.g. `{"occurred_at": "2026-10-30 14:02:00", "activity_type":
"pricing_page_view"}`) or as the model's activity aggregate columns (`act__<type>__<window>`,
`days_since_last_activity`) computed elsewhere. A missing attribute is a missing value; the
id, and the creation time when the model uses the lead's age, are required. The date to score
at is the param `as_of` (default: now, UTC); only events before it count.

Output: one row per input row, in order, with the columns and values of scores.parquet for
that lead at that date (`score_chunk` builds both: the same features, horizon, reasons and
ASCII text), except what needs a previous run or the registry (trend, model name and version).
Every row is scored as a lead open at `as_of`: outcome columns are not inputs.

Layering: this module needs the scorer (`scoring.predict`), while training, which logs the
model, lives in `modeling`, below `scoring`. The model is therefore logged "from code":
`modeling.tracking` hands MLflow the *path* of `scoring/pyfunc_model.py` (which sets
`LeadScorePyfunc` as the model) and copies the leadscore package in as the model's code; nothing
in `modeling` imports this module. Importing it imports mlflow (telemetry off unless turned on).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.contract import parse_leads
from leadscore.data.features import (
    RECENCY_FEATURE,
    SECONDS_PER_DAY,
    ActivityStats,
    FeatureSpec,
    add_events_at,
    empty_stats,
    to_seconds,
)
from leadscore.data.model_input import EVENTS_COLUMN
from leadscore.data.parse import parse_numbers, parse_timestamps, utc_naive
from leadscore.errors import ContractError, InputError, Problem
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.registry import (
    BUNDLE_ARTIFACT,
    SETTINGS_ARTIFACT,
    mlflow_module,
    read_bundle,
)
from leadscore.scoring.chunks import machine_rows
from leadscore.scoring.predict import explore_flags, score_chunk

log = logging.getLogger(__name__)
mlflow = mlflow_module()

INPUT = "model input"  # how problems name the input
AS_OF_PARAM = "as_of"
BAD_EVENT = "unparseable or missing timestamp, or missing activity type"
NO_ACTIVITY = (
    "no activity in the input (no 'events' column, no activity aggregate columns): every lead "
    "is scored as if it had no activity"
)
BOTH_ACTIVITY = "both 'events' and activity aggregate columns given: the aggregates are ignored"


def as_of_time(params: dict | None) -> pd.Timestamp:
    """The `as_of` param as naive UTC (a date is its midnight); now, to the second, without it."""
    raw = (params or {}).get(AS_OF_PARAM)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    try:
        when = utc_naive(raw)
    except (ValueError, TypeError) as exc:
        raise InputError(f"param as_of: not a date or time: {raw!r}") from exc
    if pd.isna(when):
        raise InputError(f"param as_of: not a date or time: {raw!r}")
    return when


def as_of_text(as_of: pd.Timestamp) -> str:
    """ "YYYY-MM-DD" for a midnight, else "YYYY-MM-DD HH:MM:SS"."""
    return f"{as_of:%Y-%m-%d}" if as_of == as_of.normalize() else f"{as_of:%Y-%m-%d %H:%M:%S}"


def input_roles(settings: Settings, spec: FeatureSpec, columns: pd.Index) -> dict[str, str]:
    """Role -> the user's column, for the roles the model reads: the id and, when the model
    uses the lead's age, the creation time (both required), and the deal amount when given."""
    cols = settings.columns
    roles = {"lead_id": cols.lead_id}
    if spec.has_time:
        if cols.created_at is None:
            raise InputError("the model uses the lead's age but the config has no created_at")
        roles["created_at"] = cols.created_at
    missing = [c for c in roles.values() if c not in columns]
    if missing:
        raise ContractError([Problem(INPUT, "missing column", c) for c in missing])
    if cols.amount and cols.amount in columns:
        roles["amount"] = cols.amount
    return roles


def parse_lead_rows(
    frame: pd.DataFrame, settings: Settings, spec: FeatureSpec, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The rows in canonical form, through the data contract (absent attributes are missing);
    a `ContractError` for bad values and for leads created after `as_of`, rows numbered from 1."""
    raw = frame.reset_index(drop=True)
    absent = [c for c in (*spec.categorical, *spec.numeric) if c not in raw]
    if absent:
        raw = raw.assign(**dict.fromkeys(absent, None))
    roles = input_roles(settings, spec, raw.columns)
    leads, problems = parse_leads(
        raw, roles, list(spec.categorical), list(spec.numeric), settings, INPUT
    )
    problems = [p if p.row is None else replace(p, row=p.row - 1) for p in problems]
    if "created_at" in leads:
        late = np.flatnonzero((leads["created_at"] > as_of).to_numpy(bool))
        problems += [
            Problem(
                INPUT,
                f"created after as_of ({as_of_text(as_of)}): not open then",
                roles["created_at"],
                int(r) + 1,
                str(leads["created_at"].iloc[r]),
                str(leads["lead_id"].iloc[r]),
            )
            for r in late
        ]
    if problems:
        raise ContractError(problems)
    return leads.assign(snapshot_at=as_of)


def _mapping(item: object) -> dict:
    """An event as a dict (a Spark Row has `asDict`)."""
    if isinstance(item, dict):
        return item
    if hasattr(item, "asDict"):
        return item.asDict()
    raise InputError(f"column '{EVENTS_COLUMN}': an event must be a mapping, not {item!r}")


def _event_list(cell: object) -> list:
    """The events of one lead: a list (or array) of mappings; missing is none."""
    if cell is None or (np.isscalar(cell) and pd.isna(cell)):
        return []
    if isinstance(cell, str | bytes | dict):
        raise InputError(f"column '{EVENTS_COLUMN}': each cell must be a list of events")
    return list(cell)


def event_stats(
    events: pd.Series, lead_ids: pd.Series, settings: Settings, spec: FeatureSpec, t: int
) -> ActivityStats:
    """Activity aggregates at `t` (seconds) from each row's list of events, by the scorer's
    event fold (`add_events_at`: only events before `t`, other types under all types)."""
    ac = settings.activity_columns
    lists = [_event_list(cell) for cell in events]
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    items = [_mapping(e) for e in itertools.chain.from_iterable(lists)]
    stats = empty_stats(len(lists), spec)
    if not items:
        return stats
    table = pd.DataFrame.from_records(items)
    missing = [c for c in (ac.occurred_at, ac.type) if c not in table]
    if missing:
        raise InputError(f"column '{EVENTS_COLUMN}': events need the key(s) {missing}")
    when = parse_timestamps(table[ac.occurred_at])
    kinds = table[ac.type].astype("string").str.strip()
    bad = (when.isna() | kinds.isna()).to_numpy(bool)
    if bad.any():
        raise ContractError(
            [
                Problem(
                    INPUT,
                    BAD_EVENT,
                    EVENTS_COLUMN,
                    int(rows[i]) + 1,
                    table.iloc[i].to_dict(),
                    str(lead_ids.iloc[rows[i]]),
                )
                for i in np.flatnonzero(bad)
            ]
        )
    codes = pd.Index(spec.activity_types).get_indexer(kinds).astype(np.int64)
    add_events_at(stats, t, rows, codes, to_seconds(when), spec)
    return stats


def aggregate_stats(frame: pd.DataFrame, spec: FeatureSpec, t: int) -> ActivityStats:
    """Activity aggregates from the model's aggregate columns (an absent count is 0; an absent
    or empty `days_since_last_activity` is no activity)."""
    stats = empty_stats(len(frame), spec)
    for k, kind in enumerate((*spec.activity_types, "all")):
        for j, window in enumerate((*spec.windows_days, None)):
            col = spec.activity_feature(kind, window)
            if col in frame:
                values = parse_numbers(frame[col].reset_index(drop=True)).fillna(0)
                stats.counts[:, k, j] = values.to_numpy().round().astype(np.int32)
    if RECENCY_FEATURE in frame:
        days = parse_numbers(frame[RECENCY_FEATURE].reset_index(drop=True)).to_numpy(float)
        known = np.isfinite(days)
        seconds = t - np.round(days[known] * SECONDS_PER_DAY).astype(np.int64)
        stats.last_seconds[known] = seconds
    return stats


def input_activity(
    frame: pd.DataFrame, lead_ids: pd.Series, settings: Settings, spec: FeatureSpec, t: int
) -> ActivityStats | None:
    """The rows' activity aggregates: from `events`, else from aggregate columns, else none."""
    if not spec.has_activities:
        return None
    if EVENTS_COLUMN in frame:
        if any(c in frame for c in spec.activity_columns):
            log.warning(BOTH_ACTIVITY)
        events = frame[EVENTS_COLUMN].reset_index(drop=True)
        return event_stats(events, lead_ids, settings, spec, t)
    if any(c in frame for c in spec.activity_columns):
        return aggregate_stats(frame, spec, t)
    log.warning(NO_ACTIVITY)
    return empty_stats(len(frame), spec)


def serving_settings(settings: Settings) -> Settings:
    """The training config without display and owner columns (the caller has them)."""
    columns = settings.columns.model_copy(update={"display": [], "owner": None})
    return settings.model_copy(update={"columns": columns})


def score_lead_rows(
    bundle: LeadScoreModel, settings: Settings, frame: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Per input row, the scorer's values for that lead at `as_of` (see the module docstring)."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if frame.empty:
        raise InputError("the model input has no rows")
    settings = serving_settings(settings)
    leads = parse_lead_rows(frame, settings, bundle.spec, as_of)
    t = int(to_seconds(pd.DatetimeIndex([as_of]))[0])
    stats = input_activity(frame, leads["lead_id"], settings, bundle.spec, t)
    out = score_chunk(bundle, leads, stats, settings).out
    out["explore"] = explore_flags(out["lead_id"], as_of, settings.score.explore_share)
    out["as_of"] = as_of_text(as_of)
    return machine_rows(out)


class LeadScorePyfunc(mlflow.pyfunc.PythonModel):
    """The logged model: the bundle and the training config, loaded from its artifacts.

    The config is validated when the model first predicts, not when it loads: the scorer loads
    older models for their bundle alone (`registry.load_bundle`), under a config schema that
    may have changed since. `model_input` is typed as a DataFrame: MLflow infers no schema from
    that hint and validates inputs against the model's explicit signature instead.
    """

    def load_context(self, context) -> None:
        self.bundle = read_bundle(context.artifacts[BUNDLE_ARTIFACT])
        self._config_file = Path(context.artifacts[SETTINGS_ARTIFACT])
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The training config (column roles, reason count, explore share, horizon)."""
        if self._settings is None:
            raw = json.loads(self._config_file.read_text(encoding="utf-8"))
            self._settings = Settings.model_validate(raw)
        return self._settings

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Scores, grades and reasons for each lead row (see the module docstring)."""
        return score_lead_rows(self.bundle, self.settings, model_input, as_of_time(params))
