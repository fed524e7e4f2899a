"""The lead-level bootstrap of a gain, and the promotion gate's interval rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from leadscore.config import Promotion
from leadscore.modeling.compare import Gain, bootstrap_weights, compare, weighted_metric
from leadscore.modeling.promotion import baseline_reasons, gate_target, promotion_decision


def funnel(n: int = 4_000, seed: int = 0):
    """Labels, a useful score with ties, snapshot weights and lead ids (about 3 rows a lead)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(float)
    p = np.clip(np.round(0.1 + 0.3 * y + rng.normal(0, 0.2, n), 2), 0.01, 0.99)
    w = rng.integers(1, 5, n).astype(float)
    leads = rng.integers(0, n // 3, n).astype(str)
    return y, p, w, leads


@pytest.mark.parametrize(
    ("metric", "reference"),
    [("roc_auc", roc_auc_score), ("pr_auc", average_precision_score), ("log_loss", log_loss)],
)
def test_weighted_metrics_match_scikit_learn_with_ties_and_weights(metric, reference):
    y, p, w, _ = funnel()
    assert weighted_metric(metric, y, p, w)[0] == pytest.approx(
        reference(y, p, sample_weight=w), abs=1e-12
    )


def test_the_bootstrap_resamples_leads_not_rows():
    _, _, w, leads = funnel(600)
    n_leads = pd.Series(leads).nunique()
    for block in bootstrap_weights(leads, w, rounds=30, seed=1):
        counts = block / w  # each row's lead count in each round
        for round_counts in counts:
            per_lead = pd.Series(round_counts).groupby(leads).agg(["min", "max", "first"])
            assert (per_lead["min"] == per_lead["max"]).all()  # a lead's rows move together
            assert per_lead["first"].sum() == n_leads  # as many leads drawn as there are


def test_repeating_each_lead_s_rows_leaves_the_interval_unchanged():
    """Five identical snapshot rows per lead carry no more information than one: a row-level
    bootstrap would narrow the interval by about sqrt(5), the lead-level one does not."""
    y, p, w, _ = funnel(1_500)
    q = np.clip(p + np.random.default_rng(2).normal(0, 0.05, len(p)), 0, 1)
    ids = np.arange(len(y)).astype(str)
    one = compare("pr_auc", y, p, q, w, ids, 100, 0.95, seed=7)
    rep = [np.repeat(a, 5) for a in (y, p, q, w, ids)]
    five = compare("pr_auc", *rep[:4], rep[4], 100, 0.95, seed=7)
    assert (five.low, five.high) == pytest.approx((one.low, one.high), abs=1e-12)
    assert (five.leads, five.rows) == (1_500, 7_500)


def test_the_interval_is_seeded_and_brackets_the_gain():
    y, p, w, leads = funnel()
    q = np.clip(p + np.random.default_rng(3).normal(0, 0.1, len(p)), 0, 1)
    a = compare("roc_auc", y, p, q, w, leads, 200, 0.95, seed=[42, 1])
    b = compare("roc_auc", y, p, q, w, leads, 200, 0.95, seed=[42, 1])
    c = compare("roc_auc", y, p, q, w, leads, 200, 0.95, seed=[43, 1])
    assert a == b and (a.low, a.high) != (c.low, c.high)
    assert a.low < a.gain < a.high and a.gain > 0  # the noisier score is worse
    ll = compare("log_loss", y, p, p, w, leads, 50, 0.95, seed=0)
    assert ll.gain == ll.low == ll.high == 0  # same model: no gain in any round


def metrics(roc=0.8, pr=0.3, base=0.1, ll=0.3):
    return {"roc_auc": roc, "pr_auc": pr, "base_rate": base, "log_loss": ll, "n": 100}


def gain(value: float, low: float, high: float) -> Gain:
    return Gain("pr_auc", 0.3 + value, 0.3, value, low, high, 0.95, 200, 1_000, 3_000)


def test_a_tiny_gain_within_noise_is_refused_naming_the_interval():
    rules = Promotion()
    noisy = gate_target("won", metrics(), metrics(), rules, gain=gain(0.004, -0.006, 0.014))
    assert not noisy.passed
    assert "95% interval -0.0060 to +0.0140" in noisy.reasons[0]
    assert "not beyond noise" in noisy.reasons[0]
    clear = gate_target("won", metrics(), metrics(), rules, gain=gain(0.03, 0.012, 0.05))
    assert clear.passed and "gain +0.0300" in clear.notes[0]
    # a tolerated drop: the lower bound only has to stay above -max_metric_drop
    lenient = Promotion(max_metric_drop=0.01)
    assert gate_target("won", metrics(), metrics(), lenient, gain=gain(0.004, -0.006, 0.01)).passed
    # without the interval rule the point gain decides, as before
    points = Promotion(require_significant_gain=False)
    assert gate_target("won", metrics(), metrics(), points, gain=gain(0.004, -0.006, 0.01)).passed


def test_the_headline_must_gain_and_the_other_target_must_not_lose_beyond_noise():
    rules = Promotion()
    champ = {"meeting": metrics(), "won": metrics()}
    decide = lambda m, w: promotion_decision(  # noqa: E731
        champ, champ, rules, "2", "1", gains={"meeting": m, "won": w}, headline="won"
    )
    promoted = decide(gain(0.001, -0.01, 0.012), gain(0.02, 0.005, 0.04))
    assert promoted.promoted
    assert promoted.tags()["promotion.reasons"].startswith("meeting: PR AUC 0.3000")
    assert promoted.metrics()["gate.won.pr_auc.gain_low"] == 0.005
    assert promoted.description().startswith("Promoted: version 2 replaces version 1")
    worse = decide(gain(-0.02, -0.03, -0.01), gain(0.02, 0.005, 0.04))
    assert not worse.promoted and "meeting" in worse.reasons[0]
    assert worse.tags()["promotion.decision"] == "refused"
    assert "Refused because meeting" in worse.description()


def test_significance_needs_enough_rounds():
    with pytest.raises(ValueError, match="bootstrap_rounds"):
        Promotion(bootstrap_rounds=10)
    assert Promotion(bootstrap_rounds=0, require_significant_gain=False).bootstrap_rounds == 0


def _gain(metric: str, point: float, low: float, high: float) -> Gain:
    return Gain(metric, 0.0, 0.0, point, low, high, 0.95, 200, 100, 400)


@pytest.mark.parametrize(
    ("low", "high", "refused"),
    [(-0.030, 0.010, False), (-0.030, -0.008, True)],  # within noise / worse beyond noise
)
def test_a_shortfall_against_a_baseline_refuses_only_beyond_noise(low, high, refused):
    challenger = {"roc_auc": 0.777, "log_loss": 0.105}
    baselines = {"logreg": {"roc_auc": 0.783, "log_loss": 0.108}}
    gains = {
        ("logreg", "roc_auc"): _gain("roc_auc", -0.006, low, high),
        ("logreg", "log_loss"): _gain("log_loss", 0.003, -0.001, 0.007),
    }
    reasons = baseline_reasons("won", challenger, baselines, Promotion(), gains)
    assert bool(reasons) is refused
    if refused:
        assert "ROC AUC 0.7770 is 0.0060 below the logreg baseline's 0.7830" in reasons[0]
    # without intervals the point shortfall beyond the tolerance refuses, as before
    assert baseline_reasons("won", challenger, baselines, Promotion())
