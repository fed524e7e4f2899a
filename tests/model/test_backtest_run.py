"""The loop the backtest closes, on the small sample: train as of a past date, score there (the
runs land in the score history), then backtest the history against the outcomes known now."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from leadscore.backtest.run import run_backtest
from leadscore.data.sample import sample_settings, write_sample
from leadscore.modeling.train import run_training
from leadscore.scoring.history import history_entries
from leadscore.scoring.run import run_scoring

AS_OF = pd.Timestamp("2026-04-01")


@pytest.mark.slow
def test_scores_of_a_model_trained_as_of_the_scoring_date_are_backtested(tmp_path):
    write_sample(tmp_path / "data", n_leads=3_000, seed=1)
    sections = {
        "train": {"model": {"n_estimators": 150, "learning_rate": 0.1, "n_jobs": 1}},
        "data": {"feedback": str(tmp_path / "feedback")},
        "mlflow": {"experiment": "t", "model_name": "m", "export_dir": str(tmp_path / "x")},
    }
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    then = sample_settings(tmp_path / "data", uri, labels={"export_date": AS_OF.date()}, **sections)
    now = sample_settings(tmp_path / "data", uri, **sections)
    trained = run_training(then)
    assert trained.bundle.metadata["export_date"] == str(AS_OF)

    out = tmp_path / "scores"
    model = f"models:/m/{trained.model_version}"
    for as_of in (AS_OF, AS_OF + pd.Timedelta(days=7), AS_OF):  # the last one: a rerun
        run_scoring(now, as_of, out, model_uri=model)
    entries = history_entries(out / "history")
    assert [d for d, _ in entries] == [AS_OF, AS_OF + pd.Timedelta(days=7)]
    assert (out / "scores.parquet").read_bytes() == (entries[0][1] / "scores.parquet").read_bytes()

    result = run_backtest(now, [out / "history"], tmp_path / "bt")
    doc = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert [(c["as_of"], c["target"]) for c in doc["cohorts"]] == [
        ("2026-04-01", "meeting"),
        ("2026-04-01", "won"),
        ("2026-04-08", "meeting"),
        ("2026-04-08", "won"),
    ]
    won = doc["cohorts"][1]
    scored = pd.read_parquet(entries[0][1] / "scores.parquet")
    assert won["n"] == len(scored) and won["matured"] and won["notes"] == []
    assert sum(g["n"] for g in won["grades"].values()) == won["n"]
    assert sum(g["converted"] for g in won["grades"].values()) == won["converted"] > 0
    assert won["grades"]["A"]["rate"] > won["grades"]["D"]["rate"]
    assert won["model"]["version"] == trained.model_version
    assert won["model"]["trained_through"] == "2026-04-01"  # not in-sample: no note
    assert result.run_id is not None
