"""Time-ordered folds and the calibrator's ties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.cv import make_folds, oof_index, time_folds
from leadscore.modeling.model import Calibrator
from leadscore.modeling.selection import decile_calibration, max_tie_share


def snapshots(n_leads: int = 400, seed: int = 0) -> pd.DataFrame:
    """Leads created over a year, each with weekly snapshots for a few weeks."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.uniform(0, 365, n_leads), "D")
    rows = []
    for i, c in enumerate(created):
        for week in range(int(rng.integers(1, 6))):
            rows.append((f"L{i}", c, c + pd.Timedelta(weeks=week), float(rng.random() < 0.2)))
    return pd.DataFrame(rows, columns=["lead_id", "created_at", "snapshot_at", "label_won"])


def test_time_folds_are_ordered_and_never_split_a_lead():
    frame = snapshots()
    folds = time_folds(frame, n_folds=3, min_train_share=0.5)
    assert len(folds) == 3
    for k, fold in enumerate(folds):
        train, valid = frame.loc[fold.train], frame.loc[fold.valid]
        assert not set(train["lead_id"]) & set(valid["lead_id"])
        assert (train["snapshot_at"] < fold.start).all()  # nothing dated inside the period
        assert (train["created_at"] < fold.start).all()
        assert (valid["created_at"] >= fold.start).all()
        if fold.end is not None:
            assert (valid["created_at"] < fold.end).all()
            assert fold.end == folds[k + 1].start
        if k:  # expanding window
            assert set(folds[k - 1].train) < set(fold.train) | set(folds[k - 1].valid)
            assert fold.start > folds[k - 1].start
    oof = oof_index(folds)
    assert oof.is_unique  # every out-of-fold row predicted exactly once
    first = folds[0].start
    assert set(oof) == set(frame.index[frame["created_at"] >= first])


def test_random_folds_without_time_group_leads():
    frame = snapshots()
    folds = make_folds(frame, "label_won", has_time=False, n_folds=4, seed=1)
    assert len(folds) == 4
    for fold in folds:
        assert not set(frame.loc[fold.train, "lead_id"]) & set(frame.loc[fold.valid, "lead_id"])
    assert sorted(oof_index(folds)) == sorted(frame.index)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_calibrators_keep_the_ranking(method):
    rng = np.random.default_rng(0)
    margin = rng.normal(-2.0, 1.2, 50_000)
    y = (rng.random(len(margin)) < 1 / (1 + np.exp(-(0.8 * margin + 0.3)))).astype(float)
    cal = Calibrator(method).fit(margin, y)
    p = cal.predict(margin)
    assert max_tie_share(p) <= 0.02
    order = np.argsort(margin)
    assert np.all(np.diff(p[order]) >= 0)  # monotone
    assert np.all(np.diff(cal.predict(np.linspace(-8, 8, 200))) > 0)  # strictly, also outside
    table = decile_calibration(y, p)
    assert len(table) == 10
    assert np.abs(table["mean_p"] - table["rate"]).max() < 0.03
