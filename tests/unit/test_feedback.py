"""Sales feedback as labels: supersede rules, applying feedback to leads, synthetic feedback."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.config import settings_from_dict
from leadscore.data.contract import LeadData
from leadscore.data.sample import sample_feedback
from leadscore.data.snapshots import build_examples
from leadscore.feedback.apply import FeedbackCounts, apply_feedback, current_feedback
from leadscore.feedback.validate import normalise_outcome

T = pd.Timestamp


def leads_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in ("created_at", "meeting_at", "won_at", "lost_at"):
        values = frame[col] if col in frame else pd.Series(pd.NaT, index=frame.index)
        frame[col] = pd.to_datetime(values, format="ISO8601").astype("datetime64[ns]")
    frame["lead_id"] = frame["lead_id"].astype("string")
    return frame


def feedback_frame(rows: list[tuple], explore: list[bool] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["lead_id", "outcome", "date"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    if explore is not None:
        frame["explore"] = pd.array(explore, dtype="boolean")
    return frame


def test_outcome_words_ignore_case_and_spacing():
    raw = pd.Series([" Won ", "MEETING HELD", "meeting-held", "Disqualified", "maybe", None])
    assert normalise_outcome(raw).tolist()[:5] == [
        "won",
        "meeting_held",
        "meeting_held",
        "disqualified",
        "maybe",
    ]


def test_later_entry_supersedes_per_stage_and_history_is_kept():
    history = pd.DataFrame(
        {
            "lead_id": ["A", "A", "A", "B", "B"],
            "outcome": ["won", "meeting_held", "lost", "lost", "disqualified"],
            "date": pd.to_datetime(["2026-01-10", "2026-01-05", "2026-01-20"] + ["2026-01-03"] * 2),
            "source_row": [2, 3, 2, 5, 4],
            "ingested_at": pd.to_datetime(["2026-01-11"] * 2 + ["2026-01-21"] + ["2026-01-04"] * 2),
        }
    )
    current = current_feedback(history)
    assert len(history) == 5  # the input is not touched
    by_key = {(r.lead_id, r.stage): r.outcome for r in current.itertuples()}
    # A: the later ingest's "lost" supersedes "won" (same stage); the meeting stays
    # B: same ingest time, the later source row (5, "lost") wins over row 4
    assert by_key == {
        ("A", "close"): "lost",
        ("A", "meeting"): "meeting_held",
        ("B", "close"): "lost",
    }


def test_apply_feedback_counts_and_dates():
    leads = leads_frame(
        [
            {"lead_id": "add", "created_at": "2025-01-01"},
            {"lead_id": "move", "created_at": "2025-01-01", "meeting_at": "2025-02-01"},
            {"lead_id": "same", "created_at": "2025-01-01", "meeting_at": "2025-02-01 14:30"},
            {"lead_id": "won2lost", "created_at": "2025-01-01", "won_at": "2025-03-01"},
            {"lead_id": "lost2won", "created_at": "2025-01-01", "lost_at": "2025-03-01"},
            {"lead_id": "early", "created_at": "2025-06-01 12:00"},
            {"lead_id": "sameday", "created_at": "2025-06-01 12:00"},
        ]
    )
    feedback = feedback_frame(
        [
            ("add", "meeting_held", "2025-01-20"),
            ("move", "meeting_held", "2025-02-10"),
            ("same", "meeting_held", "2025-02-01"),
            ("won2lost", "disqualified", "2025-03-05"),
            ("lost2won", "won", "2025-04-01"),
            ("early", "won", "2025-05-31"),
            ("sameday", "meeting_held", "2025-06-01"),
            ("ghost", "won", "2025-01-01"),
        ],
        explore=[True, False, False, True, False, True, False, True],
    )
    out, counts = apply_feedback(leads, feedback)
    assert counts == FeedbackCounts(
        applied=6,
        added=2,
        overridden=3,
        conflicting=2,
        unchanged=1,
        explore=2,
        unknown=1,
        before_created=1,
    )
    at = out.set_index("lead_id")
    assert at.loc["add", "meeting_at"] == T("2025-01-20")
    assert at.loc["move", "meeting_at"] == T("2025-02-10")
    assert at.loc["same", "meeting_at"] == T("2025-02-01 14:30")  # CRM time of day kept
    assert pd.isna(at.loc["won2lost", "won_at"]) and at.loc["won2lost", "lost_at"] == T(
        "2025-03-05"
    )
    assert pd.isna(at.loc["lost2won", "lost_at"]) and at.loc["lost2won", "won_at"] == T(
        "2025-04-01"
    )
    assert pd.isna(at.loc["early", "won_at"])  # dated before creation: not applied
    assert at.loc["sameday", "meeting_at"] == T("2025-06-01 12:00")  # clamped to creation time
    assert pd.isna(leads.set_index("lead_id").loc["add", "meeting_at"])  # input untouched


def test_apply_feedback_adds_missing_outcome_columns_and_uses_current_entries():
    leads = pd.DataFrame({"lead_id": ["A"], "created_at": pd.to_datetime(["2025-01-01"])})
    feedback = feedback_frame([("A", "won", "2025-02-01"), ("A", "lost", "2025-02-03")])
    out, counts = apply_feedback(leads, feedback)
    assert {"meeting_at", "won_at", "lost_at"} <= set(out.columns)
    assert out["meeting_at"].dtype == "datetime64[ns]"
    assert pd.isna(out.loc[0, "won_at"]) and out.loc[0, "lost_at"] == T("2025-02-03")
    assert counts.applied == 1 and counts.added == 1 and counts.overridden == 0


def test_feedback_flips_training_labels():
    leads = leads_frame(
        [
            {"lead_id": "quiet", "created_at": "2025-01-01"},
            {
                "lead_id": "crm_won",
                "created_at": "2025-01-01",
                "meeting_at": "2025-01-20",
                "won_at": "2025-03-01",
            },
        ]
    )
    leads["industry"] = pd.Series(["software", "retail"], dtype="string")
    settings = settings_from_dict(
        {"data": {"leads": "leads.csv"}, "columns": {"lost_at": "lost_at"}}
    )

    def labels(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
        data = LeadData(frame, None, ("industry",), (), T("2026-01-01"))
        ex = build_examples(data, settings).frame.set_index("lead_id")
        return {i: (ex.loc[i, "label_meeting"], ex.loc[i, "label_won"]) for i in ex.index}

    assert labels(leads) == {"quiet": (0.0, 0.0), "crm_won": (1.0, 1.0)}
    feedback = feedback_frame(
        [("quiet", "meeting_held", "2025-02-01"), ("crm_won", "lost", "2025-03-01")]
    )
    changed, counts = apply_feedback(leads, feedback)
    assert counts.conflicting == 1 and counts.added == 1
    assert labels(changed) == {"quiet": (1.0, 0.0), "crm_won": (1.0, 0.0)}


@pytest.fixture
def truth() -> pd.DataFrame:
    n = 400
    ids = [f"L{i:04d}" for i in range(n)]
    as_of = T("2026-01-01")
    day = pd.Series(pd.to_timedelta([(i * 7) % 120 + 1 for i in range(n)], unit="D"))
    kind = pd.Series([i % 4 for i in range(n)])  # 0 nothing, 1 won, 2 lost after meeting, 3 dq
    meeting = (as_of + day).where(kind.isin([1, 2]))
    won = (as_of + day + pd.Timedelta(days=10)).where(kind == 1)
    lost = (as_of + day + pd.Timedelta(days=5)).where(kind.isin([2, 3]))
    return pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": as_of - pd.Timedelta(days=30),
            "meeting_at": meeting,
            "won_at": won,
            "lost_at": lost,
        }
    )


def test_sample_feedback_reports_true_outcomes_in_the_window(truth):
    as_of, horizon = T("2026-01-01"), pd.Timedelta(weeks=8)
    open_ids = truth["lead_id"].iloc[:300]
    fb = sample_feedback(truth, open_ids, as_of, rng_seed=3, share=0.5, horizon=horizon)
    assert list(fb.columns) == ["lead_id", "outcome", "date", "rep", "note"]
    assert fb["lead_id"].isin(open_ids).all()
    assert fb["lead_id"].nunique() <= 150
    dates = pd.to_datetime(fb["date"])
    assert (dates > as_of - pd.Timedelta(days=1)).all()
    assert (dates <= as_of + horizon).all()
    assert set(fb["outcome"]) == {"meeting_held", "won", "lost", "disqualified"}
    merged = fb.merge(truth, on="lead_id")
    for outcome, col in (("meeting_held", "meeting_at"), ("won", "won_at"), ("lost", "lost_at")):
        rows = merged[merged["outcome"] == outcome]
        assert (pd.to_datetime(rows["date"]) == rows[col].dt.normalize()).all()
    dq = merged[merged["outcome"] == "disqualified"]
    assert dq["meeting_at"].isna().all() and dq["won_at"].isna().all()
    again = sample_feedback(truth, open_ids, as_of, rng_seed=3, share=0.5, horizon=horizon)
    pd.testing.assert_frame_equal(fb, again)
    assert not fb.equals(
        sample_feedback(truth, open_ids, as_of, rng_seed=4, share=0.5, horizon=horizon)
    )
