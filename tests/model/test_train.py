"""Training on the small sample funnel: split, refusals, reproducibility, calibration, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.baselines import LogisticBaseline, PointsScore
from leadscore.contract import load_lead_data
from leadscore.evaluate import shap_contributions
from leadscore.snapshots import build_examples
from leadscore.split import STRATIFIED_RANDOM, TIME
from leadscore.train import (
    TrainingError,
    flat_target_metrics,
    label_array,
    run_training,
    train_target,
    with_feedback,
)


@pytest.fixture(scope="module")
def settings(settings_in, tmp_path_factory):
    return settings_in(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def examples(settings):
    return build_examples(load_lead_data(settings), settings)


@pytest.fixture(scope="module")
def won(examples, settings):
    return train_target(examples, "won", settings)


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
        assert result.model.metadata["validation_cutoff"] == split.validation_cutoff.isoformat()


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


def test_run_training_refuses_before_logging_anything(settings_in, tmp_path):
    s = settings_in(tmp_path, train={"min_negatives": 10**7})
    with pytest.raises(TrainingError, match="negatives"):
        run_training(s)
    assert not (tmp_path / "mlruns.db").exists()


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


def test_metric_names_cover_model_baselines_and_segments(won):
    flat = flat_target_metrics(won)
    for key in ("won.roc_auc", "won.logreg.roc_auc", "won.points.pr_auc", "won.captured_top20"):
        assert key in flat
    segments = {k.split(".")[2] for k in flat if k.startswith("won.segment.")}
    assert {"web_form", "referral"} <= segments


def test_model_is_calibrated_on_held_out_rows_and_early_stopped(won, examples, settings):
    model = won.model
    train = examples.frame.loc[won.split.train]
    y, w = label_array(train, "won"), train["weight"].to_numpy()
    assert model.base_rate == pytest.approx(np.sum(w * y) / np.sum(w))
    assert model.metadata["best_iteration"] <= settings.train.model.n_estimators
    assert model.metadata["calibration_method"] == model.calibrator.method_
    val = examples.frame.loc[won.split.validation, examples.spec.columns]
    p = model.predict_proba(val)
    assert ((p > 0) & (p < 1)).all()
    assert np.array_equal(p, won.validation_scores["lightgbm"])
    # the model ranks better than chance on future leads
    assert won.metrics["lightgbm"]["roc_auc"] > 0.65


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


def test_without_timestamps_the_split_is_stratified_random(settings_in, tmp_path):
    s = settings_in(tmp_path, data={"activities": None}, columns={"created_at": None})
    ex = build_examples(load_lead_data(s), s)
    result = train_target(ex, "meeting", s)
    assert result.split.method == STRATIFIED_RANDOM
    assert result.model.metadata["split"] == STRATIFIED_RANDOM
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
    assert counts["applied"] == 1 and counts["added"] == 1
    row = corrected.leads[corrected.leads["lead_id"] == open_lead["lead_id"]].iloc[0]
    assert row["meeting_at"].normalize() == when.normalize()
    assert with_feedback(data, None) == (data, {})
