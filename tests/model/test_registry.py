"""MLflow: logged run, registry round trip, promotion gate, export; on a private SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Promotion
from leadscore.data.contract import load_lead_data
from leadscore.data.snapshots import build_examples
from leadscore.errors import RegistryError
from leadscore.modeling.promotion import gate_target, promotion_decision, run_promotion
from leadscore.modeling.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    load_bundle,
    mlflow_module,
    model_info,
)
from leadscore.modeling.train import run_training


@pytest.fixture(scope="module")
def mlflow():
    """mlflow, imported the way leadscore does it (telemetry off unless turned on)."""
    return mlflow_module()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def settings(settings_in, store):
    return settings_in(store)


@pytest.fixture(scope="module")
def first(settings, store):
    """A first model, trained and promoted (the champion: version 1)."""
    return run_training(settings, promote=True, metrics_out=store / "out" / "metrics.json")


@pytest.fixture(scope="module")
def features(settings):
    ex = build_examples(load_lead_data(settings), settings)
    return ex.frame[ex.spec.columns].iloc[:400]


@pytest.mark.slow
def test_first_model_is_logged_registered_and_promoted(first, settings, store, mlflow):
    assert first.model_version == "1"
    assert first.promotion.promoted and first.promotion.champion_version is None
    assert str(alias_version(settings, CHAMPION).version) == "1"
    assert str(alias_version(settings, CHALLENGER).version) == "1"
    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    run = client.get_run(first.run_id)
    assert run.data.tags["split"] == "time"
    assert run.data.tags["promotion.decision"] == "promoted"
    assert len(run.data.tags["input.leads.sha256"]) == 64
    assert run.data.params["config.train.seed"] == "42"
    assert int(run.data.params["counts.won.validation_rows"]) > 0
    assert run.data.metrics["won.roc_auc"] == pytest.approx(first.metrics["won.roc_auc"])
    assert "won.logreg.pr_auc" in run.data.metrics and "won.points.log_loss" in run.data.metrics
    # the chosen family and the candidates' cross-validated scores
    for target, model in first.bundle.targets.items():
        assert run.data.tags[f"{target}.family"] == model.family
        assert run.data.tags[f"{target}.calibration"] == model.calibrator.method_
        assert f"{target}.cv.lightgbm.log_loss" in run.data.metrics
        assert f"{target}.cv.logreg_spline.log_loss" in run.data.metrics
    assert run.data.tags["promotion.worse_than_baseline"] == "none"
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    splits = {f"{t}-{c}" for t in settings.targets for c in ("training", "validation")}
    assert set(inputs) == splits | {"leads", "activities", "examples"}  # no feedback stored
    profile = json.loads(inputs["won-validation"].dataset.profile)
    assert profile["num_rows"] == first.counts["counts.won.validation_rows"]
    assert run.data.tags["leadscore.run_type"] == "train"
    assert run.info.run_name.startswith("train 20") and "3,000 leads" in run.info.run_name
    assert run.info.end_time - run.info.start_time > 2_000  # the run spans the training
    assert run.data.tags["promotion.reasons"] and run.data.tags["mlflow.note.content"]
    assert run.data.tags["mlflow.note.content"].startswith("Promoted: version 1 is the first")
    assert run.data.metrics["gate.promoted"] == 1.0
    assert run.data.metrics["gate.won.pr_auc.logreg"] > 0
    logged = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"config.yaml", "metrics.json", "plots"} <= logged
    plots = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert "plots/won_shap.png" in plots and "plots/meeting_calibration.png" in plots
    written = json.loads((store / "out" / "metrics.json").read_text())
    assert written["won.roc_auc"] == pytest.approx(first.metrics["won.roc_auc"])
    assert any(k.startswith("won.segment.") for k in written)


@pytest.mark.slow
def test_champion_loads_from_the_registry_and_predicts_the_same(first, settings, features, mlflow):
    uri = f"models:/{settings.mlflow.model_name}@{CHAMPION}"
    expected = first.bundle.predict_proba(features)
    bundle = load_bundle(uri, settings.mlflow.tracking_uri)
    pd.testing.assert_frame_equal(bundle.predict_proba(features), expected)
    pyfunc = mlflow.pyfunc.load_model(uri)  # lead rows in, scores out: tests/model/test_pyfunc.py
    assert pyfunc.metadata.flavors["python_function"]["loader_module"].endswith("code_model")
    np.testing.assert_allclose(
        pyfunc.unwrap_python_model().bundle.predict_proba(features).to_numpy(), expected.to_numpy()
    )
    info = model_info(uri, settings.mlflow.tracking_uri)
    assert (info.name, info.version, info.run_id) == (
        settings.mlflow.model_name,
        "1",
        first.run_id,
    )
    assert bundle.reference.score_quantiles and bundle.reference.features
    assert bundle.reference == first.bundle.reference


@pytest.mark.slow
def test_champion_is_exported_as_an_mlflow_model_directory(first, settings, features):
    export = settings.mlflow.export_dir
    assert (export / "MLmodel").is_file()
    info = model_info(str(export))
    assert (info.version, info.run_id) == ("1", first.run_id)
    exported = load_bundle(str(export)).predict_proba(features)
    pd.testing.assert_frame_equal(exported, first.bundle.predict_proba(features))
    leftovers = [p for p in export.parent.iterdir() if p.name.startswith(f".{export.name}.")]
    assert leftovers == []


@pytest.mark.slow
def test_gate_refuses_a_worse_challenger_and_keeps_the_champion(first, settings_in, store, mlflow):
    crippled = settings_in(
        store, train={"model": {"n_estimators": 1, "num_leaves": 2}, "families": ["lightgbm"]}
    )
    second = run_training(crippled, promote=True)
    decision = second.promotion
    assert second.model_version == "2"
    assert not decision.promoted
    assert decision.champion_version == "1" and decision.challenger_version == "2"
    assert any("won: PR AUC gain over version 1" in r for r in decision.reasons)
    assert str(alias_version(crippled, CHAMPION).version) == "1"
    assert str(alias_version(crippled, CHALLENGER).version) == "2"
    gate = {g.target: g for g in decision.gates}
    assert gate["won"].champion > gate["won"].challenger
    assert gate["won"].gain.high < 0  # worse beyond noise
    client = mlflow.MlflowClient(crippled.mlflow.tracking_uri)
    mv = client.get_model_version(crippled.mlflow.model_name, "2")
    assert mv.tags["promotion.decision"] == "refused"
    assert float(mv.tags["promotion.won.pr_auc.champion"]) == pytest.approx(
        gate["won"].champion, abs=1e-6
    )
    assert mv.description.startswith("Not promoted: version 2 stays the challenger")
    assert "interval" in mv.description and mv.tags["promotion.reasons"]
    logged = client.get_run(second.run_id).data.metrics
    assert logged["gate.won.pr_auc.gain"] == pytest.approx(gate["won"].gain.gain)
    assert logged["gate.won.pr_auc.gain_low"] <= logged["gate.won.pr_auc.gain_high"] < 0
    assert logged["gate.won.pr_auc.champion"] == pytest.approx(gate["won"].champion)
    # all the challenger's validation rows, the champion by its evaluation twin on them
    assert gate["won"].challenger == pytest.approx(second.metrics["won.pr_auc"])
    assert gate["won"].rows == second.counts["counts.won.validation_rows"]
    assert "shipped model" not in " ".join(gate["won"].notes)
    assert model_info(str(crippled.mlflow.export_dir)).version == "1"  # export untouched
    # asking again gives the same answer
    assert not run_promotion(crippled).promoted


@pytest.mark.slow
def test_a_retrain_with_no_gain_beyond_noise_is_refused(first, settings, mlflow):
    """The same data and seed again: the gain is exactly zero in every bootstrap round."""
    third = run_training(settings, promote=True)
    assert third.model_version == "3" and not third.promotion.promoted
    won = {g.target: g for g in third.promotion.gates}["won"]
    assert won.gain.gain == won.gain.low == won.gain.high == 0
    assert "not beyond noise" in won.reasons[0] and "interval" in won.reasons[0]
    assert str(alias_version(settings, CHAMPION).version) == "1"
    v1 = mlflow.MlflowClient(settings.mlflow.tracking_uri).get_model_version(
        settings.mlflow.model_name, "1"
    )
    assert v1.tags["promotion.decision"] == "promoted"  # still the champion


@pytest.mark.slow
def test_a_clearly_better_challenger_replaces_the_champion_which_is_re_tagged(
    settings_in, tmp_path, mlflow
):
    names = {"model_name": "better", "experiment": "better"}
    weak = settings_in(
        tmp_path,
        train={"model": {"n_estimators": 1, "num_leaves": 2}, "families": ["lightgbm"]},
        promotion={
            "min_roc_auc": 0.0,
            "max_roc_auc_below_baseline": 1.0,
            "max_log_loss_above_baseline": 1.0,
        },
        mlflow=names,
    )
    assert run_training(weak, promote=True).promotion.promoted
    good = settings_in(tmp_path, mlflow=names)
    second = run_training(good, promote=True)
    decision = second.promotion
    assert decision.promoted, decision.reasons
    won = {g.target: g for g in decision.gates}["won"]
    assert won.gain.low > 0
    client = mlflow.MlflowClient(good.mlflow.tracking_uri)
    old = client.get_model_version("better", "1")
    assert old.tags["promotion.decision"] == "replaced"
    assert old.tags["promotion.replaced_by"] == "2"
    assert old.description.endswith("Replaced as champion by version 2.")
    old_run = client.get_run(old.run_id).data.tags
    assert old_run["promotion.decision"] == "replaced"
    new = client.get_model_version("better", "2")
    assert new.tags["promotion.decision"] == "promoted"
    assert new.description.startswith("Promoted: version 2 replaces version 1 as champion.")
    assert "gain +" in new.tags["promotion.reasons"]


@pytest.mark.slow
def test_without_timestamps_the_run_is_tagged_stratified_random(settings_in, store, mlflow):
    s = settings_in(
        store,
        data={"activities": None},
        columns={"created_at": None},
        mlflow={"model_name": "no-time", "experiment": "no-time"},
    )
    result = run_training(s)
    assert result.split_method == "stratified_random"
    run = mlflow.MlflowClient(s.mlflow.tracking_uri).get_run(result.run_id)
    assert run.data.tags["split"] == "stratified_random"


@pytest.mark.slow
def test_tuning_trials_are_nested_runs_of_the_training_run(settings_in, store, mlflow):
    s = settings_in(
        store,
        train={"families": ["lightgbm"], "tune": {"trials": 2, "timeout_s": 120}},
        mlflow={"model_name": "tuned", "experiment": "tuned"},
    )
    result = run_training(s)
    client = mlflow.MlflowClient(s.mlflow.tracking_uri)
    parent = client.get_run(result.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(children) == 2 * len(s.targets)
    for child in children:
        assert child.data.tags["target"] in s.targets
        assert {"num_leaves", "learning_rate"} <= set(child.data.params)
        assert child.data.metrics["cv_log_loss"] > 0


@pytest.mark.slow  # opens an MLflow registry
def test_promotion_without_a_challenger_is_refused(settings_in, store):
    with pytest.raises(RegistryError, match="challenger"):
        run_promotion(settings_in(store, mlflow={"model_name": "never-trained"}))


def metrics(roc=0.8, pr=0.3, base=0.1, ll=0.3):
    return {"roc_auc": roc, "pr_auc": pr, "base_rate": base, "log_loss": ll, "n": 100}


def test_gate_rules():
    rules = Promotion(min_roc_auc=0.6, min_pr_auc_lift=1.5, max_metric_drop=0.01)
    assert gate_target("won", metrics(), None, rules).passed
    low_roc = gate_target("won", metrics(roc=0.55), None, rules)
    assert not low_roc.passed and "ROC AUC" in low_roc.reasons[0]
    assert not gate_target("won", metrics(pr=0.14), None, rules).passed  # < 1.5 x 0.1
    assert gate_target("won", metrics(pr=0.30), metrics(pr=0.305), rules).passed  # within drop
    assert not gate_target("won", metrics(pr=0.30), metrics(pr=0.32), rules).passed
    by_loss = Promotion(metric="log_loss", max_metric_drop=0.0)
    assert gate_target("won", metrics(ll=0.29), metrics(ll=0.30), by_loss).passed
    assert not gate_target("won", metrics(ll=0.31), metrics(ll=0.30), by_loss).passed
    both = promotion_decision(
        {"meeting": metrics(), "won": metrics(roc=0.5)}, None, rules, "2", None
    )
    assert not both.promoted and len(both.reasons) == 1
    assert both.tags()["promotion.won.passed"] == "false"


def test_telemetry_is_off_unless_the_user_turned_it_on(monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    mlflow_module()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    mlflow_module()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_importing_training_and_registry_does_not_import_mlflow():
    code = (
        "import sys, leadscore.modeling.train, leadscore.modeling.registry, leadscore.cli; "
        "print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gate_refuses_a_challenger_worse_than_its_own_baselines():
    rules = Promotion(min_roc_auc=0.6, min_pr_auc_lift=1.0)
    baselines = {"logreg": metrics(roc=0.81, ll=0.30), "points": metrics(roc=0.79, ll=0.31)}
    close = gate_target("won", metrics(roc=0.806, ll=0.301), None, rules, baselines)
    assert close.passed  # within 0.005 ROC AUC and 0.002 log loss of the best baseline
    low = gate_target("won", metrics(roc=0.80, ll=0.30), None, rules, baselines)
    assert not low.passed and "below the logreg baseline" in low.reasons[0]
    lossy = gate_target("won", metrics(roc=0.82, ll=0.303), None, rules, baselines)
    assert not lossy.passed and "log loss" in lossy.reasons[0]
    decision = promotion_decision(
        {"won": metrics(roc=0.70)}, None, rules, "2", None, baselines={"won": baselines}
    )
    assert not decision.promoted
    assert decision.tags()["promotion.worse_than_baseline"] == "won"
    lenient = Promotion(max_roc_auc_below_baseline=0.2, max_log_loss_above_baseline=0.1)
    assert gate_target("won", metrics(roc=0.70), None, lenient, baselines).passed
