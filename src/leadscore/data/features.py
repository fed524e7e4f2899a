"""One feature builder for training and scoring: a lead as it stands at a snapshot date.

Features at a snapshot `t` are the lead's attributes, its age at `t`, and aggregates of its
activities strictly before `t` (counts per type over each window, all-time counts, days since the
last activity). Aggregation is vectorised: events are sorted once on a (lead, type, time) key and
every count is a pair of binary searches, so millions of snapshots need no per-lead Python loop.

`LeadPreprocessor` is the scikit-learn step at the head of every model pipeline: it fixes the
category levels seen in training (unseen values at scoring map to "(other)", never an error) and
gives LightGBM safe column names, so training and scoring cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.data.schema import ACTIVITY_GROUP_PREFIX, MISSING

SECONDS_PER_DAY = 86_400
AGE_FEATURE = "days_since_created"
RECENCY_FEATURE = "days_since_last_activity"
ACTIVITY_PREFIX = "act__"
ALL_TYPES = "all"
OTHER = "(other)"
# the reason group of the lead's timeline: its age, days since its last activity and its
# activity counts over all types, which together say one thing ("Lead is 6 months old, no
# activity for 45 days") and would contradict each other as separate reasons
TIMELINE_GROUP = "lead:timeline"


def slug(text: str) -> str:
    """A name safe for LightGBM and file systems: letters, digits and underscores."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_") or "x"


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a model uses; fixed at training and stored with the model."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    activity_types: tuple[str, ...]
    windows_days: tuple[int, ...]
    has_time: bool  # the lead's age (days since created) is a feature
    has_activities: bool
    # activity counts may only raise the probability (LightGBM monotone constraints, +1);
    # False in specs stored before the setting existed (trained without constraints)
    monotone_activity: bool = False

    def activity_feature(self, activity_type: str, window: int | None) -> str:
        """Column name of a count: per type (or all types) over a window (None: all time)."""
        suffix = f"{window}d" if window is not None else "total"
        return f"{ACTIVITY_PREFIX}{slug(activity_type)}__{suffix}"

    @property
    def activity_columns(self) -> list[str]:
        if not self.has_activities:
            return []
        cols = []
        for kind in (*self.activity_types, ALL_TYPES):
            cols += [self.activity_feature(kind, w) for w in (*self.windows_days, None)]
        return [*cols, RECENCY_FEATURE]

    @property
    def columns(self) -> list[str]:
        """All feature columns, in model order."""
        age = [AGE_FEATURE] if self.has_time else []
        return [*self.categorical, *self.numeric, *age, *self.activity_columns]

    def monotone_constraints(self) -> list[int]:
        """LightGBM monotone constraints in `columns` order: +1 (more events never lower the
        probability) on every activity count when `monotone_activity`, else none (0)."""
        up = self.monotone_activity
        return [int(up and c.startswith(ACTIVITY_PREFIX)) for c in self.columns]

    def group_of(self, column: str) -> str:
        """The original thing a feature describes: an attribute column, an activity type (all
        its windows), or the lead's timeline (`TIMELINE_GROUP`: age, recency, all-type counts).

        Reasons are given once per group, never per encoded or derived column.
        """
        if column.startswith(ACTIVITY_PREFIX):
            kind = column[len(ACTIVITY_PREFIX) :].rsplit("__", 1)[0]
            for t in self.activity_types:
                if slug(t) == kind:
                    return f"{ACTIVITY_GROUP_PREFIX}{t}"
            return TIMELINE_GROUP
        if column in (AGE_FEATURE, RECENCY_FEATURE):
            return TIMELINE_GROUP
        return column

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> FeatureSpec:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def choose_activity_types(activities: pd.DataFrame | None, max_types: int) -> tuple[str, ...]:
    """The most frequent activity types (ties by name), at most `max_types`."""
    if activities is None or activities.empty:
        return ()
    counts = activities["activity_type"].value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(str(k) for k, _ in ranked[:max_types])


def to_seconds(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Timestamps as int64 seconds since the epoch (NaT is not allowed here)."""
    return np.asarray(values, dtype="datetime64[ns]").astype("datetime64[s]").astype(np.int64)


@dataclass(frozen=True)
class ActivityStats:
    """Activity aggregates for a set of snapshots (the scorer adds event batches in place)."""

    counts: np.ndarray  # (snapshots, types + 1, windows + 1) int32; last type = all types
    last_seconds: np.ndarray  # (snapshots,) int64; -1 where the lead had no activity before


def empty_stats(n_snapshots: int, spec: FeatureSpec) -> ActivityStats:
    shape = (n_snapshots, len(spec.activity_types) + 1, len(spec.windows_days) + 1)
    return ActivityStats(np.zeros(shape, np.int32), np.full(n_snapshots, -1, np.int64))


def activity_stats(
    snap_lead: np.ndarray,
    snap_seconds: np.ndarray,
    event_lead: np.ndarray,
    event_type: np.ndarray,
    event_seconds: np.ndarray,
    spec: FeatureSpec,
) -> ActivityStats:
    """Count events strictly before each snapshot, per type and window, and find the last one.

    Leads are integer codes shared by snapshots and events; `event_type` codes index
    `spec.activity_types` (-1: a type the model does not use, counted only under all types).
    """
    stats = empty_stats(len(snap_lead), spec)
    if len(event_lead) == 0 or len(snap_lead) == 0:
        return stats
    if _one_snapshot_per_lead_at_one_time(snap_lead, snap_seconds):
        return _stats_at_one_time(
            snap_lead, int(snap_seconds[0]), event_lead, event_type, event_seconds, spec
        )
    return _stats_by_search(snap_lead, snap_seconds, event_lead, event_type, event_seconds, spec)


def _stats_by_search(
    snap_lead: np.ndarray,
    snap_seconds: np.ndarray,
    event_lead: np.ndarray,
    event_type: np.ndarray,
    event_seconds: np.ndarray,
    spec: FeatureSpec,
) -> ActivityStats:
    """General path: sort events on a (lead, type, time) key, count by binary search."""
    stats = empty_stats(len(snap_lead), spec)
    n_types = len(spec.activity_types) + 1
    t0 = (
        int(min(event_seconds.min(), snap_seconds.min())) - max(spec.windows_days) * SECONDS_PER_DAY
    )
    span = int(max(event_seconds.max(), snap_seconds.max())) - t0 + 1
    ev_off = event_seconds.astype(np.int64) - t0
    snap_off = snap_seconds.astype(np.int64) - t0
    lead64 = event_lead.astype(np.int64)
    type64 = np.where(event_type < 0, n_types - 1, event_type).astype(np.int64)
    windows = [w * SECONDS_PER_DAY for w in spec.windows_days]

    def count(keys: np.ndarray, base: np.ndarray, out: np.ndarray) -> None:
        hi = np.searchsorted(keys, base + snap_off, side="left")
        for j, w in enumerate(windows):
            lo = np.searchsorted(keys, base + np.maximum(snap_off - w, 0), side="left")
            out[:, j] = hi - lo
        out[:, -1] = hi - np.searchsorted(keys, base, side="left")

    all_keys = np.sort(lead64 * span + ev_off)
    base = snap_lead.astype(np.int64) * span
    count(all_keys, base, stats.counts[:, -1, :])
    idx = np.searchsorted(all_keys, base + snap_off, side="left") - 1
    has_prev = (idx >= 0) & (all_keys[np.maximum(idx, 0)] >= base)
    stats.last_seconds[has_prev] = all_keys[idx[has_prev]] - base[has_prev] + t0
    if n_types > 1:
        typed = type64 < n_types - 1
        keys = np.sort((lead64[typed] * n_types + type64[typed]) * span + ev_off[typed])
        for k in range(n_types - 1):
            count(keys, (snap_lead.astype(np.int64) * n_types + k) * span, stats.counts[:, k, :])
    return stats


def _one_snapshot_per_lead_at_one_time(snap_lead: np.ndarray, snap_seconds: np.ndarray) -> bool:
    """The scoring case: every lead once, all at the as-of date."""
    return bool(
        (snap_seconds == snap_seconds[0]).all() and len(np.unique(snap_lead)) == len(snap_lead)
    )


def _stats_at_one_time(
    snap_lead: np.ndarray,
    t: int,
    event_lead: np.ndarray,
    event_type: np.ndarray,
    event_seconds: np.ndarray,
    spec: FeatureSpec,
) -> ActivityStats:
    """Same counts as the general path, without sorting: O(events) (the scoring fast path)."""
    n_snap = len(snap_lead)
    row_of_lead = np.full(int(max(snap_lead.max(), event_lead.max())) + 1, -1, np.int64)
    row_of_lead[snap_lead] = np.arange(n_snap)
    stats = empty_stats(n_snap, spec)
    add_events_at(stats, t, row_of_lead[event_lead], event_type, event_seconds, spec)
    return stats


def add_events_at(
    stats: ActivityStats,
    t: int,
    event_row: np.ndarray,
    event_type: np.ndarray,
    event_seconds: np.ndarray,
    spec: FeatureSpec,
) -> None:
    """Add events to aggregates taken at one time `t`, in place (the scorer's event stream).

    `event_row` is the stats row (snapshot) of each event, -1 for events of no snapshot; only
    events strictly before `t` count. Work is proportional to the events, not to the rows, so
    an event log can be folded in in small batches.
    """
    n_types, n_slots = len(spec.activity_types) + 1, len(spec.windows_days) + 1
    use = (event_seconds < t) & (event_row >= 0)
    row = event_row[use].astype(np.int64)
    seconds = event_seconds[use].astype(np.int64)
    kind = np.where(event_type < 0, n_types - 1, event_type)[use].astype(np.int64)
    age = t - seconds
    if not stats.counts.flags.c_contiguous:
        raise ValueError("activity counts must be one contiguous array to be added to in place")
    flat = stats.counts.reshape(-1)  # a view, so the additions land in `stats`
    one = np.ones(1, stats.counts.dtype)[0]
    typed = kind < n_types - 1
    limits = [w * SECONDS_PER_DAY for w in spec.windows_days] + [np.iinfo(np.int64).max]
    for j, limit in enumerate(limits):
        inside = age <= limit
        some = inside & typed
        np.add.at(flat, (row[some] * n_types + kind[some]) * n_slots + j, one)
        np.add.at(flat, (row[inside] * n_types + n_types - 1) * n_slots + j, one)
    np.maximum.at(stats.last_seconds, row, seconds)


def activity_frame(
    stats: ActivityStats, snap_seconds: np.ndarray, spec: FeatureSpec
) -> pd.DataFrame:
    """Turn aggregated stats into the activity feature columns (float32)."""
    data: dict[str, np.ndarray] = {}
    for k, kind in enumerate((*spec.activity_types, ALL_TYPES)):
        for j, w in enumerate((*spec.windows_days, None)):
            data[spec.activity_feature(kind, w)] = stats.counts[:, k, j].astype(np.float32)
    days = (snap_seconds - stats.last_seconds) / SECONDS_PER_DAY
    data[RECENCY_FEATURE] = np.where(stats.last_seconds >= 0, days, np.nan).astype(np.float32)
    return pd.DataFrame(data)


def encode_events(
    activities: pd.DataFrame, lead_index: pd.Index, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events as (lead code, type code, seconds); events of other leads are dropped."""
    lead = lead_index.get_indexer(activities["lead_id"])
    known = lead >= 0
    types = pd.Index(spec.activity_types).get_indexer(activities["activity_type"][known])
    seconds = to_seconds(activities["occurred_at"][known])
    return lead[known], types.astype(np.int64), seconds


def build_features(
    snapshots: pd.DataFrame,
    activities: pd.DataFrame | None,
    spec: FeatureSpec,
    stats: ActivityStats | None = None,
) -> pd.DataFrame:
    """Feature frame for snapshots (rows: lead_id, snapshot_at, created_at and attributes).

    The same function serves training (many snapshots per lead) and scoring (one per lead at the
    as-of date). Only events strictly before `snapshot_at` count. Row order and index are kept.
    `stats`, when given, are activity aggregates already computed for these rows (the scorer
    streams a large event log through `activity_stats` batch by batch and combines them).
    """
    out = pd.DataFrame(index=snapshots.index)
    for col in spec.categorical:
        out[col] = snapshots[col].astype("string") if col in snapshots else pd.NA
    for col in spec.numeric:
        out[col] = snapshots[col].astype("float64") if col in snapshots else np.nan
    if spec.has_time:
        age = (snapshots["snapshot_at"] - snapshots["created_at"]).dt.total_seconds()
        out[AGE_FEATURE] = (age / SECONDS_PER_DAY).astype("float32").to_numpy()
    if spec.has_activities:
        snap_seconds = to_seconds(snapshots["snapshot_at"])
        lead_index = pd.Index(pd.unique(snapshots["lead_id"]))
        snap_lead = lead_index.get_indexer(snapshots["lead_id"])
        if stats is not None:
            pass
        elif activities is None:
            stats = empty_stats(len(snapshots), spec)
        else:
            ev_lead, ev_type, ev_seconds = encode_events(activities, lead_index, spec)
            stats = activity_stats(snap_lead, snap_seconds, ev_lead, ev_type, ev_seconds, spec)
        acts = activity_frame(stats, snap_seconds, spec)
        acts.index = snapshots.index
        out = pd.concat([out, acts], axis=1)
    return out[spec.columns]


def hold_age(features: pd.DataFrame, horizon_days: float | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with every age beyond `horizon_days` held at it, and which rows were held.

    Training snapshots stop at `snapshots.max_age_days`, so a model never saw an older lead:
    scoring and the drift reference use the age at that horizon instead of extrapolating.
    """
    if horizon_days is None or AGE_FEATURE not in features:
        return features, np.zeros(len(features), bool)
    age = features[AGE_FEATURE].to_numpy()
    older = np.nan_to_num(age, nan=-np.inf) > horizon_days
    if not older.any():
        return features, older
    held = features.copy()
    held[AGE_FEATURE] = np.where(older, horizon_days, age).astype(age.dtype)
    return held, older


class LeadPreprocessor(TransformerMixin, BaseEstimator):
    """Fix category levels and column names learnt in training; first step of every pipeline.

    Categorical columns become pandas categoricals over the levels seen in training (the
    `max_categories` most frequent; rarer and unseen values become "(other)", missing values
    "(missing)"). Numeric columns become float32. Output columns get LightGBM-safe names;
    `input_feature_` maps each output column back to its original column. `typical_` keeps the
    mean of each activity count over the training rows (reasons word a count below it as such).
    """

    def __init__(self, categorical=(), numeric=(), max_categories: int = 50):
        self.categorical = categorical
        self.numeric = numeric
        self.max_categories = max_categories

    def fit(self, X: pd.DataFrame, y=None):
        self.categories_ = {}
        for col in self.categorical:
            values = X[col].astype("string").fillna(MISSING)
            counts = values.value_counts()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            keep = [str(k) for k, _ in ranked[: self.max_categories]]
            self.categories_[col] = sorted(set(keep) | {OTHER, MISSING})
        counts = [c for c in X.columns if str(c).startswith(ACTIVITY_PREFIX)]
        means = X[counts].apply(pd.to_numeric, errors="coerce").mean() if counts else {}
        self.typical_ = {str(c): float(v) for c, v in dict(means).items() if np.isfinite(v)}
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.output_names_ = _unique_slugs(list(X.columns))
        self.input_feature_ = dict(zip(self.output_names_, X.columns, strict=True))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "categories_")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing at transform: {missing}")
        out = {}
        for name, col in zip(self.output_names_, self.feature_names_in_, strict=True):
            if col in self.categories_:
                levels = self.categories_[col]
                values = X[col].astype("string").fillna(MISSING)
                values = values.where(values.isin(levels), OTHER)
                out[name] = pd.Categorical(values.to_numpy(object), categories=levels)
            else:
                out[name] = pd.to_numeric(X[col], errors="coerce").astype("float32").to_numpy()
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "output_names_")
        return np.asarray(self.output_names_, dtype=object)


def _unique_slugs(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        s = slug(name)
        if s in seen:
            seen[s] += 1
            s = f"{s}_{seen[s]}"
        else:
            seen[s] = 0
        out.append(s)
    return out
