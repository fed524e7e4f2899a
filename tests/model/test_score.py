"""Weekly scoring end to end on a small trained champion: outputs, open leads only, identical
rerun, trend, stale data, dormant leads, inert spreadsheet formulas, clear failures."""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.contract import read_lead_data
from leadscore.data.features import AGE_FEATURE
from leadscore.data.io import read_table, write_csv
from leadscore.errors import ScoringError
from leadscore.feedback.read import read_report_xlsx
from leadscore.modeling.train import run_training
from leadscore.scoring.predict import score_chunk
from leadscore.scoring.run import run_scoring
from leadscore.scoring.tracking import load_scoring_model

pytestmark = pytest.mark.slow  # every test scores with a trained champion

AS_OF = pd.Timestamp("2026-11-01")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, settings_in):
    """Settings whose registry holds a promoted champion trained on the 3,000-lead sample."""
    store = tmp_path_factory.mktemp("score-store")
    settings = settings_in(store, train={"min_positives": 10, "min_negatives": 10})
    run_training(settings, promote=True)
    return settings


def scores_of(out) -> pd.DataFrame:
    return pq.read_table(out / "scores.parquet").to_pandas()


def test_scoring_writes_every_output_for_open_leads_only(trained, tmp_path):
    result = run_scoring(trained, AS_OF, tmp_path)
    for name in ("scores.parquet", "scores.csv", "report.xlsx", "report.html", "manifest.json"):
        assert (tmp_path / name).is_file(), name
    scores = scores_of(tmp_path)
    leads = read_table(trained.data.leads)
    closed = leads[["meeting_at", "won_at", "lost_at"]].notna().any(axis=1)
    created = pd.to_datetime(leads["created_at"]) <= AS_OF
    open_ids = set(leads.loc[~closed & created, "lead_id"])
    assert set(scores["lead_id"]) == open_ids
    won_ids = set(leads.loc[leads["won_at"].notna(), "lead_id"])
    assert won_ids and not (won_ids & set(scores["lead_id"]))
    assert result.n_scored == len(open_ids)
    assert result.n_skipped == len(leads) - len(open_ids)
    assert scores["score"].between(0, 100).all()
    assert set(scores["grade"]) <= set("ABCD")
    assert scores["p_won"].between(0, 1).all() and scores["p_meeting"].between(0, 1).all()
    assert (scores["model_version"] == "1").all()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["scored"] == len(open_ids)
    assert len(manifest["inputs"]["leads"]["sha256"]) == 64


def test_reasons_are_sentences_about_original_columns(trained, tmp_path):
    run_scoring(trained, AS_OF, tmp_path)
    scores = scores_of(tmp_path)
    texts = [c for c in scores.columns if re.fullmatch(r"reason_(pos|neg)_\d", c)]
    reasons = pd.concat([scores[c] for c in texts]).dropna()  # empty: missing in the files
    assert len(reasons) > len(scores)
    assert not reasons.str.contains("act__|__|_7d|_30d", regex=True).any()
    assert reasons.str.contains(r"\([+-]\d+\.\d\d? pts\)$", regex=True).all()  # ASCII signs
    pos = scores["reason_pos_1"].dropna()
    assert pos[pos != ""].str.contains(r"\(\+").all()
    reasons_for = pd.concat([scores[f"reason_pos_{k}"].fillna("") for k in (1, 2, 3)])
    assert not reasons_for.str.match(r"No activity|Never").any()  # an absence is no reason for


def test_rerun_gives_identical_scores_parquet(trained, tmp_path):
    run_scoring(trained, AS_OF, tmp_path)
    first = (tmp_path / "scores.parquet").read_bytes()
    run_scoring(trained, AS_OF, tmp_path)
    assert (tmp_path / "scores.parquet").read_bytes() == first


def test_streaming_in_small_batches_gives_the_same_scores(trained, tmp_path, monkeypatch):
    run_scoring(trained, AS_OF, tmp_path / "whole")
    monkeypatch.setattr("leadscore.data.io.CSV_STREAM_BLOCK", 16 << 10)
    monkeypatch.setattr("leadscore.scoring.inputs.LEAD_BATCH_ROWS", 200)
    monkeypatch.setattr("leadscore.scoring.inputs.EVENT_BATCH_ROWS", 1_000)
    score = trained.score.model_copy(update={"part_size": 150, "chunk_size": 64})
    small = trained.model_copy(update={"score": score})
    result = run_scoring(small, AS_OF, tmp_path / "batched")
    whole, batched = scores_of(tmp_path / "whole"), scores_of(tmp_path / "batched")
    assert len(whole) > 600  # several parts of at most 150 leads
    pd.testing.assert_frame_equal(whole, batched)
    for out in (tmp_path / "whole", tmp_path / "batched"):  # the spilled parts are cleaned up
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    manifest = json.loads((tmp_path / "batched" / "manifest.json").read_text())
    assert manifest["counts"]["activities"] > 0
    assert result.n_scored == len(whole)


def test_parquet_leads_with_native_types_score_like_the_csv(trained, tmp_path):
    times = ["created_at", "meeting_at", "won_at", "lost_at"]
    leads = pd.read_csv(trained.data.leads, parse_dates=times)
    assert leads["employees"].dtype.kind in "if"  # numbers and times as Parquet types, not text
    path = tmp_path / "leads.parquet"
    leads.to_parquet(path, index=False)
    acts = trained.data.activities
    run_scoring(
        trained, AS_OF, tmp_path / "csv", leads_path=trained.data.leads, activities_path=acts
    )
    run_scoring(trained, AS_OF, tmp_path / "pq", leads_path=path, activities_path=acts)
    from_csv, from_pq = scores_of(tmp_path / "csv"), scores_of(tmp_path / "pq")
    assert len(from_csv) > 100
    cols = ["lead_id", "p_meeting", "p_won", "score", "grade", "reason_pos_1"]
    pd.testing.assert_frame_equal(from_csv[cols], from_pq[cols])


def _run_pair(settings, out, first, second):
    """Score `out` at `first`, then at `second`; the scores of both runs by lead id."""
    run_scoring(settings, first, out)
    before = scores_of(out).set_index("lead_id")
    run_scoring(settings, second, out)
    return before, scores_of(out).set_index("lead_id")


def test_trend_follows_the_headline_probability_and_says_why(trained, tmp_path):
    first, second = pd.Timestamp("2026-09-27"), pd.Timestamp("2026-10-04")  # data runs on
    before, after = _run_pair(trained, tmp_path, first, second)
    assert before["trend"].isna().all() and before["trend_reason"].isna().all()  # first run
    assert (tmp_path / "previous_scores.parquet").is_file()
    assert (tmp_path / "previous_contributions.parquet").is_file()
    common = after.index.intersection(before.index)
    new = after.index.difference(before.index)
    assert len(new) and (after.loc[new, "trend"] == "new").all()
    trend = after.loc[common, "trend"]
    change = after.loc[common, "p_won"] - before.loc[common, "p_won"]
    size = change.abs()
    far = (100 * size >= 0.5 - 1e-9) & (size >= 0.2 * before.loc[common, "p_won"] - 1e-12)
    assert (trend[far & (change > 0)] == "up").all()
    assert (trend[far & (change < 0)] == "down").all()
    assert (trend[~far] == "steady").all()
    assert (change[trend == "up"] > 0).all() and (change[trend == "down"] < 0).all()
    assert {"up", "down", "steady"} <= set(trend)

    # the reason: the group whose effect moved most in the trend's direction, from the
    # contributions kept by both runs
    now = pq.read_table(tmp_path / "contributions.parquet").to_pandas().set_index("lead_id")
    then = pq.read_table(tmp_path / "previous_contributions.parquet").to_pandas()
    delta = now.loc[common] - then.set_index("lead_id").loc[common]
    # under one model the effects add up to P minus one base rate: their change is P's change
    np.testing.assert_allclose(delta.sum(axis=1), 100 * change, atol=2e-3)
    reason = after.loc[common, "trend_reason"]
    for direction, sign, pick in (("up", "+", "idxmax"), ("down", "-", "idxmin")):
        rows = trend.index[trend == direction]
        texts = reason.loc[rows]
        assert texts.str.fullmatch(rf".+: \{sign}\d+\.\d pts since last week").all(), texts.head()
        assert not texts.str.contains("act__|_7d|days_since", regex=True).any()
        moved = getattr(delta.loc[rows], pick)(axis=1)
        points = delta.loc[rows].to_numpy()[np.arange(len(rows)), delta.columns.get_indexer(moved)]
        shown = texts.str.extract(r"(\d+\.\d) pts")[0].astype(float)
        np.testing.assert_allclose(shown.to_numpy(), np.round(np.abs(points), 1), atol=0.051)
    assert reason[trend.isin(["steady"])].isna().all()

    # a rerun for the same date keeps the same previous run: byte-identical outputs
    files = ("scores.parquet", "contributions.parquet")
    kept = {name: (tmp_path / name).read_bytes() for name in files}
    run_scoring(trained, second, tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in files} == kept


def test_trend_is_not_compared_across_model_versions(trained, tmp_path):
    """When another model scored last week, last week is rescored with this week's model."""
    first, second = pd.Timestamp("2026-09-27"), pd.Timestamp("2026-10-04")
    _run_pair(trained, tmp_path, first, second)
    same_model = scores_of(tmp_path).set_index("lead_id")
    previous = pq.read_table(tmp_path / "previous_scores.parquet").to_pandas()
    previous["model_version"] = "0"
    previous["run_id"] = "an-older-training-run"
    previous["p_won"] = np.minimum(previous["p_won"] * 10, 1.0)  # another model's numbers
    previous.to_parquet(tmp_path / "previous_scores.parquet", index=False)
    run_scoring(trained, second, tmp_path)  # the same date: compares with the edited run
    after = scores_of(tmp_path).set_index("lead_id")
    seen = after.index.isin(previous["lead_id"])
    assert seen.any() and (~seen).any()
    # as if last week had been scored by this model: the other model's numbers are not used
    assert after["trend"].equals(same_model["trend"])
    assert after["trend_reason"].equals(same_model["trend_reason"])
    assert (after.loc[seen, "trend"] != "model_changed").all()
    assert (after.loc[~seen, "trend"] == "new").all()


def newest_timestamp(settings) -> pd.Timestamp:
    """The newest time in the sample's leads and activities, read independently of the scorer."""
    leads = read_table(settings.data.leads)
    times = [pd.to_datetime(leads[c]).max() for c in ("created_at", "meeting_at", "won_at")]
    times.append(pd.to_datetime(leads["lost_at"]).max())
    times.append(pd.to_datetime(read_table(settings.data.activities)["occurred_at"]).max())
    return max(times)


def test_stale_data_is_a_warning_at_the_top_of_every_output(trained, tmp_path, caplog):
    through = newest_timestamp(trained)
    fresh = run_scoring(trained, through.normalize() + pd.Timedelta(days=3), tmp_path / "fresh")
    assert fresh.warnings == ()
    as_of = through.normalize() + pd.Timedelta(days=8)
    out = tmp_path / "stale"
    with caplog.at_level(logging.WARNING, logger="leadscore"):
        result = run_scoring(trained, as_of, out)
    day = f"{through:%Y-%m-%d}"
    assert len(result.warnings) == 1 and result.warnings[0].startswith("stale data")
    warning = result.warnings[0]
    assert day in warning and f"{as_of:%Y-%m-%d}" in warning
    assert warning in caplog.messages
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_through"] == f"{through:%Y-%m-%d %H:%M:%S}"
    assert manifest["warnings"] == [warning]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f'<p class="warning">Warning: {warning}</p>' in page
    assert page.index(warning) < page.index('<table class="summary">')
    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.active.title == "About"
    about = list(book["About"].iter_rows(values_only=True))
    assert about[1][:2] == ("Warning", warning)
    scores_sheet = list(book["Scores"].iter_rows(max_row=2, values_only=True))
    assert scores_sheet[0][0] == f"Warning: {warning}"
    assert "Lead" in scores_sheet[1] and book["Scores"].freeze_panes == "E3"  # lead to owner
    feedback, problems = read_report_xlsx(out / "report.xlsx")  # still a feedback form
    assert problems == [] and feedback is not None


def files_in(folder) -> dict[str, bytes]:
    """Every file under `folder` (by relative path) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_stale_data_is_refused_before_anything_is_written(trained, tmp_path):
    through = newest_timestamp(trained)
    out = tmp_path / "out"
    run_scoring(trained, through.normalize(), out)  # last week's run in the same folder
    before = files_in(out)
    score = trained.score.model_copy(update={"refuse_stale_data": True})
    strict = trained.model_copy(update={"score": score})
    stale = through.normalize() + pd.Timedelta(days=8)
    with pytest.raises(ScoringError, match=f"refused.*{through:%Y-%m-%d}"):
        run_scoring(strict, stale, out)
    assert files_in(out) == before  # untouched, the history too

    import yaml

    config = tmp_path / "strict.yaml"
    config.write_text(yaml.safe_dump(strict.model_dump(mode="json", exclude={"source_path"})))
    cli_out = tmp_path / "cli"
    refused = CliRunner().invoke(
        app, ["score", "-c", str(config), "--as-of", f"{stale:%Y-%m-%d}", "--out", str(cli_out)]
    )
    assert refused.exit_code == 1
    assert f"{through:%Y-%m-%d}" in refused.output
    assert not cli_out.exists() or files_in(cli_out) == {}


def test_dormant_leads_are_flagged_counted_and_scored_at_the_horizon(trained, tmp_path):
    result = run_scoring(trained, AS_OF, tmp_path)
    scores = scores_of(tmp_path)
    leads = read_table(trained.data.leads).set_index("lead_id")
    age_days = (AS_OF - pd.to_datetime(leads["created_at"])) / pd.Timedelta(days=1)
    expected = age_days.loc[scores["lead_id"]].to_numpy() > 182
    assert expected.any() and (~expected).any()
    assert scores["dormant"].dtype == bool and (scores["dormant"].to_numpy() == expected).all()
    n = int(expected.sum())
    assert result.n_dormant == n
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["dormant"] == n and manifest["model"]["horizon_days"] == 182
    text = f"{n:,} older than the model's 182-day horizon, scored as 182 days old"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<td>Dormant leads</td><td>{html.escape(text)}</td>" in page
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    about = {r[0]: r[1] for r in book["About"].iter_rows(values_only=True) if r and r[0]}
    assert about["Dormant leads"] == text
    assert "Dormant" in next(book["Scores"].iter_rows(max_row=1, values_only=True))
    csv = pd.read_csv(tmp_path / "scores.csv", dtype=str)
    assert set(csv["dormant"]) == {"true", "false"}

    # their age is held: the model sees the same features as for the lead at the horizon
    bundle, _ = load_scoring_model(trained, f"models:/{trained.mlflow.model_name}@champion")
    data, _ = read_lead_data(trained)
    old = data.leads[data.leads["lead_id"].isin(scores.loc[expected, "lead_id"])].head(40)
    now = score_chunk(bundle, old.assign(snapshot_at=AS_OF).reset_index(drop=True), None, trained)
    at_horizon = old.assign(snapshot_at=old["created_at"] + pd.Timedelta(days=182))
    then = score_chunk(bundle, at_horizon.reset_index(drop=True), None, trained)
    assert now.out["dormant"].all() and not then.out["dormant"].any()
    assert (now.features[AGE_FEATURE] == 182).all() and (now.shown[AGE_FEATURE] > 182).all()
    pd.testing.assert_frame_equal(now.features, then.features)
    np.testing.assert_array_equal(now.out["p_won"], then.out["p_won"])
    np.testing.assert_array_equal(now.out["p_meeting"], then.out["p_meeting"])


def test_formula_injection_is_inert_in_csv_and_xlsx(trained, tmp_path):
    leads = read_table(trained.data.leads)
    open_rows = leads[leads[["meeting_at", "won_at", "lost_at"]].isna().all(axis=1)].index[:3]
    evil = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)"]
    leads.loc[open_rows, "lead_id"] = evil
    leads.loc[open_rows, "job_function"] = ["=cmd|' /C calc'!A0", "-2+3", "\tfoo"]
    path = tmp_path / "evil.csv"
    write_csv(leads, path)
    out = tmp_path / "out"
    run_scoring(trained, AS_OF, out, leads_path=path, activities_path=trained.data.activities)
    csv_ids = pd.read_csv(out / "scores.csv", dtype=str)["lead_id"]
    for value in evil:
        assert "'" + value in set(csv_ids)
    assert not csv_ids.str.match(r"^[=+\-@\t\r]").any()
    ws = openpyxl.load_workbook(out / "report.xlsx")["Scores"]
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r"))
    parquet_ids = set(scores_of(out)["lead_id"])
    assert set(evil) <= parquet_ids  # machine-readable output keeps the raw values


def test_missing_model_is_a_clear_error(trained, tmp_path):
    with pytest.raises(ScoringError, match=r"cannot load model|no model version"):
        run_scoring(trained, AS_OF, tmp_path, model_uri="models:/no-such-model@champion")


def test_cli_exit_codes(trained, tmp_path):
    config = tmp_path / "cfg.yaml"
    raw = trained.model_dump(mode="json", exclude={"source_path"})
    import yaml

    config.write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    ok = runner.invoke(
        app, ["score", "-c", str(config), "--as-of", "2026-11-01", "--out", str(tmp_path / "ok")]
    )
    assert ok.exit_code == 0, ok.output
    assert "scored" in ok.output
    missing = runner.invoke(
        app,
        [
            "score",
            "-c",
            str(config),
            "--as-of",
            "2026-11-01",
            "--out",
            str(tmp_path / "x"),
            "--model",
            "models:/nope@champion",
        ],
    )
    assert missing.exit_code == 1
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    unwritable = runner.invoke(
        app, ["score", "-c", str(config), "--as-of", "2026-11-01", "--out", str(blocked / "sub")]
    )
    assert unwritable.exit_code == 1
    assert "not writable" in unwritable.output
    bad_date = runner.invoke(
        app, ["score", "-c", str(config), "--as-of", "someday", "--out", str(tmp_path / "y")]
    )
    assert bad_date.exit_code == 2


def test_filled_in_report_comes_back_as_feedback(trained, tmp_path):
    from leadscore.feedback.store import ingest_feedback, read_store

    leads = read_table(trained.data.leads)
    open_rows = leads[leads[["meeting_at", "won_at", "lost_at"]].isna().all(axis=1)].index[:1]
    leads.loc[open_rows, "lead_id"] = "=2+3"
    path = tmp_path / "leads.csv"
    write_csv(leads, path)
    out = tmp_path / "out"
    run_scoring(trained, AS_OF, out, leads_path=path, activities_path=trained.data.activities)
    book = openpyxl.load_workbook(out / "report.xlsx")
    ws = book["Scores"]
    header = [c.value for c in ws[1]]
    lead_col = header.index("Lead") + 1
    outcome_col, date_col = header.index("Sales feedback") + 1, header.index("Feedback date") + 1
    filled = []
    for row in range(2, ws.max_row + 1):
        lead = ws.cell(row, lead_col).value
        if lead == "'=2+3" or len(filled) < 2:
            ws.cell(row, outcome_col, "meeting_held")
            ws.cell(row, date_col, "2026-11-05")
            filled.append(lead)
        if "'=2+3" in filled and len(filled) >= 3:
            break
    book.save(out / "report.xlsx")
    store = trained.data.feedback.parent / f"{tmp_path.name}-feedback"
    settings = trained.model_copy(
        update={"data": trained.data.model_copy(update={"feedback": store})}
    )
    summary = ingest_feedback(
        settings, [out / "report.xlsx"], now=pd.Timestamp("2026-11-24"), lead_ids=leads["lead_id"]
    )
    assert summary.line() == f"feedback: {len(filled)} new, 0 already stored, 0 rejected"
    stored = read_store(store)
    assert "=2+3" in set(stored["lead_id"])  # the formula guard is undone on the way back
    assert set(stored["outcome"]) == {"meeting_held"}


def test_bad_activity_rows_name_file_and_row(trained, tmp_path):
    acts = read_table(trained.data.activities)
    acts.loc[[3, 7], "occurred_at"] = ["not a time", "2026-13-45"]
    path = tmp_path / "acts.csv"
    write_csv(acts, path)
    from leadscore.errors import ContractError

    with pytest.raises(ContractError) as err:
        run_scoring(trained, AS_OF, tmp_path / "out", activities_path=path)
    text = str(err.value)
    assert "acts.csv" in text and "row 5" in text and "row 9" in text
    assert "'not a time'" in text
    assert not (tmp_path / "out" / "scores.parquet").exists()
    assert not list((tmp_path / "out").glob(".spill-*"))  # temporary parts removed
    lenient = trained.model_copy(
        update={"validation": trained.validation.model_copy(update={"drop_invalid_rows": True})}
    )
    result = run_scoring(lenient, AS_OF, tmp_path / "out", activities_path=path)
    assert result.n_scored > 0 and (tmp_path / "out" / "scores.parquet").exists()


def test_leads_file_without_activities_scores_with_the_configured_activities(trained, tmp_path):
    run_scoring(trained, AS_OF, tmp_path / "config")
    run_scoring(trained, AS_OF, tmp_path / "file", leads_path=trained.data.leads)
    pd.testing.assert_frame_equal(scores_of(tmp_path / "config"), scores_of(tmp_path / "file"))
    manifest = json.loads((tmp_path / "file" / "manifest.json").read_text())
    assert manifest["counts"]["activities"] > 0
    assert manifest["inputs"]["activities"]["path"] == str(trained.data.activities)
    assert manifest["activity_data"] is True and manifest["warnings"] == []


def test_model_with_activity_features_and_no_activity_data_says_so(trained, tmp_path, caplog):
    no_acts = trained.model_copy(
        update={"data": trained.data.model_copy(update={"activities": None})}
    )
    with caplog.at_level(logging.WARNING, logger="leadscore"):
        result = run_scoring(no_acts, AS_OF, tmp_path)
    assert result.n_scored > 0 and len(result.warnings) == 1
    warning = result.warnings[0]
    assert "no activity data" in warning
    assert warning in caplog.messages
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["activity_data"] is False and manifest["warnings"] == [warning]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'class="warning"' in page and warning in page
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    about = [v for row in book["About"].iter_rows(values_only=True) for v in row if v]
    assert any(warning in str(v) for v in about)


def test_report_summary_counts_the_whole_run_when_the_lead_list_is_capped(
    trained, tmp_path, monkeypatch
):
    import leadscore.reporting.html

    charted = []
    draw = leadscore.reporting.html.score_chart_png
    monkeypatch.setattr(
        "leadscore.reporting.html.score_chart_png", lambda h, t: charted.append(h) or draw(h, t)
    )
    monkeypatch.setattr("leadscore.scoring.run.REPORT_MAX_ROWS", 100)
    run_scoring(trained, AS_OF, tmp_path)
    scores = scores_of(tmp_path)
    n = len(scores)
    assert n > 300
    counts = scores["grade"].value_counts()
    per_grade = ", ".join(f"{g}: {int(counts.get(g, 0)):,}" for g in "ABCD")
    listed = f"top 100 of {n:,}"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<td>Leads per grade</td><td>{per_grade}</td>" in page
    assert f"<td>Leads scored</td><td>{n:,}</td>" in page
    assert listed in page
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    about = {r[0]: r[1] for r in book["About"].iter_rows(values_only=True) if r and r[0]}
    assert about["Leads per grade"] == per_grade
    assert any(listed in str(v) for v in about.values())
    assert book["Scores"].max_row == 101
    assert len(charted) == 1
    expected = np.bincount(scores["score"].to_numpy(), minlength=101)
    assert list(charted[0]) == expected.tolist()


def test_scoring_run_has_its_own_experiment_inputs_params_and_model_link(trained, tmp_path):
    from leadscore.modeling.registry import artifact_root, mlflow_module

    mlflow_settings = trained.mlflow.model_copy(update={"experiment": "scoring-only"})
    settings = trained.model_copy(update={"mlflow": mlflow_settings})
    run_scoring(settings, AS_OF, tmp_path / "out")
    uri = settings.mlflow.tracking_uri
    client = mlflow_module(uri).MlflowClient(tracking_uri=uri)
    assert client.get_experiment_by_name("scoring-only") is None  # training's, not scoring's
    experiment = client.get_experiment_by_name("scoring-only-score")
    assert experiment is not None
    assert experiment.artifact_location == artifact_root(uri)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # runs table
    (run,) = client.search_runs([experiment.experiment_id])
    tags = run.data.tags
    assert tags["leadscore.run_type"] == "score"
    assert run.info.run_name == "score as of 2026-11-01 v1"
    champion = client.get_model_version_by_alias(settings.mlflow.model_name, "champion")
    assert tags["leadscore.model_version"] == str(champion.version) == "1"
    assert tags["leadscore.model_run_id"] == champion.run_id
    assert tags["leadscore.model_uri"] == f"models:/{settings.mlflow.model_name}@champion"
    assert run.data.params["as_of"] == "2026-11-01"
    assert run.data.params["model_uri"] == tags["leadscore.model_uri"]
    assert run.data.params["config.score.explore_share"] == str(settings.score.explore_share)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"leads", "activities"}
    for name, dataset in inputs.items():
        assert manifest["inputs"][name]["sha256"].startswith(dataset.digest)
        source = json.loads(dataset.source)
        assert source["uri"] == Path(manifest["inputs"][name]["path"]).resolve().as_uri()
    assert (
        run.info.end_time - run.info.start_time
        >= 1_000 * sum(manifest["timings_seconds"].values()) - 1_000
    )  # from the start of the scoring
    assert run.info.artifact_uri.startswith(experiment.artifact_location)
    assert "manifest.json" in [f.path for f in client.list_artifacts(run.info.run_id)]


def test_as_of_is_a_date_in_csv_and_parquet(trained, tmp_path):
    import datetime as dt

    import pyarrow as pa

    run_scoring(trained, AS_OF + pd.Timedelta(hours=9), tmp_path)
    assert pq.read_schema(tmp_path / "scores.parquet").field("as_of").type == pa.date32()
    assert set(scores_of(tmp_path)["as_of"]) == {dt.date(2026, 11, 1)}
    assert set(pd.read_csv(tmp_path / "scores.csv", dtype=str)["as_of"]) == {"2026-11-01"}


def test_scores_csv_written_by_scoring_is_formula_safe(tmp_path):
    """Lead ids and an attribute (its name and values) that read as spreadsheet formulas reach
    scores.csv as inert text; every text column is guarded, numbers stay bare numbers."""
    import csv

    from leadscore.config import settings_from_dict
    from leadscore.reporting.safe_text import FORMULA_PREFIXES, restore_text

    rng = np.random.default_rng(0)
    n = 1_500
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    source = rng.choice(["=cmd()", "+1", "@x", "plain"], n)
    p_won = np.select([source == "=cmd()", source == "+1"], [0.5, 0.3], 0.05)
    won = (rng.random(n) < p_won) & (created < pd.Timestamp("2025-10-01"))
    evil_ids = ["=cmd()", "+1", "@x", "-2+3"]
    won[-len(evil_ids) :] = False  # open leads: scored
    ids = [f"L{i}" for i in range(n - len(evil_ids))] + evil_ids
    stamp = "%Y-%m-%d %H:%M:%S"
    leads = pd.DataFrame({"lead_id": ids, "created_at": created.strftime(stamp), "=cmd()": source})
    leads["won_at"] = np.where(won, (created + pd.Timedelta(days=3)).strftime(stamp), "")
    leads.to_csv(tmp_path / "leads.csv", index=False)
    settings = settings_from_dict(
        {
            "data": {"leads": str(tmp_path / "leads.csv"), "feedback": str(tmp_path / "fb")},
            "columns": {"meeting_at": None, "categorical": ["=cmd()"], "numeric": []},
            "labels": {"export_date": "2026-01-01"},
            "train": {
                "min_positives": 10,
                "min_negatives": 10,
                "model": {"n_estimators": 30, "n_jobs": 1},
            },
            "mlflow": {
                "tracking_uri": f"sqlite:///{tmp_path}/mlruns.db",
                "experiment": "t",
                "model_name": "csv-test",
                "export_dir": str(tmp_path / "champion"),
            },
        }
    )
    run_training(settings, promote=True)
    out = tmp_path / "out"
    run_scoring(settings, pd.Timestamp("2026-01-01"), out)

    parquet = scores_of(out)
    with (out / "scores.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert len(rows) == len(parquet) and set(evil_ids) <= set(parquet["lead_id"])
    cells = pd.DataFrame(rows, columns=header)
    text_columns = [c for c in parquet.columns if pd.api.types.is_string_dtype(parquet[c])]
    assert {"lead_id", "reason_pos_1", "reason_neg_1"} <= set(text_columns)
    for col in text_columns:
        assert not cells[col].str.startswith(FORMULA_PREFIXES).any(), col
        # the guard only adds a quote: reading it back gives the scores' values
        raw = parquet[col].fillna("").astype(str).tolist()
        assert restore_text(cells[col]).tolist() == raw, col
    assert {"'" + i for i in evil_ids} <= set(cells["lead_id"])
    reasons = pd.concat([cells[c] for c in header if c.startswith("reason_")])
    assert reasons.str.startswith("'=cmd() is ").any()  # an attribute's name opens the sentence
    fits = cells["fit_score"].astype(float)
    assert (fits < 0).any()  # negative numbers are written as numbers, without a quote
    np.testing.assert_allclose(fits, parquet["fit_score"], atol=0.01)


SHOWN = ["company_name", "contact_name", "owner"]


def sheet_rows(book, name: str) -> tuple[list, list[tuple]]:
    """A sheet's header (the row starting with "Lead" or "Owner") and the rows below it."""
    rows = list(book[name].iter_rows(values_only=True))
    at = next(i for i, r in enumerate(rows) if r and r[0] in ("Lead", "Owner"))
    return list(rows[at]), rows[at + 1 :]


def test_display_and_owner_columns_reach_every_output(trained, tmp_path):
    """Who the lead is and whose it is, from the leads file, in scores.parquet/csv right after
    the lead id, in the workbook (with the Owners sheet) and in the HTML call list."""
    run_scoring(trained, AS_OF, tmp_path)
    scores = scores_of(tmp_path)
    assert list(scores.columns[:4]) == ["lead_id", *SHOWN]
    leads = read_table(trained.data.leads).set_index("lead_id")
    expected = leads.loc[scores["lead_id"], SHOWN].astype(str).to_numpy()
    assert (scores[SHOWN].astype(str).to_numpy() == expected).all()
    csv = pd.read_csv(tmp_path / "scores.csv", dtype=str)
    assert list(csv.columns[:4]) == ["lead_id", *SHOWN]
    assert (csv[SHOWN].to_numpy() == expected).all()

    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    header, rows = sheet_rows(book, "Scores")
    assert header[:4] == ["Lead", "Company name", "Contact name", "Owner"]
    top = scores.sort_values(["score", "lead_id"], ascending=[False, True]).iloc[0]
    assert rows[0][:4] == (top["lead_id"], top["company_name"], top["contact_name"], top["owner"])
    header, rows = sheet_rows(book, "Owners")
    per_owner = scores.groupby("owner")["grade"].value_counts().unstack(fill_value=0)
    table = {r[0]: r for r in rows}
    assert set(table) == set(per_owner.index)
    for owner, counts in per_owner.iterrows():
        assert table[owner][1] == counts.sum()
        assert table[owner][2:6] == tuple(int(counts.get(g, 0)) for g in "ABCD")
        mine = scores[scores["owner"] == owner]
        assert table[owner][6] == pytest.approx(mine["expected_value"].sum())

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    calls = page.split("<h2>This run</h2>", 1)[0]
    assert f"<b>{html.escape(top['company_name'])}</b>" in calls
    for owner in per_owner.index:
        assert f'<option value="{html.escape(owner)}">' in calls


def test_score_files_import_cleanly(trained, tmp_path):
    """scores.csv: ASCII only (the sample's names are ASCII), empty fields for empty text,
    reason codes and points beside each reason; read with the Parquet schema it is the Parquet
    table; the Parquet list column holds the same reasons."""
    import pyarrow.csv as pacsv

    run_scoring(trained, AS_OF, tmp_path)
    raw = (tmp_path / "scores.csv").read_bytes()
    raw.decode("ascii")  # no U+2212 minus, no ellipsis
    assert b'""' not in raw and b",," in raw  # empty reasons: empty fields, never ""
    table = pq.read_table(tmp_path / "scores.parquet")
    flat = table.drop_columns(["reasons"])
    schema = flat.schema.remove_metadata()
    options = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True)
    from_csv = pacsv.read_csv(tmp_path / "scores.csv", convert_options=options)
    assert from_csv.equals(flat.replace_schema_metadata(None))
    assert schema.field("model_version").type == "string"

    scores = table.to_pandas()
    bundle, _ = load_scoring_model(trained, f"models:/{trained.mlflow.model_name}@champion")
    groups = {bundle.spec.group_of(c) for c in bundle.spec.columns}
    n_reasons = 0
    for sign in ("pos", "neg"):
        for k in (1, 2, 3):
            text, code = scores[f"reason_{sign}_{k}"], scores[f"reason_{sign}_{k}_code"]
            points = scores[f"reason_{sign}_{k}_points"]
            assert (text.isna() == code.isna()).all() and (text.isna() == points.isna()).all()
            said = text.dropna()
            n_reasons += len(said)
            assert said.str.contains(r"\([+-]\d+\.\d\d? pts\)$").all()
            assert ((points.dropna() > 0) if sign == "pos" else (points.dropna() < 0)).all()
            assert set(code.dropna()) <= groups
    assert n_reasons > len(scores)
    codes = pd.concat([scores[f"reason_pos_{k}_code"] for k in (1, 2, 3)]).dropna()
    assert codes.str.startswith("activity:").any() and (codes == "lead:timeline").any()
    assert codes.isin(["industry", "job_level", "employees", "lead_source", "country"]).any()
    first = scores.iloc[0]
    listed = [(r["code"], r["points"], r["text"]) for r in first["reasons"]]
    slots = [f"reason_{s}_{k}" for s in ("pos", "neg") for k in (1, 2, 3)]
    assert listed == [
        (first[f"{c}_code"], first[f"{c}_points"], first[c]) for c in slots if pd.notna(first[c])
    ]
    assert "\u2212" in (tmp_path / "report.html").read_text(encoding="utf-8")  # reports keep it
