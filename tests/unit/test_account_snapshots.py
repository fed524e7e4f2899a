"""Account snapshots: the weekly grid while an account has an open lead, labels, censoring,
point-in-time aggregates and the roll-ups of the lead model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.accounts.model import account_rows, refusal, worse_than_rollup
from leadscore.accounts.snapshots import (
    N_OPEN,
    account_labels,
    account_snapshot_times,
    combine_partials,
    partial_aggregates,
    rollups,
)
from leadscore.config import settings_from_dict
from leadscore.data.contract import LeadData
from leadscore.data.snapshots import Examples, feature_spec_for

T = pd.Timestamp
EXPORT = T("2025-03-01")


def leads_frame() -> pd.DataFrame:
    rows = [
        # A1: L1 open throughout; L2 from 01-10 until its meeting on 01-20 (won 02-10)
        ("L1", "A1", "2025-01-01", None, None, None, "VP"),
        ("L2", "A1", "2025-01-10", "2025-01-20", "2025-02-10", None, "Manager"),
        # A2: L3 open only from 01-03 until its loss on 01-05
        ("L3", "A2", "2025-01-03", None, None, "2025-01-05", "VP"),
        # A3: L4 open 01-01..01-09, nothing open 01-15, then L5 from 01-20
        ("L4", "A3", "2025-01-01", None, None, "2025-01-09", "Manager"),
        ("L5", "A3", "2025-01-20", "2025-02-25", None, None, "VP"),
        # no account: never in account snapshots
        ("L6", None, "2025-01-01", None, None, None, "VP"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["lead_id", "account_id", "created_at", "meeting_at", "won_at", "lost_at", "level"],
    )
    for col in ("created_at", "meeting_at", "won_at", "lost_at"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    for col in ("lead_id", "account_id", "level"):
        frame[col] = frame[col].astype("string")
    return frame


def settings(**extra):
    raw = {
        "data": {"leads": "leads.csv", "activities": "acts.csv"},
        "columns": {"account_id": "account_id", "lost_at": "lost_at"},
        "labels": {"meeting_window_days": 14, "won_window_days": 28},
        "snapshots": {"max_per_lead": 100},
        "accounts": {"roles": ["level"]},
        **extra,
    }
    return settings_from_dict(raw)


def times(snaps: pd.DataFrame, account: str) -> list[str]:
    mine = snaps[snaps["account_id"] == account].sort_values("snapshot_at")
    return [f"{t:%m-%d}" for t in mine["snapshot_at"]]


def test_weekly_snapshots_only_while_the_account_has_an_open_lead():
    snaps = account_snapshot_times(leads_frame(), settings(), EXPORT)
    assert times(snaps, "A1") == [
        f"{t:%m-%d}" for t in pd.date_range("2025-01-01", EXPORT, freq="7D")
    ]
    assert times(snaps, "A2") == ["01-03"]  # the loss on 01-05 closes it before 01-10
    assert times(snaps, "A3") == ["01-01", "01-08", "01-22", "01-29", "02-05", "02-12", "02-19"]
    assert set(snaps["account_id"]) == {"A1", "A2", "A3"}
    assert (snaps["weight"] == 1).all()


def test_snapshots_are_capped_per_account_and_weighted():
    snaps = account_snapshot_times(leads_frame(), settings(snapshots={"max_per_lead": 2}), EXPORT)
    a1 = snaps[snaps["account_id"] == "A1"]
    assert len(a1) == 2 and np.allclose(a1["weight"], 9 / 2)
    assert snaps.groupby("account_id")["weight"].sum().to_dict() == {"A1": 9, "A2": 1, "A3": 7}


def test_labels_any_lead_within_the_window_and_censoring():
    s = settings()
    snaps = account_snapshot_times(leads_frame(), s, EXPORT)
    labels = account_labels(snaps, leads_frame(), s, EXPORT)
    got = snaps.assign(**labels).set_index(
        ["account_id", snaps["snapshot_at"].dt.strftime("%m-%d")]
    )
    # L2's meeting on 01-20 is within 14 days of 01-08 and 01-15, not of 01-01
    assert got.loc[("A1", "01-01"), "label_meeting"] == 0
    assert got.loc[("A1", "01-08"), "label_meeting"] == 1
    assert got.loc[("A1", "01-15"), "label_meeting"] == 1
    assert got.loc[("A1", "01-22"), "label_meeting"] == 0  # L2 was closed by its meeting then
    # the win 02-10 counts for the account only through leads open at t (L2 closed at 01-20)
    assert got.loc[("A1", "01-15"), "label_won"] == 1
    assert got.loc[("A1", "01-22"), "label_won"] == 0
    # a lead created after the snapshot counts: A3's L5 (created 01-20) meets on 02-25
    assert got.loc[("A3", "02-12"), "label_meeting"] == 1
    # windows past the export date are censored, never negatives
    assert np.isnan(got.loc[("A1", "02-19"), "label_meeting"])
    assert np.isnan(got.loc[("A1", "02-05"), "label_won"])
    assert got.loc[("A1", "01-29"), "label_won"] == 0


def acts_frame() -> pd.DataFrame:
    rows = [
        ("L1", "2025-01-02 09:00", "email_open"),
        ("L1", "2025-01-14 09:00", "pricing"),
        ("L2", "2025-01-11 10:00", "email_open"),
        ("L2", "2025-01-12 10:00", "pricing"),
        ("L2", "2025-01-13 10:00", "pricing"),
        ("L5", "2025-01-21 10:00", "email_open"),
    ]
    frame = pd.DataFrame(rows, columns=["lead_id", "occurred_at", "activity_type"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).astype("datetime64[ns]")
    return frame


class CountModel:
    """A stand-in lead model: P grows with the lead's all-time event count."""

    def __init__(self, spec):
        self.column = spec.activity_feature("all", None)

    def predict_proba(self, X):
        return 1 / (1 + np.exp(3 - X[self.column].fillna(0).to_numpy(float)))


def lead_data(acts: pd.DataFrame) -> LeadData:
    return LeadData(
        leads=leads_frame(),
        activities=acts,
        categorical=("level",),
        numeric=(),
        export_date=EXPORT,
    )


def rows_for(acts: pd.DataFrame, snaps: pd.DataFrame):
    s = settings()
    data = lead_data(acts)
    spec = feature_spec_for(lead_data(acts_frame()), s)
    models = {"meeting": CountModel(spec), "won": CountModel(spec)}
    return account_rows(snaps, data, s, spec, models, "won")


def test_aggregates_over_the_open_people():
    snaps = pd.DataFrame({"account_id": ["A1"], "snapshot_at": [T("2025-01-15")]})
    feats, partials = rows_for(acts_frame(), snaps)
    row = feats.iloc[0]
    assert row[N_OPEN] == 2
    assert row["sum__act__pricing__total"] == 3 and row["max__act__pricing__total"] == 2
    assert row["sum__act__all__7d"] == 4  # L1's pricing view and L2's three (01-02 is older)
    assert row["role__level__VP"] == 1 and row["role__level__Manager"] == 1
    assert row["min__days_since_last_activity"] == pytest.approx(
        (T("2025-01-15") - T("2025-01-14 09:00")).total_seconds() / 86400
    )
    assert row["best__level"] == "Manager"  # L2 has more events: the higher stand-in P
    p1, p2 = 1 / (1 + np.exp(3 - 2)), 1 / (1 + np.exp(3 - 3))
    noisy_or, top = rollups(partials, "won")
    assert noisy_or[0] == pytest.approx(1 - (1 - p1) * (1 - p2))
    assert top[0] == pytest.approx(max(p1, p2))


def test_later_events_change_nothing():
    """Events at or after each snapshot (of its account's leads) leave every feature as it was;
    one event just before a snapshot does change it (the test can fail)."""
    s = settings()
    snaps = account_snapshot_times(leads_frame(), s, EXPORT)
    base, base_partials = rows_for(acts_frame(), snaps)
    last = snaps.groupby("account_id")["snapshot_at"].max()
    later = []
    for lead, account in leads_frame()[["lead_id", "account_id"]].dropna().itertuples(index=False):
        for days in (0, 3, 40):
            later.append((lead, last[account] + pd.Timedelta(days=days), "pricing"))
    extra = pd.DataFrame(later, columns=["lead_id", "occurred_at", "activity_type"])
    more = pd.concat([acts_frame(), extra], ignore_index=True)
    snaps_before = snaps[snaps["snapshot_at"] < snaps["account_id"].map(last)]
    after, after_partials = rows_for(more, snaps)
    pd.testing.assert_frame_equal(base, after)
    pd.testing.assert_frame_equal(base_partials, after_partials)
    extra["occurred_at"] -= pd.Timedelta(seconds=1)
    changed, _ = rows_for(pd.concat([acts_frame(), extra], ignore_index=True), snaps)
    assert not changed.equals(base)
    assert len(snaps_before) < len(snaps)


def test_partials_of_chunks_combine_to_the_whole():
    rng = np.random.default_rng(0)
    keys = pd.Series(rng.choice(["A", "B", "C"], 40))
    feats = pd.DataFrame({"x": rng.random(40)})
    probs = pd.DataFrame({"p_won": rng.random(40)})

    class Spec:
        lead_spec = None
        roles = ()
        activity_counts = ("x",)
        best_columns = ("x",)

    whole = partial_aggregates(keys, feats, probs, pd.DataFrame(index=keys.index), Spec, "won")
    halves = [
        partial_aggregates(
            keys[sl], feats[sl], probs[sl], pd.DataFrame(index=keys[sl].index), Spec, "won"
        )
        for sl in (slice(0, 17), slice(17, 40))
    ]
    combined = combine_partials(halves).loc[whole.index, whole.columns]
    pd.testing.assert_frame_equal(whole, combined, check_exact=False)


def test_too_few_accounts_is_refused_with_the_numbers():
    frame = pd.DataFrame(
        {"lead_id": ["A1", "A1", "A2"], "label_won": [1.0, 0.0, np.nan], "weight": 1.0}
    )
    examples = Examples(frame, None, ("won",), EXPORT)
    why = refusal(examples, settings())
    assert "1 accounts" in why and "1 positive" in why and "accounts.min_accounts" in why
    assert refusal(examples, settings(accounts={"min_accounts": 1, "min_positives": 1})) is None


def test_an_account_model_worse_than_the_lead_rollup_is_refused():
    settings = settings_from_dict({"data": {"leads": "x.csv"}})
    rollup = {"roc_auc": 0.757, "log_loss": 0.241}
    worse = {"lightgbm": {"roc_auc": 0.731, "log_loss": 0.232}, "rollup_noisy_or": rollup}
    why = worse_than_rollup("won", worse, settings)
    assert why is not None and "ROC AUC 0.7310 is below the lead roll-up's 0.7570" in why
    better = {"lightgbm": {"roc_auc": 0.792, "log_loss": 0.214}, "rollup_noisy_or": rollup}
    assert worse_than_rollup("won", better, settings) is None
    miscalibrated = {"lightgbm": {"roc_auc": 0.760, "log_loss": 0.300}, "rollup_noisy_or": rollup}
    assert "log loss 0.3000 is above" in worse_than_rollup("won", miscalibrated, settings)
