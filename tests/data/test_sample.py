"""Tests of the synthetic B2B funnel generator (`leadscore.data.sample`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.data.io import read_table
from leadscore.data.sample import (
    ACTIVITY_TYPES,
    EXPORT_DATE,
    SampleData,
    generate_funnel,
    write_sample,
)

LEAD_COLUMNS = [
    "lead_id",
    "account_id",
    "created_at",
    "company_name",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "job_level",
    "job_function",
    "lead_source",
    "meeting_at",
    "won_at",
    "lost_at",
    "amount",
]
ACTIVITY_COLUMNS = ["lead_id", "occurred_at", "activity_type"]
TIMESTAMP_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
N = 20_000
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def data() -> SampleData:
    return generate_funnel(n_leads=N, seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), n_leads=5_000, seed=3)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", n_leads=3_000, seed=11)
    b = write_sample(tmp_path / "b", n_leads=3_000, seed=11)
    c = write_sample(tmp_path / "c", n_leads=3_000, seed=12)
    assert set(a) == {"leads", "activities", "feedback"}
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes()
        assert a[key].read_bytes() != c[key].read_bytes()


def test_write_sample_returns_the_written_files(written: dict[str, Path]) -> None:
    assert written["leads"].name == "leads.csv"
    assert written["activities"].name == "activities.csv"
    assert written["leads"].parent == written["activities"].parent
    assert sorted(p.name for p in written["leads"].parent.iterdir()) == [
        "activities.csv",
        "feedback.csv",
        "leads.csv",
    ]


def test_sample_feedback_corrects_the_crm_and_reports_recent_leads(written) -> None:
    from leadscore.data.sample import EXPORT_DATE, FEEDBACK_HORIZON

    leads = read_table(written["leads"]).set_index("lead_id")
    feedback = read_table(written["feedback"])
    dates = pd.to_datetime(feedback["date"])
    assert (dates <= EXPORT_DATE + FEEDBACK_HORIZON).all()  # never in the future
    history = feedback[dates < EXPORT_DATE.normalize()]
    recent = feedback[dates >= EXPORT_DATE.normalize()]
    # corrections: meetings held that the CRM never logged
    assert len(history) > 0 and set(history["outcome"]) == {"meeting_held"}
    assert leads.loc[history["lead_id"], "meeting_at"].isna().all()
    assert leads.loc[history["lead_id"], "won_at"].isna().all()
    # news on leads still open at the export date
    crm_open = leads[["meeting_at", "won_at", "lost_at"]].isna().all(axis=1)
    assert crm_open.loc[recent["lead_id"]].all()
    assert set(recent["outcome"]) >= {"meeting_held", "disqualified"}


def test_written_schema_and_column_order(written: dict[str, Path]) -> None:
    leads = read_table(written["leads"])
    activities = read_table(written["activities"])
    assert list(leads.columns) == LEAD_COLUMNS
    assert list(activities.columns) == ACTIVITY_COLUMNS
    assert len(leads) == 5_000
    assert leads["lead_id"].str.fullmatch(r"L\d{7}").all()
    assert leads["account_id"].str.fullmatch(r"A\d{6}").all()
    assert leads["lead_id"].is_unique
    assert set(activities["activity_type"]) == set(ACTIVITY_TYPES)
    assert set(activities["lead_id"]) <= set(leads["lead_id"])


def test_written_timestamps_are_iso_seconds_or_empty(written: dict[str, Path]) -> None:
    leads = read_table(written["leads"])
    activities = read_table(written["activities"])
    for col in ["created_at", "meeting_at", "won_at", "lost_at"]:
        present = leads[col].dropna()
        assert len(present) > 0, col
        assert present.str.match(TIMESTAMP_TEXT).all(), col
    assert leads["created_at"].notna().all()
    assert leads["won_at"].isna().any() and leads["meeting_at"].isna().any()
    assert activities["occurred_at"].str.match(TIMESTAMP_TEXT).all()


def test_frame_columns_match_the_files(data: SampleData) -> None:
    assert list(data.leads.columns) == LEAD_COLUMNS
    assert list(data.activities.columns) == ACTIVITY_COLUMNS
    assert len(data.leads) == N


def test_outcomes_are_chronologically_consistent(data: SampleData) -> None:
    leads = data.leads
    created, meeting = leads["created_at"], leads["meeting_at"]
    won, lost = leads["won_at"], leads["lost_at"]
    assert (meeting.dropna() >= created[meeting.notna()]).all()
    assert meeting[won.notna()].notna().all(), "every win had a meeting"
    gap = (won - meeting)[won.notna()]
    assert (gap >= 20 * DAY).all() and (gap <= 150 * DAY).all()
    assert (lost.dropna() >= created[lost.notna()]).all()
    lost_after_meeting = lost.notna() & meeting.notna()
    assert (lost[lost_after_meeting] >= meeting[lost_after_meeting]).all()
    assert not (won.notna() & lost.notna()).any(), "won and lost are exclusive"
    assert leads["amount"].notna().equals(won.notna()), "amount only for won leads"
    assert (leads["amount"].dropna() > 0).all()


def test_nothing_after_export_nor_before_history(data: SampleData) -> None:
    leads = data.leads
    for col in ["created_at", "meeting_at", "won_at", "lost_at"]:
        assert (leads[col].dropna() < EXPORT_DATE).all(), col
    assert (leads["created_at"] >= EXPORT_DATE - 730 * DAY).all()
    assert (data.activities["occurred_at"] < EXPORT_DATE).all()


def test_export_date_and_history_are_respected() -> None:
    export = pd.Timestamp("2025-06-30")
    d = generate_funnel(n_leads=2_000, seed=1, export_date=export, history_days=365)
    created = d.leads["created_at"]
    assert created.min() >= export - 365 * DAY and created.max() < export
    assert created.min() < export - 300 * DAY, "creations span the history"
    for col in ["meeting_at", "won_at", "lost_at"]:
        assert (d.leads[col].dropna() < export).all()
    assert (d.activities["occurred_at"] < export).all()


def test_base_rates_are_plausible_b2b(data: SampleData) -> None:
    leads = data.leads
    meeting = leads["meeting_at"].notna().mean()
    won = leads["won_at"].notna().mean()
    lost = leads["lost_at"].notna().mean()
    assert 0.12 <= meeting <= 0.20
    assert 0.03 <= won <= 0.06
    assert 0.25 <= lost <= 0.60
    lost_without_meeting = (leads["lost_at"].notna() & leads["meeting_at"].isna()).mean()
    lost_after_meeting = (leads["lost_at"].notna() & leads["meeting_at"].notna()).mean()
    assert lost_without_meeting > 0.15 and lost_after_meeting > 0.03
    events_per_lead = len(data.activities) / len(leads)
    assert 18 <= events_per_lead <= 32


def test_creation_volume_rises_gently(data: SampleData) -> None:
    created = data.leads["created_at"]
    first_year = (created < EXPORT_DATE - 365 * DAY).sum()
    second_year = len(created) - first_year
    assert 1.05 < second_year / first_year < 1.6


def test_activities_are_sorted_and_strictly_after_creation(data: SampleData) -> None:
    acts = data.activities
    codes = acts["lead_id"].cat.codes.to_numpy()
    times = acts["occurred_at"].to_numpy()
    ids = acts["lead_id"].astype(str).to_numpy()
    assert (ids[1:] >= ids[:-1]).all(), "sorted by lead_id"
    same_lead = codes[1:] == codes[:-1]
    assert (times[1:][same_lead] >= times[:-1][same_lead]).all(), "then by occurred_at"
    created = data.leads.set_index("lead_id")["created_at"]
    assert (acts["occurred_at"].to_numpy() > created.loc[ids].to_numpy()).all()


def _events_in_window(acts: pd.DataFrame, ends: pd.Series, days: int) -> pd.Series:
    """Events per lead in [end - days, end), for leads indexed by lead_id in `ends`."""
    joined = acts.merge(ends.rename("end"), left_on="lead_id", right_index=True)
    inside = (joined["occurred_at"] < joined["end"]) & (
        joined["occurred_at"] >= joined["end"] - days * DAY
    )
    counts = joined[inside].groupby("lead_id", observed=True).size()
    return counts.reindex(ends.index, fill_value=0)


def test_engagement_precedes_the_meeting(data: SampleData) -> None:
    leads = data.leads.set_index("lead_id")
    acts = data.activities.assign(lead_id=data.activities["lead_id"].astype(str))
    has_meeting = leads["meeting_at"].notna()
    delay = (leads["meeting_at"] - leads["created_at"])[has_meeting]
    rng = np.random.default_rng(0)
    # comparable leads without a meeting: a reference time at the same delay after creation,
    # still before the export date and before any close
    others = leads[~has_meeting]
    ref = others["created_at"] + pd.to_timedelta(rng.choice(delay.to_numpy(), len(others)))
    open_then = (ref < EXPORT_DATE) & ~(others["lost_at"] <= ref)
    before_meeting = _events_in_window(acts, leads.loc[has_meeting, "meeting_at"], 30)
    before_ref = _events_in_window(acts, ref[open_then], 30)
    assert len(before_meeting) > 1_000 and len(before_ref) > 5_000
    assert before_meeting.mean() > 1.5 * before_ref.mean()
    # and the pre-meeting events lean to high-intent types
    high = acts[acts["activity_type"].isin(["pricing_page_view", "demo_request"])]
    high_before_meeting = _events_in_window(high, leads.loc[has_meeting, "meeting_at"], 30)
    high_before_ref = _events_in_window(high, ref[open_then], 30)
    assert high_before_meeting.mean() > 2.0 * high_before_ref.mean()


def test_activity_drops_after_a_close(data: SampleData) -> None:
    leads = data.leads.set_index("lead_id")
    acts = data.activities.assign(lead_id=data.activities["lead_id"].astype(str))
    close = leads["won_at"].fillna(leads["lost_at"])
    closed = close.notna() & (close < EXPORT_DATE - 30 * DAY)
    age = (close - leads["created_at"])[closed]
    # never-closed leads, looked at the same age after creation
    never = leads[close.isna() & leads["meeting_at"].isna()]
    rng = np.random.default_rng(1)
    ref = never["created_at"] + pd.to_timedelta(rng.choice(age.to_numpy(), len(never)))
    ref = ref[ref < EXPORT_DATE - 30 * DAY]
    after_close = _events_in_window(acts, close[closed] + 30 * DAY, 30)
    after_ref = _events_in_window(acts, ref + 30 * DAY, 30)
    assert closed.sum() > 2_000 and len(ref) > 2_000
    assert after_close.mean() < 0.25 * after_ref.mean()


def test_some_leads_are_still_open_at_export(data: SampleData) -> None:
    leads = data.leads
    is_open = leads["won_at"].isna() & leads["lost_at"].isna()
    recent = leads["created_at"] >= EXPORT_DATE - 60 * DAY
    old = leads["created_at"] < EXPORT_DATE - 365 * DAY
    assert is_open[recent].mean() > 0.6, "recent leads are mostly open"
    assert is_open[recent].mean() > is_open[old].mean() + 0.1
    assert (is_open & leads["meeting_at"].notna()).sum() > 100, "open opportunities exist"
    assert leads.loc[recent, "won_at"].notna().mean() < 0.01


def test_missing_values_only_where_expected(data: SampleData) -> None:
    leads = data.leads
    for col in ["employees", "annual_revenue", "country", "job_function"]:
        assert 0.03 <= leads[col].isna().mean() <= 0.20, col
    for col in ["lead_id", "account_id", "created_at", "company_name", "industry"]:
        assert leads[col].notna().all(), col
    for col in ["job_level", "lead_source"]:
        assert leads[col].notna().all(), col


def test_leads_share_their_account_firmographics(data: SampleData) -> None:
    leads = data.leads
    per_account = leads.groupby("account_id").agg(
        n=("lead_id", "size"),
        **{
            c: (c, lambda s: s.nunique(dropna=False))
            for c in ["company_name", "industry", "employees", "annual_revenue", "country"]
        },
    )
    assert per_account["n"].between(1, 6).all()
    assert (per_account["n"] == 1).mean() > 0.3 and (per_account["n"] >= 4).any()
    assert (per_account.drop(columns="n") == 1).all().all()
    assert leads["company_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Za-z]+ \d+").all()
    emp = leads["employees"].astype(float)
    both = emp.notna() & leads["annual_revenue"].notna()
    corr = np.corrcoef(np.log(emp[both]), np.log(leads.loc[both, "annual_revenue"]))[0, 1]
    assert corr > 0.7


def test_company_size_helps_only_senior_leads(data: SampleData) -> None:
    leads = data.leads
    size = pd.cut(leads["employees"].astype(float), [0, 50, 1_000, np.inf], labels=["s", "m", "l"])
    senior = leads["job_level"].isin(["C-level", "VP", "Director"])
    junior = leads["job_level"] == "Individual contributor"
    meeting = leads["meeting_at"].notna()

    def rate(who: pd.Series, band: str) -> float:
        return float(meeting[who & (size == band)].mean())

    assert rate(senior, "l") > rate(senior, "s") + 0.08
    assert rate(junior, "l") < rate(junior, "s")


def test_webinar_source_works_better_in_some_industries() -> None:
    leads = generate_funnel(n_leads=60_000, seed=5).leads
    webinar = leads["lead_source"] == "webinar"
    meeting = leads["meeting_at"].notna()
    lift = {
        ind: meeting[webinar & (leads["industry"] == ind)].mean()
        - meeting[~webinar & (leads["industry"] == ind)].mean()
        for ind in ["Software", "Retail"]
    }
    assert lift["Software"] > 0.03 > -0.02 > lift["Retail"]


def test_source_mix_and_conversion_drift(data: SampleData) -> None:
    leads = data.leads
    early = leads["created_at"] < EXPORT_DATE - 548 * DAY
    late = (leads["created_at"] >= EXPORT_DATE - 365 * DAY) & (
        leads["created_at"] < EXPORT_DATE - 183 * DAY
    )
    share = {
        name: leads.loc[mask, "lead_source"].value_counts(normalize=True)
        for name, mask in [("early", early), ("late", late)]
    }
    assert share["late"]["content_syndication"] > share["early"]["content_syndication"] + 0.02
    assert share["late"]["paid_search"] < share["early"]["paid_search"] - 0.02
    meeting = leads["meeting_at"].notna()
    assert meeting[late].mean() < meeting[early].mean()


def test_bigger_companies_pay_more(data: SampleData) -> None:
    won = data.leads[data.leads["amount"].notna()]
    emp = won["employees"].astype(float)
    assert won.loc[emp > 1_000, "amount"].median() > 2 * won.loc[emp < 100, "amount"].median()


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_leads"):
        generate_funnel(n_leads=0)
    with pytest.raises(ValueError, match="history_days"):
        generate_funnel(n_leads=10, history_days=0)


def test_tiny_sample_is_valid() -> None:
    d = generate_funnel(n_leads=1, seed=0)
    assert len(d.leads) == 1 and d.leads["lead_id"].iloc[0] == "L0000001"
    assert d.leads["account_id"].iloc[0] == "A000001"
