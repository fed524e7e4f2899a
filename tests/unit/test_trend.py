"""Trend on the headline probability with its reason, the previous run kept in the folder, stale
data and the training horizon (dormant leads), on small hand-made frames."""

from __future__ import annotations

import logging

import numpy as np
import openpyxl
import pandas as pd
import pytest

from leadscore.config import Score
from leadscore.data.features import AGE_FEATURE, FeatureSpec, hold_age
from leadscore.errors import ScoringError
from leadscore.feedback.read import read_report_xlsx
from leadscore.reporting.html import write_report_html
from leadscore.reporting.summary import ReportContext, RunSummary, summary_items
from leadscore.reporting.xlsx import write_report_xlsx
from leadscore.scoring.freshness import check_freshness, stale_data_warning, timestamp_text
from leadscore.scoring.reasons import group_phrases
from leadscore.scoring.stream import LeadTally, track_event_times
from leadscore.scoring.tracking import ModelRef
from leadscore.scoring.trend import (
    CONTRIBUTIONS_PARQUET,
    PREVIOUS_CONTRIBUTIONS,
    PREVIOUS_SCORES,
    SCORES_PARQUET,
    PreviousRun,
    TrendRule,
    contributions_table,
    keep_previous_run,
    read_previous_run,
    same_model,
    trend_columns,
    trend_labels,
)

SPEC = FeatureSpec(
    categorical=("industry",),
    numeric=(),
    activity_types=(),
    windows_days=(),
    has_time=True,
    has_activities=False,
)
GROUPS = ["industry", AGE_FEATURE]
REF = ModelRef("leadscore", "3", "run-3", "models:/leadscore@champion")
WEEK_AGO = pd.Timestamp("2026-10-25")
AS_OF = pd.Timestamp("2026-11-01")
RULE = TrendRule(min_relative=0.2, min_points=0.5)


def test_up_and_down_follow_the_sign_of_the_change_and_small_moves_are_steady():
    before = np.array([0.020, 0.020, 0.020, 0.020, 0.300, 0.300, 0.001, 0.050])
    now = np.array([0.026, 0.014, 0.022, 0.0245, 0.340, 0.370, 0.004, 0.050])
    got = trend_labels(now, before, RULE)
    # +0.6 pts/+30%, -0.6 pts, +0.2 pts (too small), +0.45 pts (under 0.5 pts),
    # +4 pts but only +13% of 30%, +7 pts and +23%, +0.3 pts (x4 but too small), no change
    assert got.tolist() == ["up", "down", "steady", "steady", "steady", "up", "steady", "steady"]
    rng = np.random.default_rng(0)
    before, now = rng.uniform(0, 0.4, 5_000), rng.uniform(0, 0.4, 5_000)
    got = trend_labels(now, before, RULE)
    assert (now[got == "up"] > before[got == "up"]).all()
    assert (now[got == "down"] < before[got == "down"]).all()
    moved = (100 * np.abs(now - before) >= 0.5) & (np.abs(now - before) >= 0.2 * before)
    assert (got[~moved] == "steady").all() and (got[moved] != "steady").all()


def test_thresholds_hold_at_their_edge_and_zero_rules_still_need_a_move():
    assert trend_labels(np.array([0.025]), np.array([0.020]), RULE).tolist() == ["up"]
    loose = TrendRule(min_relative=0.0, min_points=0.0)
    assert trend_labels(np.array([0.02, 0.021]), np.array([0.02, 0.02]), loose).tolist() == [
        "steady",
        "up",
    ]


def previous_run(**changes) -> PreviousRun:
    """Leads a, b, c scored a week ago by REF's model, with their effects per group."""
    fields = dict(
        as_of=WEEK_AGO,
        lead_ids=pd.Index(["a", "b", "c"], dtype=object),
        p=np.array([0.02, 0.05, 0.03]),
        model_version="3",
        run_id="run-3",
        groups=tuple(GROUPS),
        contributions=np.array([[0.5, -1.0], [2.0, 0.5], [0.0, 0.0]], dtype=np.float32),
    )
    return PreviousRun(**{**fields, **changes})


def current_chunk():
    lead_ids = pd.Series(["c", "a", "b", "z"], dtype="string")
    p_now = np.array([0.0301, 0.03, 0.035, 0.04])
    # a: industry +0.2, age +0.8 (up by 1.0 pts); b: industry -1.2, age -0.3 (down 1.5 pts)
    contrib = pd.DataFrame(
        {"industry": [0.0, 0.7, 0.8, 1.0], AGE_FEATURE: [0.01, -0.2, 0.2, 0.0]}, columns=GROUPS
    )
    features = pd.DataFrame(
        {"industry": ["Retail", "Banking", "Energy", "Retail"], AGE_FEATURE: [3.0, 40.0, 90.0, 1.0]}
    )
    return lead_ids, p_now, contrib, features


def test_trend_columns_name_the_group_that_moved_most_in_the_trends_direction():
    lead_ids, p_now, contrib, features = current_chunk()
    trend, reason = trend_columns(
        lead_ids, p_now, contrib, features, SPEC, previous_run(), REF, RULE, AS_OF
    )
    assert trend.tolist() == ["steady", "up", "down", "new"]
    age_fact = group_phrases(AGE_FEATURE, features.iloc[[1]], SPEC)[0]
    industry_fact = group_phrases("industry", features.iloc[[2]], SPEC)[0]
    assert reason.tolist() == [
        "",
        f"{age_fact}: +0.8 pts since last week",
        f"{industry_fact}: -1.2 pts since last week",
        "",
    ]
    assert "Energy" in industry_fact


def test_trend_reason_dates_a_run_that_was_not_a_week_before():
    lead_ids, p_now, contrib, features = current_chunk()
    earlier = previous_run(as_of=pd.Timestamp("2026-10-11"))
    _, reason = trend_columns(lead_ids, p_now, contrib, features, SPEC, earlier, REF, RULE, AS_OF)
    assert reason.iloc[1].endswith("+0.8 pts since 2026-10-11")


def test_no_previous_run_gives_empty_trends_and_another_model_is_not_compared():
    lead_ids, p_now, contrib, features = current_chunk()
    trend, reason = trend_columns(lead_ids, p_now, contrib, features, SPEC, None, REF, RULE, AS_OF)
    assert trend.tolist() == [""] * 4 and reason.tolist() == [""] * 4
    older = previous_run(model_version="2", run_id="run-2")
    trend, reason = trend_columns(lead_ids, p_now, contrib, features, SPEC, older, REF, RULE, AS_OF)
    assert trend.tolist() == ["model_changed"] * 3 + ["new"]
    assert reason.iloc[0] == "New model (version 3, was 2): not compared with the last run"
    # without contributions kept (a run of an older version): the trend, no reason
    bare = previous_run(contributions=None, groups=())
    trend, reason = trend_columns(lead_ids, p_now, contrib, features, SPEC, bare, REF, RULE, AS_OF)
    assert trend.tolist() == ["steady", "up", "down", "new"] and set(reason) == {""}


def test_same_model_goes_by_training_run_then_version():
    assert same_model(previous_run(), REF)
    assert not same_model(previous_run(run_id="run-2"), REF)
    folder = ModelRef("champion", "", "", "models/champion")
    assert same_model(previous_run(model_version="", run_id=""), folder)
    assert not same_model(previous_run(p=None), REF)


def write_run(out, as_of: pd.Timestamp, lead_ids: list[str], p: list[float]) -> None:
    """A scores.parquet and contributions.parquet as a run on `as_of` leaves them."""
    scores = pd.DataFrame(
        {
            "lead_id": lead_ids,
            "p_won": p,
            "model_version": "3",
            "run_id": "run-3",
            "as_of": pd.Series(as_of.date(), index=range(len(lead_ids))),
        }
    )
    scores.to_parquet(out / SCORES_PARQUET, index=False)
    effects = pd.DataFrame({g: np.arange(len(lead_ids), dtype=float) for g in GROUPS})
    table = contributions_table(pd.Series(lead_ids, dtype="string"), effects, as_of)
    import pyarrow.parquet as pq

    pq.write_table(table, out / CONTRIBUTIONS_PARQUET)


def test_the_run_in_the_folder_becomes_the_previous_run_for_a_later_date_only(tmp_path):
    write_run(tmp_path, WEEK_AGO, ["a", "b"], [0.1, 0.2])
    keep_previous_run(tmp_path, WEEK_AGO)  # a rerun of the same date: nothing kept
    assert not (tmp_path / PREVIOUS_SCORES).exists()
    keep_previous_run(tmp_path, AS_OF)
    previous = read_previous_run(tmp_path, AS_OF, "won")
    assert previous.as_of == WEEK_AGO and previous.lead_ids.tolist() == ["a", "b"]
    assert previous.p.tolist() == [0.1, 0.2] and previous.groups == tuple(GROUPS)
    assert previous.contributions.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert read_previous_run(tmp_path, WEEK_AGO, "won") is None  # not before that date
    assert read_previous_run(tmp_path, AS_OF, "meeting").p is None  # no such column then
    # a later run without contributions (an older version) leaves none behind to mismatch
    write_run(tmp_path, AS_OF, ["a"], [0.3])
    (tmp_path / CONTRIBUTIONS_PARQUET).unlink()
    keep_previous_run(tmp_path, AS_OF + pd.Timedelta(days=7))
    assert not (tmp_path / PREVIOUS_CONTRIBUTIONS).exists()


def test_contributions_of_another_run_are_not_used(tmp_path, caplog):
    write_run(tmp_path, WEEK_AGO - pd.Timedelta(days=7), ["a", "b"], [0.1, 0.2])
    keep_previous_run(tmp_path, WEEK_AGO)
    write_run(tmp_path, WEEK_AGO, ["a", "b"], [0.1, 0.2])
    (tmp_path / SCORES_PARQUET).replace(tmp_path / PREVIOUS_SCORES)  # scores kept, effects not
    with caplog.at_level(logging.WARNING, logger="leadscore"):
        previous = read_previous_run(tmp_path, AS_OF, "won")
    assert previous.contributions is None and previous.p is not None
    assert any("trend reasons left out" in m for m in caplog.messages)


def test_stale_data_warns_with_the_date_and_can_refuse(caplog):
    through = pd.Timestamp("2026-10-31 23:37:14")
    assert stale_data_warning(through, pd.Timestamp("2026-11-03"), 3) is None
    warning = stale_data_warning(through, pd.Timestamp("2026-11-04"), 3)
    assert warning.startswith("stale data") and "2026-10-31" in warning and "4 days" in warning
    assert stale_data_warning(None, AS_OF, 3) is None
    with caplog.at_level(logging.WARNING, logger="leadscore"):
        assert check_freshness(through, pd.Timestamp("2026-11-04"), Score()) == (warning,)
    assert warning in caplog.messages
    with pytest.raises(ScoringError, match=r"refused.*2026-10-31"):
        check_freshness(through, pd.Timestamp("2026-11-04"), Score(refuse_stale_data=True))
    assert check_freshness(through, AS_OF, Score(refuse_stale_data=True)) == ()
    assert timestamp_text(through) == "2026-10-31 23:37:14"
    assert timestamp_text(pd.Timestamp("2026-10-31")) == "2026-10-31"


def test_data_through_is_the_newest_time_in_leads_and_events():
    tally = LeadTally()
    leads = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2026-10-01", "2026-10-20"]),
            "won_at": pd.to_datetime([None, "2026-10-28"]),
        }
    )
    tally.see_times(leads, ("created_at", "meeting_at", "won_at"))
    assert tally.data_through == pd.Timestamp("2026-10-28")
    events = [pd.DataFrame({"occurred_at": pd.to_datetime(d)}) for d in (["2026-10-30"], [])]
    assert len(list(track_event_times(events, tally))) == 2
    assert tally.data_through == pd.Timestamp("2026-10-30")


def test_ages_beyond_the_horizon_are_held_at_it():
    features = pd.DataFrame(
        {"industry": ["a", "b", "c", "d"], AGE_FEATURE: np.array([10, 182, 183.5, np.nan], "f4")}
    )
    held, dormant = hold_age(features, 182)
    assert dormant.tolist() == [False, False, True, False]
    assert held[AGE_FEATURE].tolist()[:3] == [10, 182, 182] and np.isnan(held[AGE_FEATURE].iloc[3])
    assert held[AGE_FEATURE].dtype == np.float32 and features[AGE_FEATURE].iloc[2] == 183.5
    same, none = hold_age(features, None)
    assert same is features and not none.any()


def report_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["L1", "L2"],
            "score": [90, 40],
            "grade": ["A", "C"],
            "p_won": [0.2, 0.01],
            "trend": ["up", "steady"],
            "trend_reason": ["Industry is Retail: +1.2 pts since last week", ""],
            "dormant": [False, True],
            "explore": [False, False],
            "as_of": ["2026-11-01", "2026-11-01"],
        }
    )


def test_reports_show_dormant_leads_the_trend_reason_and_warnings_above_the_lead_list(tmp_path):
    warning = "stale data: the newest record is from 2026-10-31"
    summary = RunSummary(2, {"A": 1, "C": 1}, (0,) * 101, (warning,), n_dormant=1)
    context = ReportContext(horizon_days=182, trend_min_points=0.5, trend_min_relative=0.2)
    items = dict(summary_items(report_scores(), context, summary))
    assert (
        items["Dormant leads"] == "1 older than the model's 182-day horizon, scored as 182 days old"
    )
    assert items["Trend"].startswith(
        "up/down when the probability moved by at least 0.5 pts and 20%"
    )
    page = write_report_html(report_scores(), tmp_path / "r.html", context, summary).read_text()
    assert '<td class="who">L2 <span class="tag">dormant</span></td>' in page
    assert "Industry is Retail: +1.2 pts since last week" in page
    book_path = write_report_xlsx(report_scores(), tmp_path / "r.xlsx", context, summary=summary)
    ws = openpyxl.load_workbook(book_path)["Scores"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == f"Warning: {warning}"
    header = list(rows[1])
    assert {"Trend reason", "Dormant", "Lead"} <= set(header)
    assert rows[3][header.index("Dormant")] is True
    assert ws.freeze_panes == "B3" and ws.auto_filter.ref.startswith("A2:")
    feedback, problems = read_report_xlsx(book_path)
    assert problems == [] and feedback is not None
