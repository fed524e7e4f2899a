"""Point-in-time examples: weekly snapshots of open leads, labels, censoring, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import settings_from_dict
from leadscore.data.contract import LeadData
from leadscore.data.features import FeatureSpec, build_features
from leadscore.data.snapshots import build_examples, scoring_snapshots

EXPORT = pd.Timestamp("2026-01-01")


def lead_data(leads: list[dict], acts: list[tuple] | None = None) -> LeadData:
    frame = pd.DataFrame(leads)
    for col in ("created_at", "meeting_at", "won_at", "lost_at"):
        values = frame[col] if col in frame else pd.Series(pd.NaT, index=frame.index)
        frame[col] = pd.to_datetime(values).astype("datetime64[ns]")
    frame["lead_id"] = frame["lead_id"].astype("string")
    frame["industry"] = frame.get("industry", "software")
    frame["industry"] = frame["industry"].astype("string")
    activities = None
    if acts is not None:
        activities = pd.DataFrame(acts, columns=["lead_id", "occurred_at", "activity_type"])
        activities["occurred_at"] = pd.to_datetime(
            activities["occurred_at"], format="ISO8601"
        ).astype("datetime64[ns]")
    return LeadData(frame, activities, ("industry",), (), EXPORT)


def settings(**overrides):
    raw = {
        "data": {"leads": "leads.csv", "activities": "acts.csv"},
        "columns": {"lost_at": "lost_at"},
        "snapshots": {"max_per_lead": 100},
    }
    for key, value in overrides.items():
        raw.setdefault(key, {}).update(value)
    return settings_from_dict(raw)


def rows_of(examples, lead_id: str) -> pd.DataFrame:
    return examples.frame[examples.frame["lead_id"] == lead_id]


def test_weekly_snapshots_while_open():
    data = lead_data(
        [{"lead_id": "A", "created_at": "2025-01-01", "meeting_at": "2025-01-20"}],
        [("A", "2025-01-02", "email_open")],
    )
    ex = build_examples(data, settings())
    snaps = rows_of(ex, "A")["snapshot_at"].tolist()
    assert snaps == [pd.Timestamp(d) for d in ("2025-01-01", "2025-01-08", "2025-01-15")]
    assert rows_of(ex, "A")["label_meeting"].tolist() == [1.0, 1.0, 1.0]


def test_snapshots_stop_at_max_age_and_export():
    data = lead_data(
        [
            {"lead_id": "old", "created_at": "2024-01-01"},
            {"lead_id": "new", "created_at": "2025-12-20"},
        ],
        [],
    )
    ex = build_examples(data, settings(snapshots={"max_age_days": 28}))
    assert len(rows_of(ex, "old")) == 5  # weeks 0..4
    assert rows_of(ex, "new")["snapshot_at"].max() <= EXPORT
    assert len(rows_of(ex, "new")) == 2


def test_censoring_recent_unconverted_lead_is_absent_old_one_is_negative():
    data = lead_data(
        [
            {"lead_id": "old", "created_at": "2024-01-01"},
            {"lead_id": "recent", "created_at": "2025-11-01"},
        ],
        [],
    )
    ex = build_examples(data, settings(snapshots={"max_age_days": 0}))
    old, recent = rows_of(ex, "old").iloc[0], rows_of(ex, "recent").iloc[0]
    assert old["label_meeting"] == 0.0 and old["label_won"] == 0.0
    assert np.isnan(recent["label_meeting"]) and np.isnan(recent["label_won"])
    # a lead 100 days old: its 90-day meeting window is observed, its 180-day won window is not
    data = lead_data([{"lead_id": "mid", "created_at": "2025-09-20"}], [])
    mid = build_examples(data, settings(snapshots={"max_age_days": 0})).frame.iloc[0]
    assert mid["label_meeting"] == 0.0 and np.isnan(mid["label_won"])
    assert len(ex.for_target("won")) == 1


def test_settled_outcome_in_open_window_is_kept_unless_full_window_required():
    data = lead_data([{"lead_id": "r", "created_at": "2025-12-01", "meeting_at": "2025-12-10"}])
    strict = build_examples(data, settings(snapshots={"max_age_days": 0}))
    loose = build_examples(
        data, settings(snapshots={"max_age_days": 0}, labels={"require_full_window": False})
    )
    assert np.isnan(strict.frame["label_meeting"].iloc[0])
    assert loose.frame["label_meeting"].iloc[0] == 1.0
    assert np.isnan(loose.frame["label_won"].iloc[0])  # no outcome yet: never a negative
    lost = lead_data([{"lead_id": "q", "created_at": "2025-12-01", "lost_at": "2025-12-05"}])
    loose_settings = settings(snapshots={"max_age_days": 0}, labels={"require_full_window": False})
    settled = build_examples(lost, loose_settings).frame.iloc[0]
    assert settled["label_meeting"] == 0.0 and settled["label_won"] == 0.0


def test_label_window_bounds():
    data = lead_data(
        [
            {"lead_id": "in", "created_at": "2024-01-01", "meeting_at": "2024-03-30"},
            {"lead_id": "out", "created_at": "2024-01-01", "meeting_at": "2024-04-02"},
        ]
    )
    ex = build_examples(data, settings(snapshots={"max_age_days": 0}))
    assert rows_of(ex, "in")["label_meeting"].iloc[0] == 1.0
    assert rows_of(ex, "out")["label_meeting"].iloc[0] == 0.0


def test_won_counts_as_meeting_and_lost_closes_the_lead():
    data = lead_data(
        [
            {"lead_id": "w", "created_at": "2024-01-01", "won_at": "2024-02-01"},
            {"lead_id": "l", "created_at": "2024-01-01", "lost_at": "2024-01-10"},
        ],
        [],
    )
    ex = build_examples(data, settings())
    assert rows_of(ex, "w")["label_meeting"].eq(1.0).all()
    assert rows_of(ex, "w")["label_won"].eq(1.0).all()
    assert len(rows_of(ex, "l")) == 2
    assert rows_of(ex, "l")["label_won"].eq(0.0).all()


def test_no_leakage_from_activities_after_snapshot():
    leads = [
        {"lead_id": "A", "created_at": "2025-01-01"},
        {"lead_id": "B", "created_at": "2025-02-01"},
    ]
    acts = [("A", "2025-01-03", "email_open"), ("A", "2025-01-09", "pricing_page_view")]
    spec_settings = settings()
    base = build_examples(lead_data(leads, acts), spec_settings)
    later = acts + [
        ("A", "2025-01-15 00:00:00", "pricing_page_view"),  # exactly at a snapshot: not before it
        ("A", "2025-02-20", "demo_request"),
        ("B", "2025-03-01", "email_open"),
    ]
    more = build_examples(lead_data(leads, later), spec_settings, spec=base.spec)
    cutoff = pd.Timestamp("2025-01-15")
    before = base.frame[base.frame["snapshot_at"] <= cutoff]
    after = more.frame[more.frame["snapshot_at"] <= cutoff]
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    assert (more.frame["act__all__total"] >= base.frame["act__all__total"]).all()
    assert (more.frame["act__all__total"] > base.frame["act__all__total"]).any()


def test_activity_counts_per_window():
    spec = FeatureSpec(("industry",), (), ("email_open", "page_view"), (7, 30), True, True)
    snaps = pd.DataFrame(
        {
            "lead_id": ["A", "A", "B"],
            "created_at": pd.to_datetime(["2025-01-01"] * 3),
            "snapshot_at": pd.to_datetime(["2025-02-01", "2025-03-15", "2025-02-01"]),
            "industry": ["x", "x", "y"],
        }
    )
    acts = pd.DataFrame(
        {
            "lead_id": ["A", "A", "A", "A", "B", "A"],
            "occurred_at": pd.to_datetime(
                [
                    "2025-01-01 23:00",
                    "2025-01-20",
                    "2025-01-28",
                    "2025-01-31 23:59:59",
                    "2025-01-30",
                    "2025-02-01",
                ],
                format="ISO8601",
            ),
            "activity_type": [
                "email_open",
                "email_open",
                "page_view",
                "email_open",
                "webinar",
                "email_open",
            ],
        }
    )
    f = build_features(snaps, acts, spec)
    assert f["act__email_open__7d"].tolist() == [1.0, 0.0, 0.0]
    assert f["act__email_open__30d"].tolist() == [2.0, 0.0, 0.0]
    assert f["act__email_open__total"].tolist() == [3.0, 4.0, 0.0]
    assert f["act__page_view__7d"].tolist() == [1.0, 0.0, 0.0]
    assert f["act__all__total"].tolist() == [4.0, 5.0, 1.0]  # unknown types count under all
    assert f["days_since_last_activity"].round(4).tolist() == [round(1 / 86400, 4), 42.0, 2.0]
    assert f["days_since_created"].tolist() == [31.0, 73.0, 31.0]


def test_snapshots_per_lead_are_capped_with_weights():
    data = lead_data([{"lead_id": "A", "created_at": "2024-01-01"}], [])
    ex = build_examples(data, settings(snapshots={"max_per_lead": 4, "max_age_days": 182}))
    rows = rows_of(ex, "A")
    assert len(rows) == 4
    assert rows["weight"].sum() == pytest.approx(27)  # stands for weeks 0..26
    again = build_examples(data, settings(snapshots={"max_per_lead": 4, "max_age_days": 182}))
    pd.testing.assert_frame_equal(ex.frame, again.frame)


def test_total_examples_are_capped():
    leads = [{"lead_id": f"L{i}", "created_at": "2024-01-01"} for i in range(50)]
    ex = build_examples(lead_data(leads, []), settings(snapshots={"max_examples": 100}))
    assert len(ex.frame) == 100
    assert ex.frame["weight"].sum() == pytest.approx(50 * 27)


def test_without_activities_one_snapshot_at_creation():
    data = lead_data([{"lead_id": "A", "created_at": "2024-01-01"}])
    raw = {"data": {"leads": "leads.csv"}, "columns": {"lost_at": "lost_at"}}
    ex = build_examples(data, settings_from_dict(raw))
    assert ex.frame["snapshot_at"].tolist() == [pd.Timestamp("2024-01-01")]
    assert not any(c.startswith("act__") for c in ex.frame.columns)


def test_scoring_snapshot_only_for_open_leads():
    data = lead_data(
        [
            {"lead_id": "open", "created_at": "2025-06-01"},
            {"lead_id": "won", "created_at": "2025-06-01", "won_at": "2025-07-01"},
            {"lead_id": "met", "created_at": "2025-06-01", "meeting_at": "2025-07-01"},
            {"lead_id": "future", "created_at": "2025-09-01"},
        ]
    )
    snaps, skipped = scoring_snapshots(data.leads, pd.Timestamp("2025-08-01"))
    assert snaps["lead_id"].tolist() == ["open"]
    assert skipped == 3


def test_scoring_fast_path_matches_general_path():
    from leadscore.data.features import _stats_at_one_time, _stats_by_search

    rng = np.random.default_rng(3)
    spec = FeatureSpec((), (), ("a", "b", "c"), (7, 30, 90), True, True)
    n_leads, n_events, t = 300, 5000, 1_700_000_000
    snap_lead = rng.permutation(n_leads)[:200]
    snap_seconds = np.full(len(snap_lead), t)
    event_lead = rng.integers(0, n_leads, n_events)
    event_type = rng.integers(-1, 3, n_events)
    event_seconds = t - rng.integers(-30 * 86400, 200 * 86400, n_events)
    event_seconds[:50] = t - 30 * 86400  # exactly on a window edge
    fast = _stats_at_one_time(snap_lead, t, event_lead, event_type, event_seconds, spec)
    slow = _stats_by_search(snap_lead, snap_seconds, event_lead, event_type, event_seconds, spec)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    np.testing.assert_array_equal(fast.last_seconds, slow.last_seconds)
    assert fast.counts.sum() > 0


def test_events_added_in_batches_match_one_pass():
    from leadscore.data.features import add_events_at, empty_stats

    rng = np.random.default_rng(4)
    spec = FeatureSpec((), (), ("a", "b"), (7, 30), True, True)
    n_rows, n_events, t = 50, 2000, 1_700_000_000
    event_row = rng.integers(-1, n_rows, n_events)  # -1: an event of a lead not scored
    event_type = rng.integers(-1, 2, n_events)
    event_seconds = t - rng.integers(-5 * 86400, 60 * 86400, n_events)
    whole = empty_stats(n_rows, spec)
    add_events_at(whole, t, event_row, event_type, event_seconds, spec)
    batched = empty_stats(n_rows, spec)
    for part in np.array_split(np.arange(n_events), 7):
        add_events_at(batched, t, event_row[part], event_type[part], event_seconds[part], spec)
    np.testing.assert_array_equal(whole.counts, batched.counts)
    np.testing.assert_array_equal(whole.last_seconds, batched.last_seconds)
    future_or_unscored = (event_seconds >= t) | (event_row < 0)
    assert whole.counts[:, -1, -1].sum() == (~future_or_unscored).sum()


def test_scoring_without_timestamps_skips_leads_already_converted():
    leads = pd.DataFrame(
        {
            "lead_id": pd.array(["a", "b", "c"], dtype="string"),
            "won_flag": [1.0, 0.0, np.nan],
            "industry": pd.array(["x", "y", "z"], dtype="string"),
        }
    )
    data = LeadData(leads, None, ("industry",), (), None)
    snaps, skipped = scoring_snapshots(data.leads, pd.Timestamp("2026-01-01"))
    assert snaps["lead_id"].tolist() == ["b", "c"]
    assert skipped == 1


def test_date_only_outcome_on_the_creation_day_labels_the_creation_snapshot():
    # a CRM export with dates only: an inbound call that converted the day it came in
    data = lead_data(
        [
            {"lead_id": "same", "created_at": "2024-03-01", "won_at": "2024-03-01"},
            {"lead_id": "lost", "created_at": "2024-03-01", "lost_at": "2024-03-01"},
            {"lead_id": "later", "created_at": "2024-03-01", "meeting_at": "2024-03-20"},
            {"lead_id": "open", "created_at": "2024-03-01"},
        ],
        [],
    )
    ex = build_examples(data, settings())
    same = rows_of(ex, "same")
    assert same["snapshot_at"].tolist() == [pd.Timestamp("2024-03-01")]  # no later snapshot
    assert same["label_won"].tolist() == [1.0] and same["label_meeting"].tolist() == [1.0]
    lost = rows_of(ex, "lost")
    assert lost["label_won"].tolist() == [0.0] and lost["label_meeting"].tolist() == [0.0]
    later = rows_of(ex, "later")
    assert later["snapshot_at"].max() < pd.Timestamp("2024-03-20")  # open strictly before
    assert later["label_meeting"].eq(1.0).all()
    assert ex.date_only
    assert ex.same_day_outcomes == {"meeting": 1, "won": 1}
    # scoring: a lead whose outcome is at or before the as-of is not open
    snaps, skipped = scoring_snapshots(data.leads, pd.Timestamp("2024-03-01"))
    assert sorted(snaps["lead_id"]) == ["later", "open"] and skipped == 2


def test_outcome_before_creation_gives_no_snapshot_and_times_are_not_date_only():
    data = lead_data(
        [
            {"lead_id": "early", "created_at": "2024-03-03 10:00", "won_at": "2024-03-01 09:00"},
            {"lead_id": "timed", "created_at": "2024-03-01 10:00", "won_at": "2024-03-01 10:00"},
        ],
        [],
    )
    ex = build_examples(data, settings())
    assert rows_of(ex, "early").empty
    assert rows_of(ex, "timed")["label_won"].tolist() == [1.0]  # at the creation time: its label
    assert not ex.date_only
