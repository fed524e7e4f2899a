"""Grouped TreeSHAP explanations: exact additivity in log-odds and in probability points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Model as ModelSettings
from leadscore.data.features import TIMELINE_GROUP, FeatureSpec
from leadscore.modeling.explain import (
    carry_to_probability,
    explain,
    feature_groups,
    fit_vs_engagement,
    group_matrix,
)
from leadscore.modeling.model import Calibrator, TargetModel, make_pipeline
from leadscore.scoring.reasons import group_absent, top_reasons, typical_counts

SPEC = FeatureSpec(
    categorical=("job_level", "industry"),
    numeric=("employees",),
    activity_types=("pricing_page_view", "email_open"),
    windows_days=(7, 30, 90),
    has_time=True,
    has_activities=True,
)
N_TRAIN = 2_000


def synthetic_features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows in `SPEC.columns` order and a label driven by several of them."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "job_level": pd.array(rng.choice(["VP", "Manager", "IC", None], n), dtype="string"),
        "industry": pd.array(rng.choice(["software", "retail", "health"], n), dtype="string"),
        "employees": np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(5, 1, n)),
        "days_since_created": rng.uniform(0, 200, n),
    }
    for kind in ("pricing_page_view", "email_open", "all"):
        c7 = rng.poisson(0.5, n)
        c30 = c7 + rng.poisson(1, n)
        c90 = c30 + rng.poisson(1, n)
        total = c90 + rng.poisson(1, n)
        for window, values in zip((7, 30, 90, None), (c7, c30, c90, total), strict=True):
            data[SPEC.activity_feature(kind, window)] = values.astype(np.float32)
    data["days_since_last_activity"] = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 99, n))
    frame = pd.DataFrame(data)
    logit = (
        -1.5
        + 1.5 * (frame["job_level"] == "VP").fillna(False).to_numpy(float)
        + 0.6 * frame["act__pricing_page_view__30d"].to_numpy()
        - 0.01 * frame["days_since_created"].to_numpy()
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame[SPEC.columns], y


def fit_model(calibration: str) -> TargetModel:
    """A small fitted pipeline plus calibrator, as training would produce."""
    features, y = synthetic_features(N_TRAIN, seed=0)
    settings = ModelSettings(n_estimators=50, min_child_samples=20)
    pipeline = make_pipeline(SPEC, settings, seed=0)
    pipeline.fit(features, y)
    model = TargetModel("won", pipeline, Calibrator(calibration), float(y.mean()))
    model.calibrator.fit(model.margin(features), y)
    return model


@pytest.fixture(scope="module", params=["sigmoid", "isotonic"])
def model(request) -> TargetModel:
    return fit_model(request.param)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Fresh rows, including an unseen category value and missing numerics."""
    features, _ = synthetic_features(60, seed=1)
    features.loc[0, "job_level"] = "Chief Llama Officer"  # never seen in training
    features.loc[1, "industry"] = pd.NA
    features.loc[2, "employees"] = np.nan
    features.loc[3, "days_since_last_activity"] = np.nan
    features.loc[4, ["employees", "days_since_created"]] = np.nan
    return features


def test_additive_in_log_odds(model, rows):
    e = explain(model, rows, SPEC)
    total = e.base_margin + e.contrib_logodds.sum(axis=1)
    np.testing.assert_allclose(total, e.margin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(e.margin, model.margin(rows), rtol=0, atol=1e-6)
    assert e.contrib_logodds.abs().sum(axis=1).gt(0).all()


def test_additive_in_probability(model, rows):
    e = explain(model, rows, SPEC)
    total = e.base_probability + e.contrib_pp.sum(axis=1) / 100
    np.testing.assert_allclose(total, e.probability, rtol=0, atol=1e-9)
    np.testing.assert_allclose(e.probability, model.predict_proba(rows), rtol=0, atol=1e-12)
    expected_base = model.calibrator.predict(np.array([e.base_margin]))[0]
    assert e.base_probability == pytest.approx(expected_base, abs=1e-15)


def test_unseen_and_missing_rows_are_explained(model, rows):
    e = explain(model, rows.iloc[:5], SPEC)
    assert np.isfinite(e.contrib_pp.to_numpy()).all()
    assert np.isfinite(e.contrib_logodds.to_numpy()).all()


def test_columns_are_original_groups_not_encoded_columns(model, rows):
    e = explain(model, rows, SPEC)
    assert list(e.contrib_logodds.columns) == feature_groups(SPEC)
    assert list(e.contrib_pp.columns) == feature_groups(SPEC)
    assert e.groups == [
        "job_level",
        "industry",
        "employees",
        "lead:timeline",
        "activity:pricing_page_view",
        "activity:email_open",
    ]
    assert not any(str(c).startswith("act__") for c in e.contrib_pp.columns)


def test_one_group_per_activity_type_and_one_timeline():
    """Every window of a type is one group; age, recency and all-type counts are the timeline."""
    for kind in ("pricing_page_view", "email_open"):
        columns = [SPEC.activity_feature(kind, w) for w in (7, 30, 90, None)]
        assert {SPEC.group_of(c) for c in columns} == {f"activity:{kind}"}
    timeline = ["days_since_created", "days_since_last_activity"]
    timeline += [SPEC.activity_feature("all", w) for w in (7, 30, 90, None)]
    assert {SPEC.group_of(c) for c in timeline} == {TIMELINE_GROUP}
    members = [c for c in SPEC.columns if SPEC.group_of(c) == TIMELINE_GROUP]
    assert sorted(members) == sorted(timeline)


def test_group_sums_match_per_feature_tree_shap(model, rows):
    raw = model.booster.predict(model.transform(rows), pred_contrib=True)
    names = model.booster.feature_name()
    pricing = [i for i, n in enumerate(names) if n.startswith("act__pricing_page_view__")]
    everything = [names.index("days_since_last_activity"), names.index("days_since_created")]
    everything += [i for i, n in enumerate(names) if n.startswith("act__all__")]
    assert len(pricing) == 4 and len(everything) == 6
    e = explain(model, rows, SPEC)
    np.testing.assert_allclose(
        e.contrib_logodds["activity:pricing_page_view"], raw[:, pricing].sum(axis=1), atol=1e-12
    )
    np.testing.assert_allclose(
        e.contrib_logodds[TIMELINE_GROUP], raw[:, everything].sum(axis=1), atol=1e-12
    )
    assert e.base_margin == pytest.approx(raw[0, -1])


def test_group_matrix_assigns_each_booster_column_once(model):
    groups, matrix = group_matrix(model, SPEC)
    assert matrix.shape == (len(model.booster.feature_name()) + 1, len(groups))
    np.testing.assert_array_equal(matrix[:-1].sum(axis=1), 1.0)
    assert matrix[-1].sum() == 0


def test_points_keep_the_sign_of_log_odds(model, rows):
    e = explain(model, rows, SPEC)
    logodds, points = e.contrib_logodds.to_numpy(), e.contrib_pp.to_numpy()
    assert not ((logodds > 0) & (points < 0)).any()
    assert not ((logodds < 0) & (points > 0)).any()


def test_chunking_does_not_change_results(model, rows):
    whole = explain(model, rows, SPEC, chunk_rows=1_000)
    chunked = explain(model, rows, SPEC, chunk_rows=7, num_threads=1)
    pd.testing.assert_frame_equal(whole.contrib_pp, chunked.contrib_pp, atol=1e-12, rtol=0)
    assert whole.base_margin == chunked.base_margin


def test_index_is_kept(model, rows):
    shuffled = rows.iloc[::-1].set_axis([f"L{i}" for i in range(len(rows))])
    e = explain(model, shuffled, SPEC)
    assert list(e.contrib_pp.index) == list(shuffled.index)
    assert list(e.probability.index) == list(shuffled.index)


def test_no_rows(model, rows):
    e = explain(model, rows.iloc[:0], SPEC)
    assert e.contrib_pp.shape == (0, len(feature_groups(SPEC)))
    full = explain(model, rows.iloc[:3], SPEC)
    assert e.base_margin == pytest.approx(full.base_margin)
    assert e.base_probability == pytest.approx(full.base_probability)


class Linear:
    """A calibrator that is a straight line (probability = 0.3 + 0.05 * margin)."""

    def predict(self, margin):
        return 0.3 + 0.05 * np.asarray(margin, dtype=float)


class Step:
    """An isotonic-like step calibrator: 0.1 below 0, 0.6 from 0."""

    def predict(self, margin):
        return np.where(np.asarray(margin, dtype=float) < 0, 0.1, 0.6)


def test_linear_calibrator_scales_contributions():
    contrib = np.array([[0.4, -1.0, 0.2], [2.0, 0.0, -0.5]])
    prob, p, p0 = carry_to_probability(contrib, base_margin=-1.0, calibrator=Linear())
    np.testing.assert_allclose(prob, 0.05 * contrib, atol=1e-15)
    np.testing.assert_allclose(p0 + prob.sum(axis=1), p, atol=1e-15)


def test_cancelling_contributions_do_not_explode():
    # log-odds contributions cancel exactly (sum 0) or almost, across a step of the calibrator
    contrib = np.array([[3.0, -3.0, 0.0], [3.0, -2.999999999, 0.0], [0.0, 0.0, 0.0]])
    prob, p, p0 = carry_to_probability(contrib, base_margin=-1e-10, calibrator=Step())
    assert np.isfinite(prob).all()
    np.testing.assert_allclose(p0 + prob.sum(axis=1), p, atol=1e-12)
    assert np.abs(prob).max() <= 0.5 + 1e-12  # never more than the step itself
    assert prob[0, 0] > 0 and prob[0, 1] < 0  # each side keeps its own, opposite-signed share
    np.testing.assert_array_equal(prob[2], 0.0)


def test_one_sided_contributions_take_the_whole_change():
    contrib = np.array([[1.0, 3.0], [-1.0, -3.0]])
    prob, p, p0 = carry_to_probability(contrib, base_margin=0.0, calibrator=Linear())
    np.testing.assert_allclose(prob[0] / prob[0].sum(), [0.25, 0.75])
    np.testing.assert_allclose(p0 + prob.sum(axis=1), p, atol=1e-15)


def test_fit_vs_engagement_splits_groups(model, rows):
    e = explain(model, rows, SPEC)
    split = fit_vs_engagement(e.contrib_pp, SPEC)
    pp = e.contrib_pp
    fit = pp[["job_level", "industry", "employees"]].sum(axis=1)
    engagement = pp[["activity:pricing_page_view", "activity:email_open"]]
    np.testing.assert_allclose(split["fit_score"], fit, atol=1e-12)
    np.testing.assert_allclose(split["engagement_score"], engagement.sum(axis=1), atol=1e-12)
    rest = split.sum(axis=1) + pp[TIMELINE_GROUP]  # the timeline is in neither
    np.testing.assert_allclose(rest, 100 * (e.probability - e.base_probability), atol=1e-9)
    assert list(split.columns) == ["fit_score", "engagement_score"]


def test_reasons_from_a_real_explanation(model, rows):
    e = explain(model, rows, SPEC)
    reasons = top_reasons(e.contrib_pp, rows, SPEC, n=3, typical=typical_counts(model))
    text = " ".join(reasons.to_numpy().ravel())
    assert "act__" not in text and "days_since" not in text and "(other)" not in text
    assert "Job level is Chief Llama Officer" in " ".join(reasons.iloc[0])
    absent = {g: group_absent(g, rows, SPEC) for g in e.groups}
    for i in range(len(rows)):
        row = [r for r in reasons.iloc[i] if r]
        facts = [r.rsplit(" (", 1)[0] for r in row]
        assert len(set(facts)) == len(facts)  # one reason per group
        sayable = [v for g, v in e.contrib_pp.iloc[i].items() if not absent[g][i]]
        top, bottom = max(sayable), e.contrib_pp.iloc[i].min()
        if top >= 0.1:
            assert reasons.iloc[i]["reason_pos_1"].endswith(f"(+{top:.1f} pts)")
        elif top >= 0.005:
            assert reasons.iloc[i]["reason_pos_1"].endswith(f"(+{top:.2f} pts)")
        assert (reasons.iloc[i]["reason_pos_1"] != "") == (top >= 0.005)
        assert (reasons.iloc[i]["reason_neg_1"] != "") == (bottom <= -0.005)
        assert not any(r.startswith(("No activity", "Never")) for r in reasons.iloc[i, :3])


def test_matches_the_shap_package(model, rows):
    """The `shap` package's TreeExplainer gives the same log-odds contributions, group by group."""
    import shap

    booster_input = model.transform(rows)
    values = shap.TreeExplainer(model.booster).shap_values(booster_input)
    values = values[1] if isinstance(values, list) else values
    ours = explain(model, rows, SPEC)
    names, matrix = group_matrix(model, SPEC)
    values = np.asarray(values)
    expected = values @ matrix[: values.shape[1]]  # the last matrix row is the bias column
    np.testing.assert_allclose(ours.contrib_logodds[names].to_numpy(), expected, atol=1e-6)
