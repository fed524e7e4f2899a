"""Evaluation metrics on hand-checkable cases, flat metric names, and the plots."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.evaluate import (
    _value_colour,
    binary_metrics,
    calibration_table,
    capacity_metrics,
    expected_calibration_error,
    flat_metrics,
    gains_table,
    json_ready,
    month_metrics,
    segment_metrics,
    snapshot_months,
    snapshot_weeks,
    top_share_stats,
    write_plots,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_ece_is_zero_when_each_bin_matches_its_rate():
    # two equal-mass bins: p=0.25 with 1 of 4 positive, p=0.75 with 3 of 4 positive
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.0)


def test_ece_weighs_bins_by_their_size():
    p = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([1] * 5 + [1] * 5)  # first bin off by 0.9, second by 0.1
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.5)


def test_top_share_lift_and_capture():
    p = np.linspace(1, 0, 100)  # row 0 has the highest score
    y = np.zeros(100)
    y[[0, 5, 50, 60]] = 1  # 2 of the 4 positives in the top 10
    lift, captured = top_share_stats(y, p, 0.1)
    assert captured == pytest.approx(0.5)
    assert lift == pytest.approx((2 / 10) / (4 / 100))


def test_binary_metrics_values_and_keys():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert m["base_rate"] == 0.5 and m["n"] == 4 and m["positives"] == 2
    for key in ("pr_auc", "ece", "lift_top10", "captured_top10", "lift_top20", "captured_top20"):
        assert key in m


def test_single_class_metrics_are_nan_not_errors():
    m = binary_metrics(np.zeros(5), np.full(5, 0.2))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert math.isnan(m["lift_top10"])
    assert json_ready(m)["roc_auc"] is None


def test_segments_and_flat_names():
    y = np.array([0, 1, 0, 1, 0, 1])
    p = np.array([0.2, 0.8, 0.3, 0.6, 0.1, 0.9])
    seg = pd.Series(["web form", "web form", "event", "event", None, None], dtype="string")
    per = segment_metrics(y, p, seg)
    assert set(per) == {"web form", "event", "(missing)"}
    assert per["event"]["n"] == 2
    flat = flat_metrics("won", binary_metrics(y, p), segments=per)
    assert "won.roc_auc" in flat
    assert "won.segment.web_form.roc_auc" in flat
    assert "won.segment.missing.n" in flat
    base = flat_metrics("won", binary_metrics(y, p), model="logreg")
    assert "won.logreg.pr_auc" in base and not any(".segment." in k for k in base)


def test_segments_beyond_the_largest_are_left_out():
    seg = pd.Series(list("aaabbc"))
    per = segment_metrics(np.array([0, 1, 0, 1, 0, 1]), np.full(6, 0.5), seg, max_segments=2)
    assert set(per) == {"a", "b"}


def test_gains_and_calibration_tables():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    gains = gains_table(y, p)
    assert gains["captured"].tolist() == [0.5, 0.5, 1.0, 1.0]
    table = calibration_table(y, p, n_bins=2)
    assert table["n"].tolist() == [2, 2]
    assert table["observed_rate"].tolist() == [0.5, 0.5]


def test_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    scores = {"model": np.clip(y * 0.4 + rng.random(300) * 0.6, 0, 1), "other": rng.random(300)}
    paths = [plot.path for plot in write_plots("won", y, scores, tmp_path)]
    assert [p.name for p in paths] == [
        "won_roc.png",
        "won_pr.png",
        "won_calibration.png",
        "won_gains.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert write_plots("won", np.zeros(10), {"m": np.full(10, 0.1)}, tmp_path / "x") == []


def weighted_case(seed: int = 0, n: int = 600):
    """Labels, two scores and weights where weighting changes every metric: rows of the
    well-ranked half carry weight 5, the rest 1, and the heavy rows are mostly negatives."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    p = np.clip(0.2 + 0.35 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    w = np.where(rng.random(n) < 0.5, 5.0, 1.0)
    w[(y == 1) & (rng.random(n) < 0.7)] = 1.0
    return y, {"model": p, "other": rng.random(n)}, w


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+\.\d+", text)]


def test_plot_legends_show_the_weighted_metrics(tmp_path):
    y, scores, w = weighted_case()
    plots = {f.path.name: f for f in write_plots("won", y, scores, tmp_path, w)}
    for name, p in scores.items():
        m, plain = binary_metrics(y, p, w), binary_metrics(y, p)
        for key in ("roc_auc", "pr_auc", "base_rate", "ece", "captured_top20"):
            assert abs(m[key] - plain[key]) > 2e-3, f"{key} is not changed by the weights"
        roc = next(t for t in plots["won_roc.png"].legend if t.startswith(name))
        assert numbers(roc) == [round(m["roc_auc"], 4)]
        pr = next(t for t in plots["won_pr.png"].legend if t.startswith(name))
        assert numbers(pr) == [round(m["pr_auc"], 4)]
        cal = next(t for t in plots["won_calibration.png"].legend if t.startswith(name))
        assert numbers(cal) == [round(m["ece"], 4)]
        gains = next(t for t in plots["won_gains.png"].legend if "top 20%" in t and name in t)
        assert numbers(gains) == [
            round(100 * m["captured_top10"], 1),
            round(100 * m["captured_top20"], 1),
        ]
    base = next(t for t in plots["won_pr.png"].legend if t.startswith("base rate"))
    assert numbers(base) == [round(float(np.sum(w * y) / np.sum(w)), 4)]


def test_weighted_gains_table_meets_top_share_stats():
    y, scores, w = weighted_case(1)
    p = scores["model"]
    table = gains_table(y, p, w)
    for share in (0.1, 0.2, 0.5):
        _, captured = top_share_stats(y, p, share, w)
        at = table.loc[table["contacted"] >= share - 1e-12, "captured"].iloc[0]
        assert at == pytest.approx(captured)
    assert table["contacted"].iloc[-1] == pytest.approx(1.0)


def test_capacity_metrics_by_hand():
    # week 1: scores .9 (w 1, pos), .8 (w 2, neg), .7 (w 1, pos); capacity 2 takes the first
    #   row (1 lead, 1 positive) and half the second row's weight (1 lead, 0 positive)
    # week 2: scores .6 (w 1, neg), .2 (w 1, pos): both fit (2 leads, 1 positive)
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2])
    w = np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    weeks = pd.Series(["w1", "w1", "w1", "w2", "w2"])
    m = capacity_metrics(y, p, weeks, capacity=2, w=w)
    assert m["precision_at_capacity"] == pytest.approx(2 / 4)
    assert m["recall_at_capacity"] == pytest.approx(2 / 3)
    # one week (no weeks): the best 2 by weight are row 0 and half of row 1
    one = capacity_metrics(y, p, None, capacity=2, w=w)
    assert one["precision_at_capacity"] == pytest.approx(1 / 2)
    assert one["recall_at_capacity"] == pytest.approx(1 / 3)
    # capacity beyond every week's weight takes everything: the weighted base rate, recall 1
    all_of_it = capacity_metrics(y, p, weeks, capacity=100, w=w)
    assert all_of_it["precision_at_capacity"] == pytest.approx(3 / 6)
    assert all_of_it["recall_at_capacity"] == 1.0


def test_month_metrics_and_flat_names():
    when = pd.Series(pd.to_datetime(["2026-03-02", "2026-03-20", "2026-03-30", "2026-04-01"]))
    months = snapshot_months(when)
    assert months.tolist() == ["2026-03", "2026-03", "2026-03", "2026-04"]
    assert snapshot_weeks(when).tolist() == ["2026-03-02", "2026-03-16", "2026-03-30", "2026-03-30"]
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.2, 0.5])
    w = np.array([1.0, 3.0, 1.0, 1.0])
    per = month_metrics(y, p, months, w)
    assert set(per) == {"2026-03", "2026-04"}
    assert per["2026-03"]["rows"] == 3 and per["2026-03"]["positives"] == 2
    assert per["2026-03"]["base_rate"] == pytest.approx(2 / 5)
    march = binary_metrics(y[:3], p[:3], w[:3])
    assert per["2026-03"]["roc_auc"] == pytest.approx(march["roc_auc"])
    assert math.isnan(per["2026-04"]["roc_auc"])
    flat = flat_metrics("won", binary_metrics(y, p, w), months=per)
    for key in ("roc_auc", "pr_auc", "base_rate", "rows"):
        assert f"won.month.2026-03.{key}" in flat
    assert month_metrics(y, p, pd.Series([pd.NA] * 4, dtype="string"), w) == {}


def test_categories_are_coloured_in_a_stable_order_not_by_code():
    a = pd.Series(pd.Categorical(["b", "a", "c", None], categories=["c", "b", "a"]))
    b = pd.Series(pd.Categorical(["b", "a", "c", None], categories=["a", "b", "c"]))
    np.testing.assert_array_equal(_value_colour(a), _value_colour(b))
    colour = _value_colour(a)
    assert colour[1] < colour[0] < colour[2] and np.isnan(colour[3])
