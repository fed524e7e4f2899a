"""Time-ordered cross-validation folds: expanding windows over lead creation time.

The training rows of one target (everything before the validation cutoff) are cut into folds
the way the outer split cuts validation off: the oldest `min_train_share` of the creation-time
range is only ever trained on; the rest is divided into `n_folds` consecutive periods. Fold `k`
trains on leads created before the start of period `k` (and only on their snapshots dated before
it) and predicts the leads created inside period `k` (all their snapshots). So no lead is on both
sides of a fold, nothing a fold model trains on is dated inside the period it predicts, and every
lead created after the first fold cutoff is predicted exactly once, by a model that never saw it:
those are the out-of-fold (OOF) predictions that choose the number of trees and the model family
and fit the calibrator.

Without timestamps the folds are stratified random groups of leads (every lead in exactly one
held-out fold), seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_FOLDS = 3
DEFAULT_MIN_TRAIN_SHARE = 0.5


@dataclass(frozen=True)
class Fold:
    """Row labels (of the examples frame) a fold model trains on and predicts."""

    train: pd.Index
    valid: pd.Index
    start: pd.Timestamp | None = None  # first creation time of the predicted period
    end: pd.Timestamp | None = None  # end of the predicted period (exclusive; None: open)


def time_folds(
    rows: pd.DataFrame,
    n_folds: int = DEFAULT_FOLDS,
    min_train_share: float = DEFAULT_MIN_TRAIN_SHARE,
) -> list[Fold]:
    """Expanding-window folds over `created_at` (see the module docstring).

    `rows` holds `lead_id`, `created_at` and `snapshot_at`. Folds whose training or predicted
    side would be empty are left out.
    """
    created = pd.to_datetime(rows["created_at"])
    snapshot = pd.to_datetime(rows["snapshot_at"])
    lead_created = created.groupby(rows["lead_id"].to_numpy(), sort=False).min()
    step = (1.0 - min_train_share) / n_folds
    shares = [min_train_share + k * step for k in range(n_folds)]
    cutoffs = list(pd.to_datetime(lead_created.quantile(shares, interpolation="lower")))
    folds = []
    for k, cut in enumerate(cutoffs):
        upper = cutoffs[k + 1] if k + 1 < n_folds else None
        train = (created < cut) & (snapshot < cut)
        valid = created >= cut
        if upper is not None:
            valid &= created < upper
        if train.any() and valid.any():
            folds.append(
                Fold(rows.index[train.to_numpy()], rows.index[valid.to_numpy()], cut, upper)
            )
    return folds


def random_folds(rows: pd.DataFrame, label: str, n_folds: int, seed: int) -> list[Fold]:
    """Stratified random folds by lead (a lead is positive when any of its rows is), seeded."""
    lead_label = rows.groupby("lead_id", sort=True, observed=True)[label].max()
    rng = np.random.default_rng(seed)
    fold_of: dict = {}
    for cls in sorted(lead_label.unique()):
        leads = rng.permutation(lead_label.index[lead_label.to_numpy() == cls].to_numpy())
        offset = int(rng.integers(n_folds))
        for i, lead in enumerate(leads):
            fold_of[lead] = (i + offset) % n_folds
    assigned = rows["lead_id"].map(fold_of).to_numpy()
    folds = []
    for k in range(n_folds):
        held = assigned == k
        if held.any() and (~held).any():
            folds.append(Fold(rows.index[~held], rows.index[held]))
    return folds


def make_folds(
    rows: pd.DataFrame,
    label: str,
    has_time: bool,
    n_folds: int = DEFAULT_FOLDS,
    min_train_share: float = DEFAULT_MIN_TRAIN_SHARE,
    seed: int = 0,
) -> list[Fold]:
    """Time-ordered folds with creation times, stratified random folds by lead without."""
    if has_time:
        return time_folds(rows, n_folds, min_train_share)
    return random_folds(rows, label, n_folds, seed)


def oof_index(folds: list[Fold]) -> pd.Index:
    """Every row some fold predicts, in fold order (each exactly once)."""
    if not folds:
        return pd.Index([])
    out = folds[0].valid
    for fold in folds[1:]:
        out = out.append(fold.valid)
    return out
