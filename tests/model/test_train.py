"""Training on the small sample funnel: split, refusals, reproducibility, calibration, baselines."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from leadscore.data.contract import load_lead_data
from leadscore.data.snapshots import build_examples
from leadscore.errors import TrainingError
from leadscore.modeling.baselines import LogisticBaseline, PointsScore
from leadscore.modeling.evaluate import (
    binary_metrics,
    capacity_metrics,
    shap_contributions,
    snapshot_months,
    snapshot_weeks,
    write_plots,
)
from leadscore.modeling.fit import flat_target_metrics, label_array, train_target
from leadscore.modeling.inputs import with_feedback
from leadscore.modeling.split import STRATIFIED_RANDOM, TIME
from leadscore.modeling.train import run_training


@pytest.fixture(scope="module")
def settings(settings_in, tmp_path_factory):
    return settings_in(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def examples(settings):
    return build_examples(load_lead_data(settings), settings)


@pytest.fixture(scope="module")
def won(examples, settings):
    return train_target(examples, "won", settings)


@pytest.mark.slow
def test_time_split_of_real_examples(examples, settings):
    frame = examples.frame
    for target in settings.targets:
        result = train_target(examples, target, settings)
        split = result.split
        assert split.method == TIME
        train, val = frame.loc[split.train], frame.loc[split.validation]
        assert (train["snapshot_at"] < split.validation_cutoff).all()
        assert (val["created_at"] >= split.validation_cutoff).all()
        assert not set(train["lead_id"]) & set(val["lead_id"])
        assert result.model.metadata.validation_cutoff == split.validation_cutoff.isoformat()


def test_refuses_a_target_with_too_few_positives(settings, examples, tmp_path):
    strict = settings.model_copy(
        update={"train": settings.train.model_copy(update={"min_positives": 10**6})}
    )
    with pytest.raises(TrainingError) as err:
        train_target(examples, "meeting", strict)
    message = str(err.value)
    assert "meeting" in message and "positives" in message and "1,000,000" in message
    positives = int(label_array(examples.for_target("meeting"), "meeting").sum())
    assert f"{positives:,} positives" not in message  # training counts, not all labelled rows
    assert "positives and" in message and "negatives" in message


def test_run_training_refuses_before_logging_anything_but_a_failed_run(settings_in, tmp_path):
    from leadscore.modeling.registry import mlflow_module

    s = settings_in(tmp_path, train={"min_negatives": 10**7})
    with pytest.raises(TrainingError, match="negatives"):
        run_training(s)
    client = mlflow_module(s.mlflow.tracking_uri).MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name(s.mlflow.experiment).experiment_id])
    assert run.info.status == "FAILED"  # the attempt is on record, marked as such
    assert not run.data.params and not run.data.metrics and not run.inputs.dataset_inputs
    assert client.search_registered_models() == []


@pytest.mark.slow
def test_same_data_config_and_seed_give_identical_metrics(settings):
    def metrics_once() -> dict[str, float]:
        ex = build_examples(load_lead_data(settings), settings)
        out: dict[str, float] = {}
        for target in settings.targets:
            out.update(flat_target_metrics(train_target(ex, target, settings)))
        return out

    first, second = metrics_once(), metrics_once()
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] or (np.isnan(first[k]) and np.isnan(second[k])) for k in first)


@pytest.mark.slow
def test_metric_names_cover_model_baselines_and_segments(won):
    flat = flat_target_metrics(won)
    for key in ("won.roc_auc", "won.logreg.roc_auc", "won.points.pr_auc", "won.captured_top20"):
        assert key in flat
    segments = {k.split(".")[2] for k in flat if k.startswith("won.segment.")}
    assert {"web_form", "referral"} <= segments


@pytest.mark.slow
def test_plots_show_the_logged_metrics_and_months_and_capacity_are_logged(
    won, examples, settings, tmp_path
):
    """The run's plots are drawn by `write_plots` on the validation rows and their weights (as
    `train.write_artifacts` does): every legend number is the logged metric; the weights matter
    on these rows. Per-month and capacity metrics are logged for the model and baselines."""
    flat = flat_target_metrics(won)
    rows = examples.frame.loc[won.split.validation]
    y, w = label_array(rows, "won"), rows["weight"].to_numpy(float)
    p = won.validation_scores["lightgbm"]
    assert abs(binary_metrics(y, p)["pr_auc"] - flat["won.pr_auc"]) > 1e-3  # weights matter
    plots = {f.path.name: f for f in write_plots("won", y, won.validation_scores, tmp_path, w)}

    def shown(plot: str, model: str) -> list[float]:
        text = next(t for t in plots[plot].legend if t.startswith(model + " "))
        return [float(x) for x in re.findall(r"\d+\.\d+", text)]

    for model, prefix in (("lightgbm", "won"), ("logreg", "won.logreg"), ("points", "won.points")):
        assert shown("won_roc.png", model) == [round(flat[f"{prefix}.roc_auc"], 4)]
        assert shown("won_pr.png", model) == [round(flat[f"{prefix}.pr_auc"], 4)]
        assert shown("won_calibration.png", model) == [round(flat[f"{prefix}.ece"], 4)]
        assert shown("won_gains.png", model) == [
            round(100 * flat[f"{prefix}.captured_top10"], 1),
            round(100 * flat[f"{prefix}.captured_top20"], 1),
        ]
    assert shown("won_pr.png", "base rate") == [round(flat["won.base_rate"], 4)]

    capacity = settings.evaluation.capacity
    expected = capacity_metrics(y, p, snapshot_weeks(rows["snapshot_at"]), capacity, w)
    assert flat["won.precision_at_capacity"] == pytest.approx(expected["precision_at_capacity"])
    assert flat["won.recall_at_capacity"] == pytest.approx(expected["recall_at_capacity"])
    assert "won.logreg.recall_at_capacity" in flat
    months = sorted(snapshot_months(rows["snapshot_at"]).dropna().unique())
    assert months
    for month in months:
        for key in ("roc_auc", "pr_auc", "base_rate", "rows"):
            assert f"won.month.{month}.{key}" in flat
    assert sum(flat[f"won.month.{m}.rows"] for m in months) == len(rows)


@pytest.mark.slow
def test_folds_choose_and_calibrate_and_the_shipped_model_is_refit_on_every_row(examples, settings):
    s = settings.model_copy(
        update={"train": settings.train.model_copy(update={"families": ("lightgbm",)})}
    )
    result = train_target(examples, "won", s)
    frame, split, fit = examples.frame, result.split, result.selection
    evaluation, shipped = fit.evaluation, result.model
    # the folds: inside the training rows, oldest first, no lead on both sides of any fold
    assert len(fit.folds) == s.train.cv_folds
    for earlier, later in zip(fit.folds, fit.folds[1:], strict=False):
        assert earlier.start < later.start
    for fold in fit.folds:
        assert set(fold.train) | set(fold.valid) <= set(split.train)
        train, valid = frame.loc[fold.train], frame.loc[fold.valid]
        assert not set(train["lead_id"]) & set(valid["lead_id"])
        assert (train["snapshot_at"] < fold.start).all()
    # early stopping on the folds chose the trees; both models have exactly that many
    trees = shipped.metadata.best_iteration
    assert trees == fit.candidates["lightgbm"].n_estimators < s.train.model.n_estimators
    assert shipped.booster.num_trees() == evaluation.booster.num_trees() == trees
    # the evaluation model: training rows only, calibrated on the newest folds' OOF log-odds
    # (the newest fold, reaching back until 100 positives)
    newest = {sum(len(f.valid) for f in fit.folds[k:]) for k in range(len(fit.folds))}
    assert evaluation.metadata.fit_rows == len(split.train)
    assert evaluation.metadata.calibration_rows in newest
    # the shipped model: every labelled row, calibrated one period later (validation first)
    labelled = int(frame["label_won"].notna().sum())
    assert shipped.metadata.fit_rows == labelled and shipped.metadata.evaluation_fit_rows
    assert shipped.metadata.calibration_rows - len(split.validation) in newest | {0}
    # the reported validation metrics are the evaluation model's (it never saw those rows)
    val = frame.loc[split.validation]
    y, w = label_array(val, "won"), val["weight"].to_numpy(float)
    honest = binary_metrics(y, evaluation.predict_proba(val[examples.spec.columns]), w)
    assert result.metrics["lightgbm"]["roc_auc"] == pytest.approx(honest["roc_auc"])
    assert shipped.metadata.validation_metrics["lightgbm"]["log_loss"] == pytest.approx(
        honest["log_loss"]
    )
    seen = shipped.margin(val[examples.spec.columns])
    assert not np.allclose(seen, evaluation.margin(val[examples.spec.columns]))
    p = shipped.predict_proba(val[examples.spec.columns])
    assert ((p > 0) & (p < 1)).all()
    assert result.metrics["lightgbm"]["roc_auc"] > 0.65


@pytest.mark.slow
def test_shap_contributions_add_up_to_the_margin(won, examples):
    val = examples.frame.loc[won.split.validation, examples.spec.columns]
    contrib, transformed = shap_contributions(won.model, val, max_rows=300, seed=1)
    assert len(contrib) == 300
    assert list(contrib.columns) == [*transformed.columns, "(bias)"]
    margin = won.model.margin(val.loc[contrib.index])
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), margin, rtol=1e-6, atol=1e-6)


def test_points_sheet_rewards_converting_values_and_ignores_unseen_ones():
    rng = np.random.default_rng(0)
    n = 4_000
    X = pd.DataFrame(
        {
            "source": pd.array(rng.choice(["referral", "paid", None], n), dtype="string"),
            "visits": rng.poisson(2, n).astype(float),
        }
    )
    referral = (X["source"] == "referral").fillna(False).to_numpy(float)
    logit = -2 + 1.5 * referral + 0.4 * X["visits"].to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    points = PointsScore(["source"], ["visits"]).fit(X, y)
    assert (
        points.category_points_["source"]["referral"]
        > 0
        > points.category_points_["source"]["paid"]
    )
    assert points.bucket_points_["visits"][0] < points.bucket_points_["visits"][-2]
    new = pd.DataFrame({"source": pd.array(["never seen"], dtype="string"), "visits": [np.nan]})
    assert points.decision_function(new)[0] == points.bucket_points_["visits"][-1]
    p = points.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    assert abs(p.mean() - y.mean()) < 0.02
    assert not points.points_table().empty

    logreg = LogisticBaseline(["source"], ["visits"]).fit(X, y)
    assert logreg.predict_proba(new).shape == (1, 2)


@pytest.mark.slow
def test_without_timestamps_the_split_is_stratified_random(settings_in, tmp_path):
    s = settings_in(tmp_path, data={"activities": None}, columns={"created_at": None})
    ex = build_examples(load_lead_data(s), s)
    result = train_target(ex, "meeting", s)
    assert result.split.method == STRATIFIED_RANDOM
    assert result.model.metadata.split == STRATIFIED_RANDOM
    assert not set(ex.frame.loc[result.split.train, "lead_id"]) & set(
        ex.frame.loc[result.split.validation, "lead_id"]
    )


def test_feedback_corrects_outcomes_before_examples(settings):
    data = load_lead_data(settings)
    open_lead = data.leads[data.leads["meeting_at"].isna()].iloc[0]
    when = open_lead["created_at"] + pd.Timedelta(days=3)
    feedback = pd.DataFrame(
        {"lead_id": [open_lead["lead_id"]], "outcome": ["meeting_held"], "date": [when]}
    )
    corrected, counts = with_feedback(data, feedback)
    assert counts.applied == 1 and counts.added == 1
    row = corrected.leads[corrected.leads["lead_id"] == open_lead["lead_id"]].iloc[0]
    assert row["meeting_at"].normalize() == when.normalize()
    assert with_feedback(data, None) == (data, None)


@pytest.mark.slow
def test_date_only_data_with_same_day_conversions_trains(tmp_path, caplog):
    """A CRM export with dates only, one outcome, every conversion on the contact day."""
    from leadscore.config import settings_from_dict

    rng = np.random.default_rng(0)
    n = 1_000
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 540, n), unit="D")
    source = rng.choice(["inbound", "outbound"], n)
    won = rng.random(n) < np.where(source == "inbound", 0.5, 0.1)
    day = created.strftime("%Y-%m-%d")
    leads = pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(n)], "created_at": day, "source": source}
    )
    leads["won_at"] = np.where(won, day, "")
    leads.to_csv(tmp_path / "leads.csv", index=False)
    s = settings_from_dict(
        {
            "data": {"leads": str(tmp_path / "leads.csv")},
            "columns": {"meeting_at": None, "categorical": ["source"], "numeric": []},
            "labels": {"export_date": "2026-01-01"},
            "train": {"model": {"n_estimators": 30, "n_jobs": 1}},
            "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlruns.db", "experiment": "t"},
        }
    )
    with caplog.at_level(logging.INFO, logger="leadscore"):
        result = run_training(s)
    assert result.targets["won"].counts["train_positives"] > 0
    assert result.counts["counts.won.outcomes_on_creation_date"] == int(won.sum())
    assert f"won {int(won.sum()):,}" in caplog.text
    assert "date-only" in caplog.text
