"""Evaluation metrics on hand-checkable cases, flat metric names, and the plots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.evaluate import (
    binary_metrics,
    calibration_table,
    expected_calibration_error,
    flat_metrics,
    gains_table,
    json_ready,
    segment_metrics,
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
    paths = write_plots("won", y, scores, tmp_path)
    assert [p.name for p in paths] == [
        "won_roc.png",
        "won_pr.png",
        "won_calibration.png",
        "won_gains.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert write_plots("won", np.zeros(10), {"m": np.full(10, 0.1)}, tmp_path / "x") == []
