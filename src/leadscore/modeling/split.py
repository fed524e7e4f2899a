"""Validation splits that respect time: train on the past, validate on the newest leads.

Each target is split on its own labelled rows (labels are censored differently per target). With
creation timestamps, the newest `validation_share` of the time range spanned by those rows' lead
creation times is held out: a lead created at or after the cutoff is a validation lead, every
other lead is a training lead, and training keeps only snapshots dated before the cutoff, so no
lead is on both sides and nothing the model trains on is dated inside the validation period. The
training side is split the same way again: its newest `calibration_share` is the slice used for
early stopping and calibration.

Without timestamps there is no time to respect: leads are split at random, stratified by their
label and seeded, and the split says so (`method="stratified_random"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from leadscore.data.schema import LABEL_PREFIX

TIME = "time"
STRATIFIED_RANDOM = "stratified_random"
SplitMethod = Literal["time", "stratified_random"]


@dataclass(frozen=True)
class TargetSplit:
    """Row labels (of the examples frame) on each side of one target's split.

    `fit` trains the booster, `calibration` (the newest part of training) stops boosting early
    and fits the calibrator, `validation` (the newest leads) is for evaluation only.
    """

    target: str
    method: SplitMethod
    fit: pd.Index
    calibration: pd.Index
    validation: pd.Index
    validation_cutoff: pd.Timestamp | None = None
    calibration_cutoff: pd.Timestamp | None = None

    @property
    def train(self) -> pd.Index:
        """Every training row: fit and calibration."""
        return self.fit.append(self.calibration)

    def counts(self) -> dict[str, int]:
        """Number of rows on each side."""
        return {
            "fit_rows": len(self.fit),
            "calibration_rows": len(self.calibration),
            "train_rows": len(self.fit) + len(self.calibration),
            "validation_rows": len(self.validation),
        }


def time_cutoff(created_at: pd.Series, share: float) -> pd.Timestamp:
    """The time at which the newest `share` of the range of `created_at` begins."""
    created = pd.to_datetime(created_at).dropna()
    if created.empty:
        raise ValueError("no creation times to split on")
    start, end = created.min(), created.max()
    return start + (end - start) * (1.0 - share)


def time_split(
    frame: pd.DataFrame, share: float, cutoff: pd.Timestamp | None = None
) -> tuple[pd.Index, pd.Index, pd.Timestamp]:
    """Split rows by lead creation time: (earlier rows, newest rows, cutoff).

    Rows of leads created at or after the cutoff are on the newest side. Rows of earlier leads
    are on the earlier side only when their snapshot is dated before the cutoff; their later
    snapshots are dropped. `cutoff` defaults to `time_cutoff(frame["created_at"], share)`.
    """
    if cutoff is None:
        cutoff = time_cutoff(frame["created_at"], share)
    created = frame["created_at"]
    newest = (created >= cutoff).to_numpy(bool)
    earlier = (~newest) & (frame["snapshot_at"] < cutoff).to_numpy(bool)
    return frame.index[earlier], frame.index[newest], cutoff


def stratified_split(
    frame: pd.DataFrame, label: str, share: float, seed: int
) -> tuple[pd.Index, pd.Index]:
    """Split rows at random by lead, stratified by the lead's label: (rest, held-out share).

    A lead is positive when any of its rows is. Within each class, `round(share * leads)` leads
    (at least one when the class has two or more) are drawn, seeded, for the held-out side.
    """
    lead_label = frame.groupby("lead_id", sort=True, observed=True)[label].max()
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in sorted(lead_label.unique()):
        leads = lead_label.index[lead_label.to_numpy() == cls].to_numpy()
        n_held = round(share * len(leads))
        if len(leads) >= 2:
            n_held = min(max(n_held, 1), len(leads) - 1)
        held.append(rng.permutation(leads)[:n_held])
    held_leads = np.concatenate(held) if held else np.array([], dtype=object)
    is_held = frame["lead_id"].isin(held_leads).to_numpy(bool)
    return frame.index[~is_held], frame.index[is_held]


def split_target(
    frame: pd.DataFrame,
    target: str,
    validation_share: float,
    calibration_share: float,
    has_time: bool,
    seed: int = 0,
    validation_cutoff: pd.Timestamp | None = None,
) -> TargetSplit:
    """Split one target's labelled rows into fit, calibration and validation.

    `frame` holds at least `lead_id`, `created_at`, `snapshot_at` and `label_<target>`; rows with
    a missing label are ignored. A given `validation_cutoff` replaces the computed one (to
    evaluate on the same validation period as an earlier run).
    """
    label = LABEL_PREFIX + target
    rows = frame[frame[label].notna()]
    if not has_time:
        train, validation = stratified_split(rows, label, validation_share, seed)
        fit, calibration = stratified_split(rows.loc[train], label, calibration_share, seed + 1)
        return TargetSplit(target, STRATIFIED_RANDOM, fit, calibration, validation)
    train, validation, cutoff = time_split(rows, validation_share, validation_cutoff)
    if len(train) == 0:
        return TargetSplit(target, TIME, train, train, validation, cutoff, None)
    fit, calibration, cal_cutoff = time_split(rows.loc[train], calibration_share)
    return TargetSplit(target, TIME, fit, calibration, validation, cutoff, cal_cutoff)
