"""Grade cut-offs on the calibrated probability and the validation table that gives them meaning."""

import math

import numpy as np
import pytest

from leadscore.modeling.grades import (
    cutoffs_from_shares,
    grade_for,
    grade_table,
    measure_grades,
)

SHARES = {"A": 0.1, "B": 0.2, "C": 0.3}


def calibrated_rows(n: int = 40_000, seed: int = 0):
    """Probabilities and outcomes drawn from them (a perfectly calibrated model)."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-3.0, 1.2, n)))
    y = (rng.random(n) < p).astype(float)
    w = rng.choice([1.0, 2.0, 4.0], n)
    return y, p, w


def test_cutoffs_put_the_configured_share_of_weight_in_each_grade():
    _y, p, w = calibrated_rows()
    cutoffs = cutoffs_from_shares(p, w, SHARES)
    grades = grade_for(p, cutoffs)
    share = {g: w[grades == g].sum() / w.sum() for g in "ABCD"}
    assert share["A"] == pytest.approx(0.1, abs=0.002)
    assert share["B"] == pytest.approx(0.2, abs=0.002)
    assert share["C"] == pytest.approx(0.3, abs=0.002)
    assert share["D"] == pytest.approx(0.4, abs=0.002)


def test_grades_of_a_calibrated_model_are_monotone_in_measured_conversion():
    y, p, w = calibrated_rows()
    scheme = measure_grades("won", y, p, w, shares=SHARES)
    rates = [scheme.row(g).rate for g in "ABCD"]
    assert rates == sorted(rates, reverse=True) and scheme.is_monotone()
    assert scheme.row("A").lift > 2
    total_share = sum(scheme.row(g).share_of_conversions for g in "ABCD")
    assert total_share == pytest.approx(1.0)


def test_table_matches_a_hand_count():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0], float)
    p = np.array([0.9, 0.8, 0.6, 0.5, 0.3, 0.2, 0.1, 0.05])
    w = np.ones(8)
    rows, base = grade_table(y, p, w, (0.8, 0.5, 0.2))
    a, b, c, d = rows
    assert base == pytest.approx(3 / 8)
    assert (a.leads, a.converted, a.rate) == (2, 1, 0.5)
    assert (b.leads, b.converted) == (2, 1)
    assert (c.leads, c.converted) == (2, 1)
    assert (d.leads, d.converted, d.rate) == (2, 0, 0)
    assert a.lift == pytest.approx(0.5 / (3 / 8))
    assert a.share_of_conversions == pytest.approx(1 / 3)


def test_ties_at_a_cut_off_go_to_the_higher_grade_and_cut_offs_never_increase():
    p = np.array([0.5] * 50 + [0.1] * 50)
    cutoffs = cutoffs_from_shares(p, np.ones(100), SHARES)
    assert cutoffs[0] >= cutoffs[1] >= cutoffs[2]
    grades = grade_for(p, cutoffs)
    assert set(grades[:50]) == {"A"}


def test_given_cut_offs_are_kept_and_sentence_reads_a_rate():
    y, p, w = calibrated_rows(5_000)
    scheme = measure_grades("won", y, p, w, cutoffs=(0.2, 0.1, 0.05), basis="probability")
    assert scheme.cutoffs == (0.2, 0.1, 0.05)
    assert scheme.sentence("A").startswith("A leads converted at ")
    assert "x the average" in scheme.sentence("A")
    assert set(scheme.metrics()) >= {"won.grade.A.share", "won.grade.D.rate"}
    assert all(math.isfinite(v) for v in scheme.metrics().values())
