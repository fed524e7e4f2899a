"""Model selection on time-ordered folds: the family follows the truth, the shipped model is refit
on every labelled row, and a linear model's explanations are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_settings
from leadscore.config import Tune
from leadscore.data.contract import load_lead_data
from leadscore.data.features import FeatureSpec, LeadPreprocessor
from leadscore.data.snapshots import build_examples
from leadscore.modeling.baselines import LogisticBaseline
from leadscore.modeling.explain import explain
from leadscore.modeling.fit import train_target
from leadscore.modeling.linear import FAMILY as LINEAR
from leadscore.modeling.linear import SplineLogit
from leadscore.modeling.promotion import baseline_reasons
from leadscore.modeling.selection import max_tie_share, select_and_fit
from leadscore.modeling.split import split_target

SPEC = FeatureSpec(("channel",), ("x1", "x2"), (), (), False, False)


def synthetic(logit_of, n: int = 6_000, seed: int = 0) -> pd.DataFrame:
    """One example per lead, created over a year, label drawn from `logit_of(x1, x2, channel)`."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    channel = rng.choice(["web", "event", "partner"], n)
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 365, n)), "D")
    p = 1 / (1 + np.exp(-logit_of(x1, x2, channel)))
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created,
            "snapshot_at": created,
            "weight": 1.0,
            "label_won": (rng.random(n) < p).astype(float),
            "channel": channel,
            "x1": x1,
            "x2": x2,
        }
    )


def linear_truth(x1, x2, channel):
    return -1.0 + 0.9 * x1 - 0.7 * x2 + 0.6 * (channel == "event")


def xor_truth(x1, x2, channel):
    return -0.5 + 3.0 * np.sign(x1) * np.sign(x2)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    store = tmp_path_factory.mktemp("selection")
    return make_settings(store, store, train={"model": {"n_estimators": 150, "n_jobs": 1}})


def fit(frame, settings):
    split = split_target(frame, "won", 0.2, 0.2, True)
    return select_and_fit(frame, "won", SPEC, split.train, split.validation, settings), split


@pytest.mark.parametrize(
    ("truth", "families"),
    [(linear_truth, {LINEAR}), (xor_truth, {"blend", "lightgbm"})],  # trees for a non-linear truth
)
def test_selection_follows_the_truth(settings, truth, families):
    chosen, _ = fit(synthetic(truth), settings)
    assert chosen.family in families
    losses = {f: c.log_loss for f, c in chosen.candidates.items()}
    assert losses[chosen.family] <= min(losses.values()) + 0.002  # the best, or tied with it
    assert chosen.shipped.family == chosen.family


def test_shipped_model_sees_every_labelled_row(settings):
    frame = synthetic(linear_truth)
    chosen, split = fit(frame, settings)
    assert chosen.shipped.metadata.fit_rows == len(frame)  # validation rows included
    assert chosen.evaluation.metadata.fit_rows == len(split.train)
    # calibrated on the newest held-out period: the newest fold, then the validation period
    # (both hold more than 100 positives here)
    assert chosen.evaluation.metadata.calibration_rows == len(chosen.folds[-1].valid)
    assert chosen.shipped.metadata.calibration_rows == len(split.validation)


def test_ties_go_to_the_simpler_model(settings):
    """On a linear truth the linear model wins or ties; a complex one never replaces it
    without beating it beyond noise."""
    chosen, _ = fit(synthetic(linear_truth), settings)
    assert chosen.family == LINEAR
    lenient = settings.model_copy(
        update={"train": settings.train.model_copy(update={"selection_tolerance": 1e6})}
    )
    chosen, _ = fit(synthetic(xor_truth), lenient)
    assert chosen.family == LINEAR  # LightGBM is far better here, but not by a million SEs


def drifting(n: int = 8_000, seed: int = 1) -> pd.DataFrame:
    """The linear truth with a base rate that jumps (log-odds +2) after the first 60% of the
    year, as when outcomes start being recorded, or a new sales team takes over."""
    frame = synthetic(linear_truth, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    t = (frame["created_at"] - frame["created_at"].min()) / pd.Timedelta(days=365)
    x1, x2 = frame["x1"].to_numpy(), frame["x2"].to_numpy()
    logit = linear_truth(x1, x2, frame["channel"].to_numpy()) - 2.0 + 2.0 * (t.to_numpy() > 0.6)
    frame["label_won"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return frame


def test_calibration_tracks_a_moving_base_rate(settings):
    frame = drifting()
    chosen, split = fit(frame, settings)
    val = frame.loc[split.validation]
    rate = val["label_won"].mean()
    newest = abs(chosen.evaluation.predict_proba(val[SPEC.columns]).mean() - rate)
    flat = settings.model_copy(
        update={"train": settings.train.model_copy(update={"calibration_level": "all"})}
    )
    old, _ = fit(frame, flat)
    pooled = abs(old.evaluation.predict_proba(val[SPEC.columns]).mean() - rate)
    assert newest < 0.5 * pooled
    assert newest < 0.02


def test_linear_candidate_includes_the_logistic_baseline():
    frame = synthetic(linear_truth)
    X, y = frame[list(SPEC.columns)], frame["label_won"].to_numpy()
    prep = LeadPreprocessor(categorical=SPEC.categorical).fit(X)
    ours = SplineLogit(n_knots=0, C=1.0).fit(prep.transform(X), y)
    baseline = LogisticBaseline(SPEC.categorical, SPEC.numeric).fit(X, y)
    p_ours = ours.predict_proba(prep.transform(X))[:, 1]
    np.testing.assert_allclose(p_ours, baseline.predict_proba(X)[:, 1], atol=2e-3)


def test_blend_explanations_are_exact_and_additive(settings):
    only_blend = settings.model_copy(
        update={"train": settings.train.model_copy(update={"families": ("blend",)})}
    )
    frame = synthetic(xor_truth)
    chosen, split = fit(frame, only_blend)
    model = chosen.shipped
    assert model.family == "blend" and len(model.estimator.weights) == 2
    rows = frame.loc[split.validation, SPEC.columns]
    expl = explain(model, rows, SPEC)
    margin = model.margin(rows)
    np.testing.assert_allclose(
        expl.base_margin + expl.contrib_logodds.sum(axis=1).to_numpy(), margin, atol=1e-6
    )
    np.testing.assert_allclose(
        expl.base_probability + expl.contrib_pp.sum(axis=1).to_numpy() / 100,
        model.predict_proba(rows),
        atol=1e-6,
    )


def test_linear_explanations_are_exact_and_additive(settings):
    frame = synthetic(linear_truth)
    chosen, split = fit(frame, settings)
    model = chosen.shipped
    assert model.family == LINEAR
    rows = frame.loc[split.validation, SPEC.columns]
    expl = explain(model, rows, SPEC)
    assert set(expl.groups) == {"channel", "x1", "x2"}
    margin = model.margin(rows)
    np.testing.assert_allclose(expl.margin.to_numpy(), margin, atol=1e-9)
    np.testing.assert_allclose(
        expl.base_margin + expl.contrib_logodds.sum(axis=1).to_numpy(), margin, atol=1e-9
    )
    np.testing.assert_allclose(
        expl.base_probability + expl.contrib_pp.sum(axis=1).to_numpy() / 100,
        model.predict_proba(rows),
        atol=1e-9,
    )


def test_trained_target_on_the_sample(sample_dir, tmp_path):
    settings = make_settings(sample_dir, tmp_path)
    examples = build_examples(load_lead_data(settings), settings)
    result = train_target(examples, "won", settings)
    labelled = examples.frame["label_won"].notna().sum()
    assert result.model.metadata.fit_rows == labelled
    # never worse than its own baselines on the validation rows (the gate's rule)
    gate = baseline_reasons(
        "won",
        result.metrics["lightgbm"],
        {k: v for k, v in result.metrics.items() if k != "lightgbm"},
        settings.promotion,
    )
    assert gate == []
    assert result.model.metadata.selection["family"] == result.model.family
    scores = result.validation_scores["lightgbm"]
    assert max_tie_share(scores) <= 0.02
    assert "won.calibration.decile_10.rate" in result.extra_metrics
    assert f"won.cv.{LINEAR}.log_loss" in result.extra_metrics
    stored = result.model.metadata.validation_metrics
    assert set(stored) == {"lightgbm", "logreg", "points"}


def test_too_few_dates_for_time_ordered_folds_fall_back_to_random_folds(settings, caplog):
    frame = synthetic(linear_truth, n=3_000)
    late = frame.index >= 2_400
    frame["created_at"] = np.where(late, pd.Timestamp("2025-06-01"), pd.Timestamp("2025-01-01"))
    frame["snapshot_at"] = frame["created_at"]
    chosen, split = fit(frame, settings)
    assert len(split.validation) == 600  # the later date
    assert len(chosen.folds) == settings.train.cv_folds
    assert "stratified random folds" in caplog.text
    oof = pd.Index([]).append([f.valid for f in chosen.folds])
    assert sorted(oof) == sorted(split.train)  # every training row predicted once
    assert chosen.shipped.predict_proba(frame[SPEC.columns]).std() > 0


def test_tuning_searches_lightgbm_settings_on_the_folds(settings):
    tuned = settings.model_copy(
        update={
            "train": settings.train.model_copy(
                update={"families": ("lightgbm",), "tune": Tune(trials=4, timeout_s=120)}
            )
        }
    )
    chosen, _ = fit(synthetic(xor_truth, n=3_000), tuned)
    trials = chosen.trials
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    defaults = settings.train.model
    assert trials[0]["params"]["num_leaves"] == defaults.num_leaves  # the configured settings
    best = min(trials, key=lambda t: t["cv_log_loss"])
    assert best["cv_log_loss"] <= trials[0]["cv_log_loss"]
    params = chosen.shipped.estimator.get_params()
    assert params["num_leaves"] == best["params"]["num_leaves"]
    assert params["learning_rate"] == pytest.approx(best["params"]["learning_rate"])
    assert chosen.shipped.metadata.selection["tuning_trials"] == 4
    assert chosen.candidates["lightgbm"].log_loss == pytest.approx(best["cv_log_loss"])
