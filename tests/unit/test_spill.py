"""Partitioning open leads and their events by lead id on disk (the scorer's flat memory)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.ids import HashSet, lead_hashes
from leadscore.data.spill import (
    N_BUCKETS,
    BucketFiles,
    bucket_of,
    group_buckets,
    spill_events,
    spill_leads,
)


def leads_frame(ids: list[str], industry: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": pd.array(ids, dtype="string"),
            "created_at": pd.to_datetime(["2026-01-01"] * len(ids)),
            "industry": pd.array(industry, dtype="string"),
            "employees": np.arange(len(ids), dtype="float64"),
        }
    )


def test_a_lead_id_always_lands_in_the_same_bucket():
    ids = pd.Series([f"L{i}" for i in range(1000)], dtype="string")
    buckets = bucket_of(lead_hashes(ids))
    assert (buckets == bucket_of(lead_hashes(ids.iloc[::-1]))[::-1]).all()
    assert buckets.min() >= 0 and buckets.max() < N_BUCKETS
    assert len(np.unique(buckets)) > N_BUCKETS // 2  # spread over the buckets


def test_spilled_leads_come_back_complete_and_typed(tmp_path):
    first = leads_frame([f"L{i}" for i in range(50)], ["a"] * 50)
    second = leads_frame([f"M{i}" for i in range(30)], [None] * 30)  # a column all missing
    files, hashes = spill_leads([first, second], tmp_path)
    assert files.counts.sum() == 80
    back = files.read(range(N_BUCKETS))
    assert sorted(back["lead_id"]) == sorted([*first["lead_id"], *second["lead_id"]])
    assert back["created_at"].dtype == "datetime64[ns]"
    assert back["industry"].isna().sum() == 30
    merged = back.set_index("lead_id").loc[first["lead_id"], "employees"].to_numpy()
    np.testing.assert_array_equal(merged, first["employees"].to_numpy())
    probe = lead_hashes(pd.Series(["L3", "M29", "nobody"], dtype="string"))
    assert hashes.contains(probe).tolist() == [True, True, False]


def test_only_events_of_open_leads_before_the_as_of_date_are_kept(tmp_path):
    _, hashes = spill_leads([leads_frame(["A", "B"], ["x", "y"])], tmp_path)
    t = pd.Timestamp("2026-03-01")
    events = pd.DataFrame(
        {
            "lead_id": pd.array(["A", "A", "B", "C", "B"], dtype="string"),
            "occurred_at": pd.to_datetime(
                ["2026-02-01", "2026-03-02", "2026-02-20", "2026-02-01", "2026-01-01"]
            ),
            "activity_type": pd.array(["visit", "visit", "demo", "visit", "other"], "string"),
        }
    )
    seconds = int(t.value // 10**9)
    ev_files, kept = spill_events([events], hashes, ("visit", "demo"), seconds, tmp_path)
    assert kept == 3  # A after the as-of date and C (not open) left out
    back = ev_files.read(range(N_BUCKETS)).sort_values(["lead_id", "seconds"])
    assert back["lead_id"].tolist() == ["A", "B", "B"]
    assert back["type_code"].tolist() == [0, -1, 1]  # B: "other" on 1 Jan, then a demo


def test_buckets_are_grouped_into_parts_of_bounded_size():
    counts = np.zeros(N_BUCKETS, np.int64)
    counts[[0, 1, 2, 5, 9]] = [40, 50, 30, 200, 10]
    parts = group_buckets(counts, 100)
    assert parts == [[0, 1], [2], [5], [9]]
    assert sorted(b for p in parts for b in p) == [0, 1, 2, 5, 9]
    assert group_buckets(np.zeros(N_BUCKETS, np.int64), 100) == []


def test_bucket_files_write_rows_in_order(tmp_path):
    files = BucketFiles(tmp_path, "t")
    frame = leads_frame([f"L{i}" for i in range(20)], ["a"] * 20)
    files.write(frame, np.array([3, 1] * 10))
    files.close()
    assert files.read([1])["lead_id"].tolist() == [f"L{i}" for i in range(1, 20, 2)]
    assert files.read([3, 1])["lead_id"].tolist()[:2] == ["L0", "L2"]


def test_hash_set_finds_ids_added_over_many_batches():
    seen = HashSet()
    for k in range(20):  # more batches than sorted parts kept: they get merged
        seen.add(lead_hashes(pd.Series([f"L{k}-{i}" for i in range(50)], dtype="string")))
    assert len(seen) == 1000 and len(seen.parts) <= 9
    probe = pd.Series(["L0-0", "L19-49", "L7-25", "L20-0", "l0-0"], dtype="string")
    assert seen.contains(lead_hashes(probe)).tolist() == [True, True, True, False, False]
