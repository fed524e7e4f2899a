"""One end-to-end smoke run: the demo loop (sample → validate → train → score → feedback →
retrain → rescore → train as of a past date, score then, backtest) through the real command
line, on a small sample in a temporary folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_loop_end_to_end(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "sample.yaml", tmp_path / "configs" / "sample.yaml")
    monkeypatch.chdir(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "leadscore.demo", "--leads", "4000", "--workdir", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    for step in range(1, 11):
        assert f"[{step}/10]" in out
    assert "ok: the data meets the contract" in out
    assert "promoted: version 1 is the champion" in out
    assert "feedback: " in out and " new, 0 already stored, 0 rejected" in out
    assert "outcome(s) applied" in out  # the retrain used the feedback
    scores = tmp_path / "demo" / "scores"
    for name in ("scores.parquet", "scores.csv", "report.xlsx", "report.html", "manifest.json"):
        assert (scores / name).is_file(), name
    assert (scores / "previous_scores.parquet").is_file()  # the rescore saw the first run
    accounts = pq.read_table(scores / "accounts.parquet").to_pandas()  # account scoring
    assert len(accounts) > 0 and accounts["account_id"].is_unique
    assert set(accounts["basis"]) <= {"model", "rollup"}
    # the rescore is a real week later: the same funnel exported on 2026-11-08
    manifest = json.loads((scores / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-08"
    assert manifest["inputs"]["leads"]["path"] == "data/sample/later/leads.csv"
    assert manifest["inputs"]["activities"]["path"] == "data/sample/later/activities.csv"
    previous = pq.read_table(scores / "previous_scores.parquet").to_pandas()
    rescored = pq.read_table(scores / "scores.parquet").to_pandas()
    new = rescored[~rescored["lead_id"].isin(previous["lead_id"])]
    assert len(new) > 0 and (new["trend"] == "new").all()  # leads created in the week
    table = pq.read_table(scores / "scores.parquet").to_pandas()
    assert set(table["trend"]) <= {"up", "down", "steady", "new"}
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert {"meeting.roc_auc", "won.roc_auc", "won.logreg.pr_auc", "won.points.log_loss"} <= set(
        metrics
    )
    assert (tmp_path / "models" / "champion" / "MLmodel").is_file()
    # the backtest: scores of a model trained as of 200 days before the export, both windows over
    backtest = json.loads((tmp_path / "demo" / "backtest" / "backtest.json").read_text())
    assert [(c["as_of"], c["target"], c["matured"]) for c in backtest["cohorts"]] == [
        ("2026-04-15", "meeting", True),
        ("2026-04-15", "won", True),
    ]
    assert all(c["model"]["trained_through"] == "2026-04-15" for c in backtest["cohorts"])
    card = (tmp_path / "demo" / "backtest" / "backtest.html").read_text()
    assert "Of the A leads scored on 15 April 2026" in card

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "leadscore",
            "feedback",
            "-c",
            "configs/sample.yaml",
            "data/sample/feedback.csv",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0
    assert "feedback: 0 new," in again.stdout and "already stored, 0 rejected" in again.stdout
