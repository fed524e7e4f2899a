"""Point-in-time training examples: (lead, snapshot date) pairs with labels and censoring.

A lead is *open* at `t` when it was created at or before `t` and no meeting, win or loss happened
at or before `t`. Snapshots fall at creation and then every `interval_days` while the lead is
open, up to `max_age_days` and the export date. Labels at `t`: the outcome happens in
`(t, t + window]`. The creation snapshot describes the lead as it arrived: every lead whose
outcomes are not before its creation has one, and an outcome at the creation time itself is its
label too (with dates only, a lead that converted the day it came in is a positive, not gone).
A snapshot whose window is not fully observed by the export date is left out for that target
(`require_full_window`, the default: keeping only the early positives and the early losses of
recent leads would bias their base rate upwards; with it off, only the snapshots with no outcome
yet are left out) — never counted as a negative.

Weekly snapshots multiply rows, so each lead keeps at most `max_per_lead` of its snapshots, drawn
at random (seeded), each weighted by how many it stands for; `max_examples` caps the total the same
way. Weighted, the kept rows estimate the same loss as all weekly snapshots, at a bounded cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.contract import LeadData
from leadscore.data.features import (
    SECONDS_PER_DAY,
    FeatureSpec,
    build_features,
    choose_activity_types,
)
from leadscore.data.schema import LABEL_PREFIX


@dataclass(frozen=True)
class Examples:
    """Training examples: keys, weights, one label column per target (NaN: censored), features."""

    frame: pd.DataFrame
    spec: FeatureSpec
    targets: tuple[str, ...]
    export_date: pd.Timestamp | None
    date_only: bool = False
    same_day_outcomes: dict[str, int] = field(default_factory=dict)

    def label(self, target: str) -> pd.Series:
        return self.frame[LABEL_PREFIX + target]

    def for_target(self, target: str) -> pd.DataFrame:
        """Rows with a known label for `target`."""
        return self.frame[self.label(target).notna()]


def feature_spec_for(data: LeadData, settings: Settings) -> FeatureSpec:
    """The feature spec a model trained on `data` will use."""
    types = choose_activity_types(data.activities, settings.features.max_activity_types)
    weekly = settings.has_time and data.activities is not None
    # the lead's age is a feature only with weekly snapshots: with one snapshot at creation it
    # would be 0 in every training row (and then mean nothing at scoring)
    return FeatureSpec(
        categorical=data.categorical,
        numeric=data.numeric,
        activity_types=types,
        windows_days=tuple(settings.features.windows_days),
        has_time=weekly,
        has_activities=weekly,
        monotone_activity=settings.features.monotone_activity,
    )


def closed_at(leads: pd.DataFrame) -> pd.Series:
    """When the lead stopped being open: its first meeting, win or loss (NaT: still open)."""
    cols = [c for c in ("meeting_at", "won_at", "lost_at") if c in leads]
    if not cols:
        return pd.Series(pd.NaT, index=leads.index, dtype="datetime64[ns]")
    return leads[cols].min(axis=1).astype("datetime64[ns]")


def is_open_at(leads: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Leads created by `as_of` with no meeting, win or loss at or before it."""
    closed = closed_at(leads)
    created = leads["created_at"] <= as_of if "created_at" in leads else True
    return created & (closed.isna() | (closed > as_of))


def _eligible_counts(leads: pd.DataFrame, settings: Settings, export: pd.Timestamp) -> np.ndarray:
    """Number of weekly snapshots k = 0, 1, ... each lead has while open."""
    snap = settings.snapshots
    step = snap.interval_days * SECONDS_PER_DAY
    created = leads["created_at"].to_numpy("datetime64[s]").astype(np.int64)
    closed = closed_at(leads).to_numpy("datetime64[s]")
    closed_s = np.where(np.isnat(closed), np.iinfo(np.int64).max, closed.astype(np.int64))
    export_s = np.datetime64(export, "s").astype(np.int64)
    # k * step <= export - created, k * step < closed - created, k * step <= max_age; the
    # creation snapshot (k = 0) also when the lead closed at its creation time (same day)
    by_export = np.floor_divide(export_s - created, step)
    by_closed = np.where(
        closed_s == np.iinfo(np.int64).max,
        np.iinfo(np.int64).max,
        np.floor_divide(closed_s - created - 1, step),
    )
    by_closed = np.where(closed_s >= created, np.maximum(by_closed, 0), by_closed)
    by_age = snap.max_age_days // snap.interval_days
    last_k = np.minimum(np.minimum(by_export, by_closed), by_age)
    return np.maximum(last_k + 1, 0)


def _sample_per_lead(
    counts: np.ndarray, max_per_lead: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row of lead, week index k, and weight for the kept snapshots of each lead."""
    lead_row = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(len(lead_row)) - starts
    weight = np.ones(len(lead_row))
    over = counts[lead_row] > max_per_lead
    if over.any():
        draw = rng.random(len(lead_row))
        order = np.lexsort((draw, lead_row))
        rank = np.empty(len(lead_row), dtype=np.int64)
        rank[order] = np.arange(len(lead_row)) - starts[order]
        keep = ~over | (rank < max_per_lead)
        weight = np.where(over, counts[lead_row] / max_per_lead, 1.0)
        lead_row, k, weight = lead_row[keep], k[keep], weight[keep]
    return lead_row, k, weight


def _cap_total(frame: pd.DataFrame, cap: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= cap:
        return frame
    keep = np.sort(rng.choice(len(frame), size=cap, replace=False))
    out = frame.iloc[keep].copy()
    out["weight"] = out["weight"] * (len(frame) / cap)
    return out


def snapshot_frame(data: LeadData, settings: Settings) -> pd.DataFrame:
    """Snapshot rows: the lead's columns plus `snapshot_at` and `weight`, in lead order."""
    leads = data.leads
    rng = np.random.default_rng(settings.snapshots.seed)
    if not settings.has_time:
        out = leads.copy()
        out["snapshot_at"] = pd.NaT
        out["weight"] = 1.0
        return out
    export = data.export_date
    counts = _eligible_counts(leads, settings, export)
    if data.activities is None:
        counts = np.minimum(counts, 1)
    lead_row, k, weight = _sample_per_lead(counts, settings.snapshots.max_per_lead, rng)
    out = leads.iloc[lead_row].reset_index(drop=True)
    step = pd.to_timedelta(k * settings.snapshots.interval_days, unit="D")
    out["snapshot_at"] = (out["created_at"] + step).astype("datetime64[ns]")
    out["weight"] = weight
    return _cap_total(out, settings.snapshots.max_examples, rng).reset_index(drop=True)


def _flag_label(snaps: pd.DataFrame, target: str) -> pd.Series:
    """Label from a yes/no column: only defined at the creation snapshot."""
    label = snaps[f"{target}_flag"].astype("float64")
    if "created_at" in snaps and snaps["snapshot_at"].notna().any():
        label = label.where(snaps["snapshot_at"] == snaps["created_at"])
    return label


def target_event(frame: pd.DataFrame, target: str) -> pd.Series:
    """When the target's outcome happened (a won deal counts as a meeting)."""
    if target == "meeting" and "won_at" in frame:
        return frame[["meeting_at", "won_at"]].min(axis=1)
    return frame[f"{target}_at"]


def label_target(
    snaps: pd.DataFrame, target: str, settings: Settings, export: pd.Timestamp | None
) -> pd.Series:
    """1.0 / 0.0 per snapshot, NaN where the outcome cannot be known yet (censored)."""
    if f"{target}_flag" in snaps:
        return _flag_label(snaps, target)
    event = target_event(snaps, target)
    if not settings.has_time:
        return event.notna().astype("float64")
    t = snaps["snapshot_at"]
    end = t + pd.Timedelta(days=settings.labels.window_days(target))
    # `>=`: only the creation snapshot can meet an outcome at its own time (a later snapshot
    # exists only while the lead is still open, so its outcomes come after it)
    positive = (event >= t) & (event <= end)
    known = end <= export
    if not settings.labels.require_full_window:
        lost = snaps["lost_at"] if "lost_at" in snaps else pd.Series(pd.NaT, index=snaps.index)
        known = known | positive | lost.notna()
    return positive.astype("float64").where(known)


def is_date_only(created: pd.Series) -> bool:
    """Creation times without a time of day (every one at midnight): a date-only export."""
    stamps = created.dropna()
    return bool(len(stamps)) and bool((stamps == stamps.dt.normalize()).all())


def same_day_outcomes(leads: pd.DataFrame, settings: Settings) -> dict[str, int]:
    """Per target with timestamps, the leads whose outcome fell on their creation date."""
    if not settings.has_time or "created_at" not in leads:
        return {}
    created = leads["created_at"]
    out = {}
    for target in settings.targets:
        if f"{target}_at" not in leads:
            continue
        event = target_event(leads, target)
        same = (event >= created) & (event.dt.normalize() == created.dt.normalize())
        out[target] = int(same.sum())
    return out


def build_examples(data: LeadData, settings: Settings, spec: FeatureSpec | None = None) -> Examples:
    """Point-in-time examples for every target the config defines."""
    spec = spec or feature_spec_for(data, settings)
    snaps = snapshot_frame(data, settings)
    labels = {
        LABEL_PREFIX + t: label_target(snaps, t, settings, data.export_date)
        for t in settings.targets
    }
    feats = build_features(snaps, data.activities, spec)
    keys = pd.DataFrame(
        {
            "lead_id": snaps["lead_id"],
            "snapshot_at": snaps["snapshot_at"],
            "created_at": snaps.get("created_at", pd.NaT),
            "weight": snaps["weight"].astype("float64"),
        }
    )
    extra = {c: snaps[c] for c in ("amount",) if c in snaps}
    frame = pd.concat([keys, pd.DataFrame(labels), pd.DataFrame(extra), feats], axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    date_only = settings.has_time and "created_at" in data.leads
    date_only = date_only and is_date_only(data.leads["created_at"])
    return Examples(
        frame,
        spec,
        settings.targets,
        data.export_date,
        date_only=date_only,
        same_day_outcomes=same_day_outcomes(data.leads, settings),
    )


def scoring_snapshots(leads: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """One snapshot per lead open at `as_of`, and the number of leads skipped as not open."""
    if "created_at" in leads:
        open_mask = is_open_at(leads, as_of).to_numpy(bool)
    else:
        open_mask = np.ones(len(leads), bool)
    for flag in ("meeting_flag", "won_flag"):  # data without times: a yes closes the lead
        if flag in leads:
            open_mask &= ~(leads[flag] == 1).to_numpy(bool)
    out = leads[open_mask].copy()
    out["snapshot_at"] = pd.Timestamp(as_of)
    return out.reset_index(drop=True), int((~open_mask).sum())
