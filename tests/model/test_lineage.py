"""What a training run records about where its data came from (a failed training: test_train)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from leadscore.data.contract import input_digests, load_lead_data
from leadscore.data.io import frame_digest
from leadscore.modeling.registry import mlflow_module
from leadscore.modeling.train import run_training


@pytest.mark.slow
def test_training_inputs_have_distinct_sources_and_digests_feedback_included(settings_in, tmp_path):
    settings = settings_in(tmp_path)
    data = load_lead_data(settings)
    open_leads = data.leads[data.leads["meeting_at"].isna()].head(5)
    feedback = pd.DataFrame(
        {
            "lead_id": open_leads["lead_id"].to_numpy(),
            "outcome": "meeting_held",
            "date": (open_leads["created_at"] + pd.Timedelta(days=3)).to_numpy(),
        }
    )
    result = run_training(settings, feedback=feedback)
    client = mlflow_module(settings.mlflow.tracking_uri).MlflowClient()
    run = client.get_run(result.run_id)
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    sources = {n: json.loads(d.dataset.source)["uri"] for n, d in inputs.items()}
    digests = input_digests(data)
    for name in ("leads", "activities"):
        tags = {t.key: t.value for t in inputs[name].tags}
        assert tags["sha256"] == digests[name]
        assert inputs[name].dataset.digest == digests[name][:32]
        assert sources[name].startswith("file:///")
    assert sources["leads"] != sources["activities"]
    fb = {t.key: t.value for t in inputs["feedback"].tags}
    assert fb["sha256"] == frame_digest(feedback) and fb["rows"] == "5"
    assert fb["applied"] == str(result.counts["counts.feedback.applied"]) == "5"
    assert sources["feedback"] == (tmp_path / "feedback").resolve().as_uri()
    examples = {t.key: t.value for t in inputs["examples"].tags}
    assert examples["built_from"] == "leads,activities,feedback"
    assert int(examples["rows"]) == result.counts["counts.examples"]
    validation = {t.key: t.value for t in inputs["won-validation"].tags}
    assert validation["examples.sha256"] == examples["sha256"]
    assert "5 feedback outcomes" in run.info.run_name
    note = run.data.tags["mlflow.note.content"]  # no gate ran: the training's own description
    assert note.startswith(f"Training run '{run.info.run_name}'") and "not judged it yet" in note
    version = client.get_model_version(settings.mlflow.model_name, result.model_version)
    assert version.description == note
