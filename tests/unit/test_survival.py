"""Kaplan-Meier on a hand-computed example, and durations censored at the export date."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.survival import (
    converted_by,
    kaplan_meier,
    time_to_converted,
    time_to_outcome,
)


def test_kaplan_meier_matches_the_hand_computed_curve():
    # times 2, 3(censored), 5, 5, 8(censored), 10
    # t=2: 6 at risk, 1 event  -> S = 5/6
    # t=3: censored only       -> S = 5/6
    # t=5: 4 at risk, 2 events -> S = 5/6 * 2/4 = 5/12
    # t=8: censored only       -> S = 5/12
    # t=10: 1 at risk, 1 event -> S = 0
    curve = kaplan_meier([5, 2, 3, 10, 5, 8], [True, True, False, True, True, False])
    assert curve["time"].tolist() == [2, 3, 5, 8, 10]
    assert curve["at_risk"].tolist() == [6, 5, 4, 2, 1]
    assert curve["events"].tolist() == [1, 0, 2, 0, 1]
    assert curve["censored"].tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_allclose(curve["survival"], [5 / 6, 5 / 6, 5 / 12, 5 / 12, 0.0])
    np.testing.assert_allclose(curve["converted"], 1 - curve["survival"])
    # completed cases alone would say 4 of 4 converted, median time 5; censoring matters
    assert converted_by(curve, 4) == pytest.approx(1 / 6)
    assert converted_by(curve, 1) == 0.0
    assert math.isnan(converted_by(curve, 11))
    assert time_to_converted(curve, 0.5) == 5
    assert math.isnan(time_to_converted(kaplan_meier([1, 2], [False, False]), 0.1))


def test_events_before_censoring_at_the_same_time_and_missing_durations():
    curve = kaplan_meier([1, 1, np.nan], [True, False, True])
    assert curve["at_risk"].tolist() == [2] and curve["events"].tolist() == [1]
    assert curve["survival"].tolist() == [0.5]
    with pytest.raises(ValueError, match="negative"):
        kaplan_meier([-1], [True])


def test_open_cases_are_censored_at_the_end():
    start = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-11"]))
    outcome = pd.Series(pd.to_datetime(["2026-01-05", None, "2026-03-01"]))
    days, seen = time_to_outcome(start, outcome, pd.Timestamp("2026-02-01"))
    assert days.tolist() == [4.0, 31.0, 21.0]  # the third converted after the export: open then
    assert seen.tolist() == [True, False, False]
