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
    timeline_phrases,
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
    "lead:timeline",
    "activity:pricing_page_view",
    "activity:xyz_abc",
    "activity:demo_request",
]
# leads without activity and 0 days old: the activity types' facts are absences ("Never ...")
SAYABLE_FOR_BLANK_LEADS = ["job_level", "employees", "lead:timeline"]
TYPICAL = {  # mean counts over training rows, per window
    **{f"act__pricing_page_view__{w}": v for w, v in (("7d", 0.5), ("30d", 2.0), ("90d", 4.0))},
    "act__pricing_page_view__total": 6.0,
}


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
                "lead:timeline": -2.3,
                "activity:xyz_abc": -0.5,
                "activity:demo_request": -0.04,  # too small to be a second reason
            }
        ]
    )
    out = top_reasons(pp, features, SPEC, n=3).iloc[0]
    assert out["reason_pos_1"] == "Viewed the pricing page 3 times in the last 30 days (+6.1 pts)"
    assert out["reason_pos_2"] == "Job level is VP (+4.2 pts)"
    assert out["reason_pos_3"] == "Employees is 5,000 (+1.0 pts)"
    assert out["reason_neg_1"] == f"Lead is 12 weeks old, no activity for 45 days ({MINUS}2.3 pts)"
    assert (
        out["reason_neg_2"] == f"Activity 'xyz_abc': 3 times in the last 30 days ({MINUS}0.5 pts)"
    )
    assert out["reason_neg_3"] == ""


def test_missing_values_read_unknown():
    features = feature_rows(
        [{"employees": np.nan, "days_since_created": np.nan, "days_since_last_activity": np.nan}]
    )
    pp = contributions([{"job_level": -1.25, "employees": -0.5, "lead:timeline": -0.3}])
    out = top_reasons(pp, features, SPEC, n=3).iloc[0]
    assert out["reason_neg_1"] == f"Job level is unknown ({MINUS}1.2 pts)"
    assert out["reason_neg_2"] == f"Employees is unknown ({MINUS}0.5 pts)"
    assert out["reason_neg_3"] == f"Lead age is unknown, no activity yet ({MINUS}0.3 pts)"
    assert list(out[["reason_pos_1", "reason_pos_2", "reason_pos_3"]]) == ["", "", ""]


@pytest.mark.parametrize(
    ("window_counts", "expected"),
    [
        ((1, 1, 1, 1), "Viewed the pricing page 1 time in the last 7 days"),
        ((1, 1, 4, 9), "Viewed the pricing page 4 times in the last 90 days"),
        ((0, 0, 0, 4), "Viewed the pricing page 4 times, but not in the last 90 days"),
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
        "No activity yet",
        "Last activity less than a day ago",
        "Last activity 1 day ago",
    ]
    assert list(age_phrases(pd.Series([2.5, 84.0, 1.0, 400.0, 1000.0, np.nan]))) == [
        "New lead: created 2 days ago",
        "Lead is 12 weeks old",
        "New lead: created 1 day ago",
        "Lead is 13 months old",
        "Lead is 2 years old",
        "Lead age is unknown",
    ]


@pytest.mark.parametrize(
    ("age", "recency", "expected"),
    [
        (8.2, np.nan, "New lead: created 8 days ago, no activity yet"),
        (0.5, 0.1, "New lead: created less than a day ago, last activity less than a day ago"),
        (84.0, 3.0, "Lead is 12 weeks old, last activity 3 days ago"),
        (200.0, 45.0, "Lead is 6 months old, no activity for 45 days"),
        (1000.0, np.nan, "Lead is 2 years old, no activity yet"),
    ],
)
def test_age_recency_and_all_activity_are_one_timeline_reason(age, recency, expected):
    row = {
        "days_since_created": age,
        "days_since_last_activity": recency,
        **counts("all", 0, 2, 5, 9),
    }
    features = feature_rows([row])
    assert list(timeline_phrases(features)) == [expected]
    pp = contributions([{"lead:timeline": -1.5}])
    out = top_reasons(pp, features, SPEC, n=2).iloc[0]
    assert list(out) == ["", "", f"{expected} ({MINUS}1.5 pts)", ""]
    groups = {SPEC.group_of(c) for c in ("days_since_created", "days_since_last_activity")}
    groups |= {SPEC.group_of(SPEC.activity_feature("all", w)) for w in (7, 30, 90, None)}
    assert groups == {"lead:timeline"}


def test_every_window_of_a_type_is_one_reason():
    for kind in SPEC.activity_types:
        columns = [SPEC.activity_feature(kind, w) for w in (7, 30, 90, None)]
        assert {SPEC.group_of(c) for c in columns} == {f"activity:{kind}"}
    features = feature_rows([counts("pricing_page_view", 1, 2, 3, 4)])
    pp = contributions([{"activity:pricing_page_view": 3.0, "job_level": 1.0}])
    out = top_reasons(pp, features, SPEC, n=3).iloc[0]
    assert [r for r in out if "pricing page" in r] == [
        "Viewed the pricing page 3 times in the last 90 days (+3.0 pts)"
    ]


def test_an_absence_is_never_a_reason_for():
    features = feature_rows(
        [
            # an old lead with no activity at all: both facts are absences
            {"days_since_created": 200.0, "days_since_last_activity": np.nan},
            # a new lead without activity: its newness is a reason for
            {"days_since_created": 8.0, "days_since_last_activity": np.nan},
            # an old lead active 3 days ago; never viewed the pricing page
            {"days_since_created": 200.0, "days_since_last_activity": 3.0},
        ]
    )
    effects = {"lead:timeline": 7.4, "activity:pricing_page_view": 2.0, "job_level": 0.5}
    pp = contributions([effects] * 3)
    out = top_reasons(pp, features, SPEC, n=3)
    assert list(out.iloc[0, :3]) == ["Job level is unknown (+0.5 pts)", "", ""]
    assert list(out.iloc[1, :2]) == [
        "New lead: created 8 days ago, no activity yet (+7.4 pts)",
        "Job level is unknown (+0.5 pts)",
    ]
    assert out.iloc[2, 0] == "Lead is 6 months old, last activity 3 days ago (+7.4 pts)"
    reasons_for = pd.Series(out.iloc[:, :3].to_numpy().ravel())
    assert not reasons_for.str.contains(r"^(?:No activity|Never)|: never").any()
    # the same facts with negative effects are reasons against
    against = top_reasons(-pp, features, SPEC, n=3)
    assert against.iloc[0, 3] == f"Lead is 6 months old, no activity yet ({MINUS}7.4 pts)"
    assert against.iloc[0, 4] == f"Never viewed the pricing page ({MINUS}2.0 pts)"


def test_no_reason_for_is_an_absence_on_random_leads():
    rng = np.random.default_rng(3)
    n = 500
    rows = []
    for _ in range(n):
        row = {
            "days_since_created": rng.choice([2.0, 30.0, 400.0]),
            "days_since_last_activity": rng.choice([np.nan, 1.0, 60.0]),
        }
        for kind in ("pricing_page_view", "xyz_abc", "demo_request"):
            c7 = int(rng.integers(0, 2))
            row.update(counts(kind, c7, c7 + 1, c7 + 2, c7 + 3) if rng.random() < 0.5 else {})
        rows.append(row)
    features = feature_rows(rows)
    pp = pd.DataFrame(rng.normal(0, 2, (n, len(GROUPS))), columns=GROUPS)
    out = top_reasons(pp, features, SPEC, n=3)
    reasons_for = pd.Series(out.iloc[:, :3].to_numpy().ravel())
    assert not reasons_for.str.contains(r"^(?:No activity|Never)|: never").any()
    old_and_quiet = reasons_for.str.match(r"^Lead is .*, no activity")
    assert not old_and_quiet.any()
    assert reasons_for.str.match(r"^New lead: .*, no activity yet").any()  # newness may be said


def test_nice_names_and_numbers():
    assert nice_name("job_level") == "Job level"
    assert nice_name("annualRevenue") == "Annual revenue"
    assert nice_name("ARR_usd") == "ARR usd"
    assert format_number(5000.0) == "5,000"
    assert format_number(1234567.89) == "1,234,568"
    assert format_number(12.345) == "12.3"
    assert format_number(0.25) == "0.25"
    assert format_number(-3.0) == "-3"
    assert list(format_points(np.array([4.21, -2.34, 0.0, -0.04, 0.049, 0.05, 0.0996]))) == [
        "+4.2 pts",
        f"{MINUS}2.3 pts",
        "+0.00 pts",
        f"{MINUS}0.04 pts",
        "+0.05 pts",
        "+0.05 pts",
        "+0.10 pts",
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

    sayable = pp[SAYABLE_FOR_BLANK_LEADS]  # the activity types are "Never ...": not for
    for i in range(n):
        pos = [points(t) for t in out.iloc[i, :3] if t]
        neg = [points(t) for t in out.iloc[i, 3:] if t]
        assert all(v > 0 for v in pos) and all(v < 0 for v in neg)
        assert pos == sorted(pos, reverse=True) and neg == sorted(neg)
        some_for = int(sayable.iloc[i].max() >= 0.005)  # the strongest, even under 0.05
        some_against = int(pp.iloc[i].min() <= -0.005)
        assert len(pos) == max(min(3, int((sayable.iloc[i] >= 0.05).sum())), some_for)
        assert len(neg) == max(min(3, int((pp.iloc[i] <= -0.05).sum())), some_against)
    assert (out.iloc[:10, 3:] == "").all().all()


def test_below_typical_counts_are_worded_as_such():
    kind = "pricing_page_view"
    cases = [  # (7d, 30d, 90d, total) -> the reason against
        ((0, 1, 1, 1), "Viewed the pricing page only 1 time in the last 90 days"),
        ((0, 3, 3, 3), "Viewed the pricing page only 3 times in the last 90 days"),
        (
            (0, 6, 6, 6),
            "Viewed the pricing page 6 times in the last 30 days, none in the last 7 days",
        ),
        (
            (1, 1, 5, 5),
            "Viewed the pricing page 5 times in the last 90 days, only 1 in the last 30 days",
        ),
        ((1, 9, 9, 9), "Viewed the pricing page 9 times in the last 30 days"),
        ((0, 0, 0, 2), "Viewed the pricing page 2 times, but not in the last 90 days"),
        ((0, 0, 0, 0), "Never viewed the pricing page"),
    ]
    features = feature_rows([counts(kind, *c) for c, _ in cases])
    pp = contributions([{"activity:pricing_page_view": -1.0}] * len(cases))
    out = top_reasons(pp, features, SPEC, n=1, typical=TYPICAL)
    assert list(out["reason_neg_1"]) == [f"{text} ({MINUS}1.0 pts)" for _, text in cases]
    # a reason for, or no typical counts known: the plain count
    assert top_reasons(-pp, features, SPEC, n=1, typical=TYPICAL).iloc[0, 0] == (
        "Viewed the pricing page 1 time in the last 30 days (+1.0 pts)"
    )
    assert top_reasons(pp, features, SPEC, n=1).iloc[0, 1] == (
        f"Viewed the pricing page 1 time in the last 30 days ({MINUS}1.0 pts)"
    )


def test_every_lead_gets_a_reason_of_each_sign_it_has():
    features = feature_rows(
        [{"job_level": "VP", "days_since_created": 3.0}] * 3
        + [{"days_since_created": 300.0, "days_since_last_activity": np.nan}]
    )
    pp = contributions(
        [
            {"job_level": 0.03, "employees": -0.02, "lead:timeline": 0.01},  # all under 0.05
            {"job_level": 0.003, "employees": -0.004},  # would read 0.00: no effect to speak of
            {"job_level": 2.0, "employees": -0.01, "activity:demo_request": -0.02},
            {"lead:timeline": 0.8, "activity:demo_request": 0.9, "job_level": -0.5},  # absences
        ]
    )
    out = top_reasons(pp, features, SPEC, n=2)
    assert list(out.iloc[0]) == [
        "Job level is VP (+0.03 pts)",
        "",
        f"Employees is 0 ({MINUS}0.02 pts)",
        "",
    ]
    assert list(out.iloc[1]) == ["", "", "", ""]
    assert list(out.iloc[2]) == [
        "Job level is VP (+2.0 pts)",
        "",
        f"Never requested a demo ({MINUS}0.02 pts)",
        "",
    ]
    assert list(out.iloc[3]) == ["", "", f"Job level is unknown ({MINUS}0.5 pts)", ""]


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
    sayable = pp[SAYABLE_FOR_BLANK_LEADS].max(axis=1)
    assert ((out["reason_pos_1"] != "") == (sayable >= 0.005)).all()
    assert ((out["reason_neg_1"] != "") == (pp.min(axis=1) <= -0.005)).all()


def test_row_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="feature rows"):
        top_reasons(contributions([{}, {}]), feature_rows([{}]), SPEC)
