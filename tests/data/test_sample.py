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
    SampleExports,
    generate_exports,
    generate_funnel,
    write_sample,
)
from leadscore.data.sample_truth import true_probabilities

LEAD_COLUMNS = [
    "lead_id",
    "account_id",
    "created_at",
    "company_name",
    "contact_name",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "job_level",
    "job_function",
    "lead_source",
    "owner",
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
    assert set(a) == {"leads", "activities", "accounts", "feedback"}
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes()
        assert a[key].read_bytes() != c[key].read_bytes()


def test_write_sample_returns_the_written_files(written: dict[str, Path]) -> None:
    assert written["leads"].name == "leads.csv"
    assert written["activities"].name == "activities.csv"
    assert written["leads"].parent == written["activities"].parent
    assert sorted(p.name for p in written["leads"].parent.iterdir()) == [
        "accounts.csv",
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
    for col in ["lead_id", "account_id", "created_at", "company_name", "contact_name", "owner"]:
        assert leads[col].notna().all(), col
    for col in ["job_level", "lead_source"]:
        assert leads[col].notna().all(), col


def test_leads_share_their_account_firmographics(data: SampleData) -> None:
    leads = data.leads
    per_account = leads.groupby("account_id").agg(
        n=("lead_id", "size"),
        **{
            c: (c, lambda s: s.nunique(dropna=False))
            for c in ["company_name", "industry", "employees", "annual_revenue", "country", "owner"]
        },
    )
    assert per_account["n"].between(1, 6).all()
    assert (per_account["n"] == 1).mean() > 0.3 and (per_account["n"] >= 4).any()
    assert (per_account.drop(columns="n") == 1).all().all()
    assert leads["company_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Za-z]+ \d+").all()
    assert leads["contact_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()
    assert leads["owner"].nunique() == 6  # five reps and a queue, the account's for its leads
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


# --- a later export of the same funnel ----------------------------------------------------------

LATER = EXPORT_DATE + 7 * DAY
OUTCOMES = ["meeting_at", "won_at", "lost_at"]


@pytest.fixture(scope="module")
def exports() -> SampleExports:
    return generate_exports(n_leads=8_000, seed=4, later_days=7)


def test_first_export_is_byte_identical_with_or_without_the_later_export_and_truth(
    tmp_path: Path,
) -> None:
    plain = write_sample(tmp_path / "plain", n_leads=3_000, seed=11)
    full = write_sample(tmp_path / "full", n_leads=3_000, seed=11, later_days=7, truth=True)
    assert set(full) == set(plain) | {"truth", "later_leads", "later_activities", "later_accounts"}
    for key in plain:
        assert plain[key].read_bytes() == full[key].read_bytes(), key
    assert full["later_leads"] == tmp_path / "full" / "later" / "leads.csv"
    assert full["later_activities"] == tmp_path / "full" / "later" / "activities.csv"
    # and the frames equal generate_funnel's, whatever the later export adds
    first = generate_exports(n_leads=3_000, seed=11, later_days=30).first
    pd.testing.assert_frame_equal(first.leads, generate_funnel(n_leads=3_000, seed=11).leads)


def test_later_export_keeps_every_lead_and_adds_the_weeks_new_leads(exports) -> None:
    first, later = exports.first.leads, exports.later.leads
    assert exports.later_date == LATER
    assert list(later.columns) == LEAD_COLUMNS
    assert later["lead_id"].is_unique and later["lead_id"].str.fullmatch(r"L\d{7}").all()
    old = later.iloc[: len(first)].reset_index(drop=True)
    attributes = [c for c in LEAD_COLUMNS if c not in [*OUTCOMES, "amount"]]
    pd.testing.assert_frame_equal(old[attributes], first[attributes])
    new = later.iloc[len(first) :]
    # a week's worth of leads, created after the first export and before the later one
    weekly = (
        (first["created_at"] >= EXPORT_DATE - 35 * DAY)
        & (first["created_at"] < EXPORT_DATE - 7 * DAY)
    ).sum() / 4
    assert 0.6 * weekly < len(new) < 1.4 * weekly
    assert (new["created_at"] >= EXPORT_DATE).all() and (new["created_at"] < LATER).all()
    assert new["lead_id"].min() > first["lead_id"].max()
    assert not set(new["account_id"]) & set(first["account_id"]), "new accounts"
    assert new[OUTCOMES].notna().any(axis=None), "some new leads already met or were dropped"


def test_later_export_changes_outcomes_only_within_the_week(exports) -> None:
    first = exports.first.leads
    old = exports.later.leads.iloc[: len(first)].reset_index(drop=True)
    changed_any = False
    for col in OUTCOMES:
        before, after = first[col], old[col]
        assert after[before.notna()].equals(before[before.notna()]), f"{col}: a value changed"
        added = after[before.isna() & after.notna()]
        assert ((added >= EXPORT_DATE) & (added < LATER)).all(), f"{col}: added outside the week"
        changed_any |= len(added) > 0
    assert changed_any, "the week brings outcomes"
    # the amount comes with a win in the week, and only then
    new_win = first["won_at"].isna() & old["won_at"].notna()
    assert old.loc[first["amount"].notna(), "amount"].equals(first["amount"].dropna())
    assert old.loc[new_win, "amount"].notna().all()
    assert old.loc[first["won_at"].isna() & old["won_at"].isna(), "amount"].isna().all()
    # outcomes are the true ones, cut at the later date (the CRM may miss a meeting)
    truth = exports.later.truth.iloc[: len(first)].reset_index(drop=True)
    for col in ["won_at", "lost_at"]:
        expected = truth[col].where(truth[col] < LATER)
        assert old[col].equals(expected.astype(old[col].dtype)), col


def test_later_export_adds_only_events_of_the_week(exports) -> None:
    first, later = exports.first.activities, exports.later.activities
    assert list(later.columns) == ACTIVITY_COLUMNS
    kept = later[later["occurred_at"] < EXPORT_DATE].reset_index(drop=True)
    for col in ACTIVITY_COLUMNS:
        assert kept[col].astype(str).equals(first[col].astype(str)), col
    added = later[later["occurred_at"] >= EXPORT_DATE]
    assert len(added) > 0 and (added["occurred_at"] < LATER).all()
    new_leads = set(exports.later.leads["lead_id"].iloc[len(exports.first.leads) :])
    assert set(added["lead_id"].astype(str)) & new_leads, "new leads have events"
    assert set(added["lead_id"].astype(str)) - new_leads, "old leads have new events"
    created = exports.later.leads.set_index("lead_id")["created_at"]
    ids = later["lead_id"].astype(str).to_numpy()
    assert (later["occurred_at"].to_numpy() > created.loc[ids].to_numpy()).all()
    assert (ids[1:] >= ids[:-1]).all(), "sorted by lead_id"


def test_later_days_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="later_days"):
        generate_exports(n_leads=10, later_days=-1)


# --- the truth file ----------------------------------------------------------------------------


def _realised(data: SampleData, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Whether each lead truly met within 90 days and won within 180 days after the export."""
    truth = data.truth.set_index("lead_id").loc[ids]
    meeting, won = truth["meeting_at"], truth["won_at"]
    met = (meeting >= EXPORT_DATE) & (meeting <= EXPORT_DATE + 90 * DAY)
    return met.to_numpy(), ((won >= EXPORT_DATE) & (won <= EXPORT_DATE + 180 * DAY)).to_numpy()


def test_truth_file_lists_the_open_leads_with_probabilities(tmp_path: Path) -> None:
    paths = write_sample(tmp_path, n_leads=3_000, seed=11, truth=True)
    truth = read_table(paths["truth"])
    assert list(truth.columns) == ["lead_id", "snapshot", "p_meeting_true", "p_won_true"]
    data = generate_funnel(n_leads=3_000, seed=11)
    true_outcomes = data.truth.set_index("lead_id")
    closed = (true_outcomes[OUTCOMES] < EXPORT_DATE).any(axis=1)
    assert set(truth["lead_id"]) == set(closed.index[~closed])
    # a meeting the CRM never logged closes a lead too: those are not in the file
    crm_open = data.leads[OUTCOMES].isna().all(axis=1)
    assert crm_open.sum() > len(truth)
    leads = data.leads.set_index("lead_id").loc[truth["lead_id"]]
    age = (EXPORT_DATE - leads["created_at"]).to_numpy() / DAY
    assert set(truth["snapshot"]) == {"creation", "open"}
    assert ((truth["snapshot"] == "creation").to_numpy() == (age < 7)).all()
    for col in ["p_meeting_true", "p_won_true"]:
        p = pd.to_numeric(truth[col]).to_numpy()
        young = age < 400  # every generated meeting happens within 400 days of creation
        assert ((p[young] > 0) & (p[young] <= 1)).all(), col
        assert (p[~young] == 0).all(), col
    assert (truth["p_won_true"].astype(float) < truth["p_meeting_true"].astype(float)).mean() > 0.6


@pytest.fixture(scope="module")
def truth_sample() -> tuple[SampleData, pd.DataFrame]:
    data = generate_funnel(n_leads=40_000, seed=5)
    return data, true_probabilities(data.leads, data.activities, data.truth, EXPORT_DATE, 730)


@pytest.mark.slow
def test_truth_is_higher_for_leads_that_convert(truth_sample) -> None:
    data, truth = truth_sample
    met, won = _realised(data, truth["lead_id"])
    p_meet, p_won = truth["p_meeting_true"].to_numpy(), truth["p_won_true"].to_numpy()
    assert p_meet[met].mean() > 5 * p_meet[~met].mean()
    assert p_won[won].mean() > 5 * p_won[~won].mean()
    # and within the creation snapshot, where only attributes and a few days of events speak
    creation = (truth["snapshot"] == "creation").to_numpy()
    assert p_meet[creation & met].mean() > 1.5 * p_meet[creation & ~met].mean()
    assert p_won[creation & won].mean() > 1.5 * p_won[creation & ~won].mean()


@pytest.mark.slow
def test_truth_matches_the_realised_conversion_rates(truth_sample) -> None:
    data, truth = truth_sample
    met, won = _realised(data, truth["lead_id"])
    created = data.leads.set_index("lead_id").loc[truth["lead_id"], "created_at"]
    age = (EXPORT_DATE - created).to_numpy() / DAY
    creation = (truth["snapshot"] == "creation").to_numpy()
    assert creation.sum() > 700
    for col, happened in [("p_meeting_true", met), ("p_won_true", won)]:
        p = truth[col].to_numpy()
        groups = {
            "creation": creation,
            "1 week to 3 months old": (age >= 7) & (age < 90),
            "all": np.ones(len(p), bool),
            "top decile": p >= np.quantile(p, 0.9),  # calibrated where the truth ranks highest
        }
        for name, rows in groups.items():
            se = np.sqrt((p[rows] * (1 - p[rows])).sum()) / rows.sum()
            gap = happened[rows].mean() - p[rows].mean()
            assert abs(gap) < 3 * se + 0.001, (col, name, p[rows].mean(), happened[rows].mean())


def test_accounts_file_has_one_row_per_account_with_its_leads_firmographics(written) -> None:
    leads = pd.read_csv(written["leads"], dtype=str, keep_default_na=False)
    accounts = pd.read_csv(written["accounts"], dtype=str, keep_default_na=False)
    assert list(accounts.columns) == [
        "account_id", "account_name", "industry", "employees", "annual_revenue", "country",
    ]  # fmt: skip
    assert accounts["account_id"].is_unique
    assert set(accounts["account_id"]) == set(leads["account_id"])
    joined = leads.merge(accounts, on="account_id", suffixes=("", "_acc"))
    for col in ("industry", "employees", "annual_revenue", "country"):
        assert (joined[col] == joined[f"{col}_acc"]).all(), col
    assert (joined["company_name"] == joined["account_name"]).all()


def _peer_lift(leads: pd.DataFrame) -> float:
    """Conversion of leads with a converting peer in their account over those without one."""
    met = (leads["meeting_at"].notna() | leads["won_at"].notna()).astype(float)
    frame = leads.assign(met=met)
    per_account = frame.groupby("account_id")["met"].agg(["sum", "count"])
    n = frame["account_id"].map(per_account["count"])
    peers = frame["account_id"].map(per_account["sum"]) - frame["met"]
    multi = frame[n > 1]
    return multi.loc[peers[n > 1] > 0, "met"].mean() / multi.loc[peers[n > 1] == 0, "met"].mean()


def test_buying_is_partly_account_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lead converts more often when another lead of its account does: more so than the
    shared firmographics alone make it (the same funnel without the account's shared noise)."""
    shared = _peer_lift(generate_funnel(n_leads=30_000, seed=5).leads)
    monkeypatch.setattr("leadscore.data.sample.ACCOUNT_INTENT_SHARE", 0.0)
    firmographics_only = _peer_lift(generate_funnel(n_leads=30_000, seed=5).leads)
    assert shared > firmographics_only + 0.15
