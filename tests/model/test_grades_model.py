"""Grades and scores of a trained model mean what the reports say: measured conversion per
grade on validation, a score scale from the validation leads, cut-offs kept across retrains."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.drift import probability_to_score
from leadscore.modeling.fit import MODEL
from leadscore.modeling.grades import BASIS_KEPT, BASIS_PROBABILITY, BASIS_SHARES
from leadscore.modeling.train import run_training
from leadscore.scoring.run import run_scoring

pytestmark = pytest.mark.slow  # trains models

AS_OF = pd.Timestamp("2026-11-01")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, settings_in):
    store = tmp_path_factory.mktemp("grades-store")
    settings = settings_in(store, train={"min_positives": 10, "min_negatives": 10})
    return settings, run_training(settings, promote=True)


def test_grades_are_measured_on_validation_and_monotone_in_conversion(trained):
    settings, result = trained
    scheme = result.bundle.grades
    assert scheme is not None and scheme.basis == BASIS_SHARES
    assert scheme.target == settings.headline_target
    rates = [scheme.row(g).rate for g in "ABCD"]
    assert rates == sorted(rates, reverse=True), rates
    assert scheme.row("A").lift > 1.5
    for g in "ABCD":
        assert result.metrics[f"won.grade.{g}.rate"] == pytest.approx(scheme.row(g).rate)
        assert 0 < result.metrics[f"won.grade.{g}.share"] < 1
    # the table is the validation rows' own: shares of weighted validation leads per cut-off
    headline = result.targets[settings.headline_target]
    p = headline.validation_scores[MODEL]
    assert np.mean(p >= scheme.cutoffs[0]) == pytest.approx(0.1, abs=0.05)


def test_score_is_the_share_of_validation_leads_with_a_lower_probability(trained):
    settings, result = trained
    headline = result.targets[settings.headline_target]
    p = np.asarray(headline.validation_scores[MODEL])
    w = result.bundle.reference.score_quantiles
    scores = probability_to_score(p, w)
    # validation leads spread evenly over the scale (weights aside): about 10% per decile
    assert 30 < np.median(scores) < 70
    assert scores.max() >= 95 and scores.min() <= 5


def test_scored_leads_take_their_grade_from_the_probability_cut_offs(trained, tmp_path):
    settings, result = trained
    run_scoring(settings, AS_OF, tmp_path / "out")
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    expected = result.bundle.grades.grade(scores["p_won"].to_numpy())
    assert (scores["grade"].to_numpy() == expected).all()
    # no big ties: at most 2% of leads share one probability
    assert scores["p_won"].value_counts(normalize=True).max() <= 0.02
    html_text = (tmp_path / "out" / "report.html").read_text()
    assert "A leads converted at" in html_text and "x the average" in html_text


def test_retrain_keeps_the_champions_cut_offs_unless_the_config_sets_them(trained):
    settings, first = trained
    again = run_training(settings)
    assert again.bundle.grades.basis == BASIS_KEPT
    assert again.bundle.grades.cutoffs == first.bundle.grades.cutoffs
    raw = settings.model_dump()
    raw["score"]["grades"]["cutoffs"] = {"A": 0.2, "B": 0.05, "C": 0.01}
    own = type(settings).model_validate(raw)
    chosen = run_training(own)
    assert chosen.bundle.grades.basis == BASIS_PROBABILITY
    assert chosen.bundle.grades.cutoffs == (0.2, 0.05, 0.01)
    assert all(math.isfinite(chosen.bundle.grades.row(g).share) for g in "ABCD")
