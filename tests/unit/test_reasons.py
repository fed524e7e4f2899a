"""Reasons read right: one sentence per group, signed points, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import leadscore.scoring.reasons as reasons_module
from leadscore.data.features import FeatureSpec
from leadscore.scoring.reasons import (
    MINUS,
    age_phrases,
    format_number,
    format_points,
    nice_name,
    recency_phrases,
    top_reasons,
)

SPEC = FeatureSpec(
    categorical=("job_level",),
    numeric=("employees",),
    activity_types=("pricing_page_view", "xyz_abc", "demo_request"),
    windows_days=(7, 30, 90),
    has_time=True,
    has_activities=True,
)
GROUPS = [
    "job_level",
    "employees",
    "days_since_created",
    "activity:pricing_page_view",
    "activity:xyz_abc",
    "activity:demo_request",
    "activity:all",
]


def feature_rows(rows: list[dict]) -> pd.DataFrame:
    """Feature frame with every spec column; unspecified counts are 0."""
    frame = pd.DataFrame(0.0, index=range(len(rows)), columns=SPEC.columns)
    frame["job_level"] = pd.Series([None] * len(rows), dtype="string")
    for i, values in enumerate(rows):
        for col, value in values.items():
            frame.loc[i, col] = value
    return frame


def counts(kind: str, d7: int, d30: int, d90: int, total: int) -> dict:
    windows = (7, 30, 90, None)
    return {
        SPEC.activity_feature(kind, w): c
        for w, c in zip(windows, (d7, d30, d90, total), strict=True)
    }


def contributions(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=GROUPS).fillna(0.0)


def test_sentences_built_from_known_values():
    features = feature_rows(
        [
            {
                "job_level": "VP",
                "employees": 5000.0,
                "days_since_created": 84.0,
                "days_since_last_activity": 45.0,
                **counts("pricing_page_view", 0, 3, 3, 5),
                **counts("xyz_abc", 0, 3, 3, 3),
            }
        ]
    )
    pp = contributions(
        [
            {
                "job_level": 4.2,
                "activity:pricing_page_view": 6.1,
                "employees": 1.0,
                "activity:all": -2.3,
                "activity:xyz_abc": -0.5,
                "days_since_created": -0.04,  # too small to be a reason
            }
        ]
    )
    out = top_reasons(pp, features, SPEC, n=3).iloc[0]
    assert out["reason_pos_1"] == "Viewed the pricing page 3 times in the last 30 days (+6.1 pts)"
    assert out["reason_pos_2"] == "Job level is VP (+4.2 pts)"
    assert out["reason_pos_3"] == "Employees is 5,000 (+1.0 pts)"
    assert out["reason_neg_1"] == f"No activity for 45 days ({MINUS}2.3 pts)"
    assert (
        out["reason_neg_2"] == f"Activity 'xyz_abc': 3 times in the last 30 days ({MINUS}0.5 pts)"
    )
    assert out["reason_neg_3"] == ""


def test_missing_values_read_unknown():
    features = feature_rows([{"employees": np.nan, "days_since_last_activity": np.nan}])
    pp = contributions([{"job_level": -1.25, "employees": -0.5, "activity:all": -0.3}])
    out = top_reasons(pp, features, SPEC, n=3).iloc[0]
    assert out["reason_neg_1"] == f"Job level is unknown ({MINUS}1.2 pts)"
    assert out["reason_neg_2"] == f"Employees is unknown ({MINUS}0.5 pts)"
    assert out["reason_neg_3"] == f"No activity recorded yet ({MINUS}0.3 pts)"
    assert list(out[["reason_pos_1", "reason_pos_2", "reason_pos_3"]]) == ["", "", ""]


@pytest.mark.parametrize(
    ("window_counts", "expected"),
    [
        ((1, 1, 1, 1), "Viewed the pricing page 1 time in the last 7 days"),
        ((1, 1, 4, 9), "Viewed the pricing page 4 times in the last 90 days"),
        ((0, 0, 0, 4), "Viewed the pricing page 4 times, but not in the last 90 days"),
        ((0, 0, 0, 0), "Never viewed the pricing page"),
        ((2, 1200, 1200, 1500), "Viewed the pricing page 1,200 times in the last 30 days"),
    ],
)
def test_activity_window_rule(window_counts, expected):
    features = feature_rows([counts("pricing_page_view", *window_counts)])
    pp = contributions([{"activity:pricing_page_view": 2.0}])
    assert top_reasons(pp, features, SPEC, n=1).iloc[0]["reason_pos_1"] == f"{expected} (+2.0 pts)"


def test_known_verbs_and_generic_types():
    features = feature_rows(
        [{**counts("demo_request", 1, 1, 1, 1), **counts("xyz_abc", 0, 0, 0, 0)}]
    )
    pp = contributions([{"activity:demo_request": 9.0, "activity:xyz_abc": -1.0}])
    out = top_reasons(pp, features, SPEC, n=1).iloc[0]
    assert out["reason_pos_1"] == "Requested a demo 1 time in the last 7 days (+9.0 pts)"
    assert out["reason_neg_1"] == f"Activity 'xyz_abc': never ({MINUS}1.0 pts)"


def test_recency_and_age_phrases():
    assert list(recency_phrases(pd.Series([3.7, 45.0, np.nan, 0.2, 1.0]))) == [
        "Last activity 3 days ago",
        "No activity for 45 days",
        "No activity recorded yet",
        "Last activity less than a day ago",
        "Last activity 1 day ago",
    ]
    assert list(age_phrases(pd.Series([2.5, 84.0, 1.0, 400.0, 1000.0, np.nan]))) == [
        "New lead (created 2 days ago)",
        "Lead is 12 weeks old",
        "New lead (created 1 day ago)",
        "Lead is 13 months old",
        "Lead is 2 years old",
        "Lead age is unknown",
    ]


def test_nice_names_and_numbers():
    assert nice_name("job_level") == "Job level"
    assert nice_name("annualRevenue") == "Annual revenue"
    assert nice_name("ARR_usd") == "ARR usd"
    assert format_number(5000.0) == "5,000"
    assert format_number(1234567.89) == "1,234,568"
    assert format_number(12.345) == "12.3"
    assert format_number(0.25) == "0.25"
    assert format_number(-3.0) == "-3"
    assert list(format_points(np.array([4.21, -2.34, 0.0, -0.04]))) == [
        "+4.2 pts",
        f"{MINUS}2.3 pts",
        "+0.0 pts",
        "+0.0 pts",
    ]


def test_label_overrides_attribute_names():
    features = feature_rows([{"employees": 5000.0}])
    pp = contributions([{"employees": 1.0}])
    labels = {"employees": "Company size (employees)"}
    out = top_reasons(pp, features, SPEC, n=1, labels=labels).iloc[0]
    assert out["reason_pos_1"] == "Company size (employees) is 5,000 (+1.0 pts)"


def test_lists_have_only_their_sign_strongest_first():
    rng = np.random.default_rng(0)
    n = 300
    features = feature_rows([{}] * 1).iloc[[0] * n].reset_index(drop=True)
    pp = pd.DataFrame(rng.normal(0, 3, (n, len(GROUPS))), columns=GROUPS)
    pp.iloc[:10] = np.abs(pp.iloc[:10])  # rows with no negative effect at all
    out = top_reasons(pp, features, SPEC, n=3)
    assert list(out.columns) == [f"reason_{s}_{k}" for s in ("pos", "neg") for k in (1, 2, 3)]

    def points(text: str) -> float:
        number = text.rsplit("(", 1)[1].split(" ")[0]
        return float(number.replace(MINUS, "-"))

    for i in range(n):
        pos = [points(t) for t in out.iloc[i, :3] if t]
        neg = [points(t) for t in out.iloc[i, 3:] if t]
        assert all(v > 0 for v in pos) and all(v < 0 for v in neg)
        assert pos == sorted(pos, reverse=True) and neg == sorted(neg)
        assert len(pos) == min(3, int((pp.iloc[i] >= 0.05).sum()))
    assert (out.iloc[:10, 3:] == "").all().all()


def test_more_slots_than_groups_are_empty():
    features = feature_rows([{"job_level": "VP"}])
    pp = contributions([{"job_level": 1.0}])[["job_level"]]
    out = top_reasons(pp, features, SPEC, n=2)
    assert list(out.iloc[0]) == ["Job level is VP (+1.0 pts)", "", "", ""]


def test_phrases_are_built_per_group_not_per_row(monkeypatch):
    calls = []
    original = reasons_module.group_phrases

    def counting(group, features, *args, **kwargs):
        calls.append(len(features))
        return original(group, features, *args, **kwargs)

    monkeypatch.setattr(reasons_module, "group_phrases", counting)
    rng = np.random.default_rng(1)
    n = 2_000
    features = feature_rows([{"job_level": "VP", "employees": 10.0}]).iloc[[0] * n]
    pp = pd.DataFrame(rng.normal(0, 3, (n, len(GROUPS))), columns=GROUPS)
    out = top_reasons(pp, features.reset_index(drop=True), SPEC, n=3)
    assert len(calls) <= len(GROUPS)
    assert sum(calls) <= 6 * n
    assert ((out["reason_pos_1"] != "") == (pp.max(axis=1) >= 0.05)).all()


def test_row_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="feature rows"):
        top_reasons(contributions([{}, {}]), feature_rows([{}]), SPEC)
