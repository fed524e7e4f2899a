"""Monotone activity constraints: more events of a type never lower a lead's probability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Features
from leadscore.config import Model as ModelSettings
from leadscore.data.features import FeatureSpec
from leadscore.modeling.linear import SplineLogit
from leadscore.modeling.model import make_pipeline

SPEC = FeatureSpec(
    categorical=("job_level",),
    numeric=(),
    activity_types=("pricing_page_view", "email_open"),
    windows_days=(7, 30),
    has_time=True,
    has_activities=True,
    monotone_activity=True,
)
COUNTS = [c for c in SPEC.columns if c.startswith("act__")]
GRID = np.arange(0, 25, dtype=np.float32)


def training_rows(n: int = 3_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose label *falls* with email opens and rises with pricing page views."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "job_level": pd.array(rng.choice(["VP", "Manager", "IC"], n), dtype="string"),
        "days_since_created": rng.uniform(0, 180, n),
    }
    for kind in ("pricing_page_view", "email_open", "all"):
        c7 = rng.poisson(1.0, n)
        c30 = c7 + rng.poisson(2.0, n)
        total = c30 + rng.poisson(2.0, n)
        for window, values in zip((7, 30, None), (c7, c30, total), strict=True):
            data[SPEC.activity_feature(kind, window)] = values.astype(np.float32)
    data["days_since_last_activity"] = rng.uniform(0, 60, n)
    frame = pd.DataFrame(data)[SPEC.columns]
    logit = (
        -1.0
        + 0.5 * frame["act__pricing_page_view__30d"].to_numpy()
        - 0.6 * frame["act__email_open__30d"].to_numpy()
        - 0.3 * frame["act__all__total"].to_numpy()
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


def fitted(spec: FeatureSpec):
    features, y = training_rows()
    settings = ModelSettings(n_estimators=60, min_child_samples=10, n_jobs=1)
    return make_pipeline(spec, settings, seed=0).fit(features, y)


def falls(pipeline, column: str) -> float:
    """The largest drop in P(won) when `column` alone grows along `GRID`, over 40 rows."""
    rows, _ = training_rows(40, seed=1)
    grid = rows.loc[rows.index.repeat(len(GRID))].reset_index(drop=True)
    grid[column] = np.tile(GRID, len(rows))
    p = pipeline.predict_proba(grid)[:, 1].reshape(len(rows), len(GRID))
    return float(max(0.0, -np.diff(p, axis=1).min()))


def test_constraints_cover_exactly_the_activity_counts():
    constraints = dict(zip(SPEC.columns, SPEC.monotone_constraints(), strict=True))
    assert {c for c, v in constraints.items() if v == 1} == set(COUNTS)
    assert set(constraints.values()) == {0, 1}
    off = dataclasses.replace(SPEC, monotone_activity=False)
    assert set(off.monotone_constraints()) == {0}
    assert Features().monotone_activity is True  # the measured default (docs/benchmarks.md)


@pytest.mark.slow  # trains two small boosters (~2 s)
def test_more_events_never_lower_the_probability():
    constrained = fitted(SPEC)
    booster_params = constrained.named_steps["lgbm"].get_params()
    assert booster_params["monotone_constraints"] == SPEC.monotone_constraints()
    for column in COUNTS:
        assert falls(constrained, column) <= 1e-12, column
    # the same data without the constraints does make more email opens count against a lead
    free = fitted(dataclasses.replace(SPEC, monotone_activity=False))
    assert falls(free, "act__email_open__30d") > 0.01


def test_linear_family_never_lowers_p_with_more_events():
    """The linear model (alone or in the blend) keeps the same promise as the trees: with
    monotone activity on, no activity count gets a negative slope, even where the data would
    give it one."""
    rng = np.random.default_rng(0)
    n = 4_000
    opens = rng.poisson(3.0, n).astype(float)
    demos = rng.poisson(0.5, n).astype(float)
    logit = -2.0 + 0.8 * demos - 0.4 * opens  # the data say: more opens, lower P
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    X = pd.DataFrame({"act__email_open__total": opens, "act__demo_request__total": demos})
    free = SplineLogit(n_knots=0).fit(X, y)
    assert free.coef_[0] < 0  # unconstrained, opens count against the lead
    held = SplineLogit(n_knots=0, monotone=(0, 1)).fit(X, y)
    assert held.coef_[0] == 0 and held.coef_[1] > 0
    more = X.assign(act__email_open__total=X["act__email_open__total"] + 5)
    assert (held.decision_function(more) >= held.decision_function(X) - 1e-12).all()
