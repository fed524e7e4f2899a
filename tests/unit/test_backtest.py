"""Backtest: realized rates per grade against a hand-computed fixture, partial cohorts, bad input
(no scores, leads missing from the data, a target the scores lack) and the command's exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore import cli
from leadscore.backtest.card import wilson_interval
from leadscore.backtest.outcomes import read_cohort, read_cohorts
from leadscore.backtest.run import backtest_cohorts, in_sample_note, run_backtest
from leadscore.config import settings_from_dict
from leadscore.data.io import write_parquet
from leadscore.errors import BacktestError
from leadscore.modeling.inputs import current_data

AS_OF = "2026-03-01"
# lead, created, meeting, won, grade, p_meeting, p_won (None: no such outcome)
LEADS = [
    ("L1", "2026-01-05", "2026-03-10", "2026-04-01", "A", 0.60, 0.40),
    ("L2", "2026-01-06", "2026-07-01", "2026-10-01", "A", 0.50, 0.30),  # won after 180 days
    ("L3", "2026-01-07", None, None, "A", 0.40, 0.20),
    ("L4", "2026-01-08", "2026-05-01", "2026-05-15", "A", 0.30, 0.10),
    ("L5", "2026-01-09", "2026-05-20", "2026-06-01", "B", 0.30, 0.20),
    ("L6", "2026-01-10", None, None, "B", 0.20, 0.10),
    ("L7", "2026-01-11", None, None, "B", 0.20, 0.15),
    ("L8", "2026-01-12", None, None, "D", 0.10, 0.05),
    ("L9", "2026-01-13", "2026-02-20", None, "D", 0.10, 0.03),  # met before the as-of date
    ("L11", "2026-12-31", None, None, None, None, None),  # the newest lead: data runs to here
]
MISSING = ("L10", "D", 0.05, 0.02)  # scored, but not in the data any more


def write_leads(folder: Path) -> Path:
    rows = [
        {"lead_id": i, "created_at": c, "meeting_at": m or "", "won_at": w or ""}
        for i, c, m, w, *_ in LEADS
    ]
    path = folder / "leads.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_scores(folder: Path, as_of: str = AS_OF, drop: tuple[str, ...] = (), ids=None) -> Path:
    """A scoring run's scores.parquet and manifest.json for the scored leads of LEADS."""
    scored = [(i, g, pm, pw) for i, _, _, _, g, pm, pw in LEADS if g is not None] + [MISSING]
    frame = pd.DataFrame(scored, columns=["lead_id", "grade", "p_meeting", "p_won"])
    if ids is not None:
        frame["lead_id"] = ids
    frame["as_of"] = pd.Timestamp(as_of).date()
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(frame.drop(columns=list(drop)), folder / "scores.parquet")
    manifest = {"as_of": as_of, "model": {"name": "m", "version": "7", "run_id": "r7"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def config_of(tmp_path: Path, **labels) -> dict:
    return {
        "data": {"leads": str(write_leads(tmp_path)), "feedback": str(tmp_path / "fb")},
        "columns": {"meeting_at": "meeting_at", "won_at": "won_at"},
        "labels": labels,
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlruns.db", "experiment": "t"},
    }


def make_settings(tmp_path: Path, **labels):
    return settings_from_dict(config_of(tmp_path, **labels))


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_of(tmp_path)))
    return path


def cards_for(tmp_path: Path, *folders: Path, **labels):
    settings = make_settings(tmp_path, **labels)
    data, _ = current_data(settings)
    return backtest_cohorts(settings, read_cohorts(list(folders)), data)


def card(cards: list[dict], as_of: str, target: str) -> dict:
    (found,) = [c for c in cards if c["as_of"] == as_of and c["target"] == target]
    return found


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_realized_rates_per_grade_match_a_hand_computed_cohort(tmp_path):
    cards, skipped, _ = cards_for(tmp_path, write_scores(tmp_path / "run"))
    assert skipped == []
    won = card(cards, AS_OF, "won")
    # within 180 days of 1 Mar (to 28 Aug): L1, L4 (A) and L5 (B); L2 was won too late
    assert (won["window_days"], won["matured"], won["observed_share"]) == (180, True, 1.0)
    assert (won["n"], won["converted"], won["rate"]) == (9, 3, round(3 / 9, 4))
    assert (won["scored"], won["missing_from_data"]) == (10, 1)
    a, b, c, d = (won["grades"][g] for g in "ABCD")
    assert (a["n"], a["converted"], a["rate"], a["expected_rate"]) == (4, 2, 0.5, 0.25)
    assert (a["share_of_conversions"], a["lift"], a["share_of_leads"]) == (0.6667, 1.5, 0.4444)
    assert (b["n"], b["converted"], b["rate"], b["expected_rate"]) == (3, 1, 0.3333, 0.15)
    assert b["lift"] == 1.0
    assert (c["n"], c["converted"], c["rate"], c["lift"]) == (0, 0, None, None)
    assert (d["n"], d["converted"], d["rate"], d["expected_rate"], d["lift"]) == (
        2,
        0,
        0.0,
        0.04,
        0.0,
    )
    assert (a["rate_low"], a["rate_high"]) == tuple(round(x, 4) for x in wilson_interval(2, 4))
    assert won["roc_auc"] == round(13 / 18, 4)  # positives .4 .1 .2 against six negatives
    assert won["model"]["version"] == "7" and won["model"]["trained_through"] is None
    assert any("1 of the 10 scored leads are not in the data" in n for n in won["notes"])
    meeting = card(cards, AS_OF, "meeting")
    # within 90 days (to 30 May): L1, L4, L5; L9 met before the as-of date (recorded later)
    assert (meeting["converted"], meeting["converted_before_as_of"]) == (4, 1)
    assert meeting["grades"]["D"]["converted"] == 1


def test_a_cohort_whose_window_has_not_passed_is_partial(tmp_path):
    cards, _, _ = cards_for(tmp_path, write_scores(tmp_path / "run", as_of="2026-11-01"))
    won, meeting = card(cards, "2026-11-01", "won"), card(cards, "2026-11-01", "meeting")
    # the data runs to 31 Dec: 60 of 180 days, 60 of 90 days
    assert (won["matured"], won["observed_share"], won["window_end"]) == (
        False,
        0.333,
        "2027-04-30",
    )
    assert (meeting["matured"], meeting["observed_share"]) == (False, 0.667)
    assert any(n.startswith("partial") for n in won["notes"])


def test_the_configured_export_date_bounds_the_outcomes(tmp_path):
    # with the data read as of 1 May, L5's win (1 Jun) and L4's (15 May) are not known yet
    cards, _, _ = cards_for(tmp_path, write_scores(tmp_path / "run"), export_date="2026-05-01")
    won = card(cards, AS_OF, "won")
    assert (won["matured"], won["converted"], won["observed_until"]) == (False, 1, "2026-05-01")


def test_a_history_folder_gives_each_as_of_date_once(tmp_path):
    history = tmp_path / "out" / "history"
    write_scores(history / f"as_of={AS_OF}")
    write_scores(history / "as_of=2026-11-01", as_of="2026-11-01")
    write_scores(tmp_path / "out", as_of="2026-11-01")  # the latest run, also in the history
    cohorts = read_cohorts([tmp_path / "out", history])
    assert [f"{c.as_of:%Y-%m-%d}" for c in cohorts] == [AS_OF, "2026-11-01"]


def test_a_folder_without_scores_is_an_error(tmp_path):
    (tmp_path / "empty" / "history").mkdir(parents=True)
    with pytest.raises(BacktestError, match="holds no scores"):
        read_cohorts([tmp_path / "empty"])
    with pytest.raises(BacktestError, match="not found"):
        read_cohorts([tmp_path / "nowhere"])


def test_a_scores_file_without_grades_is_an_error(tmp_path):
    with pytest.raises(BacktestError, match="missing column"):
        read_cohort(write_scores(tmp_path / "run", drop=("grade",)))


def test_a_target_the_scores_lack_is_skipped_with_the_reason(tmp_path):
    cards, skipped, _ = cards_for(tmp_path, write_scores(tmp_path / "run", drop=("p_won",)))
    assert [c["target"] for c in cards] == ["meeting"]
    assert [s["target"] for s in skipped] == ["won"]
    assert "no p_won column" in skipped[0]["reason"]


def test_a_cohort_of_leads_missing_from_the_data_is_skipped_with_the_reason(tmp_path):
    ids = [f"X{i}" for i in range(10)]
    cards, skipped, _ = cards_for(tmp_path, write_scores(tmp_path / "run", ids=ids))
    assert cards == []
    assert {s["target"] for s in skipped} == {"meeting", "won"}
    assert all("none of the 10 scored leads is in the data" in s["reason"] for s in skipped)


def test_nothing_to_backtest_is_an_error_naming_why(tmp_path):
    settings = make_settings(tmp_path)
    scores = write_scores(tmp_path / "run", as_of="2027-02-01")  # after the data ends
    with pytest.raises(BacktestError, match="nothing to backtest") as err:
        run_backtest(settings, [scores], tmp_path / "bt")
    assert "not after the as-of date" in str(err.value)
    assert not (tmp_path / "bt").exists()


def test_scores_of_a_model_trained_after_the_as_of_date_are_marked_in_sample():
    as_of = pd.Timestamp(AS_OF)
    assert in_sample_note(None, as_of) == ()
    assert in_sample_note(as_of, as_of) == ()
    (note,) = in_sample_note(pd.Timestamp("2026-11-01"), as_of)
    assert note.startswith("in-sample") and "2026-11-01" in note


def invoke(*args: str):
    return CliRunner().invoke(cli.app, ["backtest", *args])


@pytest.mark.slow
def test_backtest_command_writes_the_report_card_and_an_mlflow_run(tmp_path):
    settings = make_settings(tmp_path)
    config = write_config(tmp_path)
    run = write_scores(tmp_path / "run")
    later = write_scores(tmp_path / "later", as_of="2026-11-01")
    out = tmp_path / "bt"
    result = invoke("-c", str(config), "--scores", str(run), str(later), "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "backtest.json").read_text())
    assert [(c["as_of"], c["target"]) for c in doc["cohorts"]] == [
        (AS_OF, "meeting"),
        (AS_OF, "won"),
        ("2026-11-01", "meeting"),
        ("2026-11-01", "won"),
    ]
    first = doc["cohorts"][1]
    assert {"as_of", "target", "window_days", "matured", "n", "grades", "roc_auc", "ece"} <= set(
        first
    )
    assert {"n", "converted", "rate", "expected_rate", "share_of_conversions", "lift"} <= set(
        first["grades"]["A"]
    )
    page = (out / "backtest.html").read_text()
    assert "Of the A leads scored on 1 March 2026, 50.0% were won within 180 days, 1.5x" in page
    assert "data:image/png;base64," in page and "<script" not in page
    import mlflow

    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    (mlflow_run,) = client.search_runs(
        [client.get_experiment_by_name("t-backtest").experiment_id],
        "tags.`leadscore.run_type` = 'backtest'",
    )
    assert mlflow_run.data.tags["model_version"] == "7"
    assert mlflow_run.data.metrics[f"won.{AS_OF}.grade_A.rate"] == 0.5


def test_backtest_command_exit_codes(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "empty").mkdir()
    result = invoke("-c", str(config), "--scores", str(tmp_path / "empty"), "--out", "x")
    assert result.exit_code == 1 and "holds no scores" in result.output
    result = invoke("-c", str(config), "--scores", str(tmp_path / "empty"))
    assert result.exit_code == 2  # --out is required
    result = invoke("-c", str(tmp_path / "none.yaml"), "--scores", ".", "--out", "x")
    assert result.exit_code == 2
