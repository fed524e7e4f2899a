"""Validation splits: time-ordered, lead-disjoint, per target; seeded stratified without time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.split import (
    STRATIFIED_RANDOM,
    TIME,
    split_target,
    stratified_split,
    time_cutoff,
)

START = pd.Timestamp("2025-01-01")


def weekly_examples(n_leads: int = 400, seed: int = 0) -> pd.DataFrame:
    """Leads created over a year, 1-8 weekly snapshots each, labels with some censoring."""
    rng = np.random.default_rng(seed)
    created = START + pd.to_timedelta(rng.uniform(0, 365, n_leads), unit="D")
    counts = rng.integers(1, 9, n_leads)
    lead = np.repeat(np.arange(n_leads), counts)
    k = np.arange(len(lead)) - np.repeat(np.cumsum(counts) - counts, counts)
    frame = pd.DataFrame(
        {
            "lead_id": pd.array([f"L{i:04d}" for i in lead], dtype="string"),
            "created_at": created[lead],
            "snapshot_at": created[lead] + pd.to_timedelta(7 * k, unit="D"),
            "weight": 1.0,
        }
    )
    label = (rng.random(len(frame)) < 0.2).astype(float)
    censored = rng.random(len(frame)) < 0.1
    frame["label_won"] = np.where(censored, np.nan, label)
    frame["label_meeting"] = np.where(rng.random(len(frame)) < 0.3, np.nan, label)
    return frame


def leads_of(frame: pd.DataFrame, index: pd.Index) -> set[str]:
    return set(frame.loc[index, "lead_id"])


def test_time_cutoff_is_the_start_of_the_newest_share():
    created = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-11", "2025-01-06"]))
    assert time_cutoff(created, 0.2) == pd.Timestamp("2025-01-09")


@pytest.mark.parametrize("target", ["won", "meeting"])
def test_time_split_is_ordered_and_lead_disjoint(target):
    frame = weekly_examples()
    split = split_target(frame, target, 0.2, 0.25, has_time=True)
    assert split.method == TIME
    cutoff, cal_cutoff = split.validation_cutoff, split.calibration_cutoff
    labelled = frame[frame[f"label_{target}"].notna()]
    assert cutoff == time_cutoff(labelled["created_at"], 0.2)
    val, train = frame.loc[split.validation], frame.loc[split.train]
    assert (val["created_at"] >= cutoff).all()
    assert (train["created_at"] < cutoff).all()
    assert (train["snapshot_at"] < cutoff).all()  # nothing dated in the validation period
    assert not leads_of(frame, split.train) & leads_of(frame, split.validation)
    # every labelled snapshot of a validation-period lead is validated on
    assert set(split.validation) == set(labelled.index[labelled["created_at"] >= cutoff])
    # calibration: the newest part of training, also lead-disjoint from fit
    fit, cal = frame.loc[split.fit], frame.loc[split.calibration]
    assert cal_cutoff < cutoff
    assert (cal["created_at"] >= cal_cutoff).all()
    assert (fit["created_at"] < cal_cutoff).all() and (fit["snapshot_at"] < cal_cutoff).all()
    assert not leads_of(frame, split.fit) & leads_of(frame, split.calibration)
    # only rows with a known label are used
    used = split.fit.append(split.calibration).append(split.validation)
    assert frame.loc[used, f"label_{target}"].notna().all()
    assert used.is_unique


def test_targets_are_split_on_their_own_labelled_rows():
    frame = weekly_examples()
    late = frame["created_at"] > START + pd.Timedelta(days=250)
    frame.loc[late, "label_won"] = np.nan  # won is censored for recent leads
    won = split_target(frame, "won", 0.2, 0.2, has_time=True)
    meeting = split_target(frame, "meeting", 0.2, 0.2, has_time=True)
    assert won.validation_cutoff < meeting.validation_cutoff
    assert len(won.validation) > 0


def test_a_given_cutoff_replaces_the_computed_one():
    frame = weekly_examples()
    cutoff = START + pd.Timedelta(days=200)
    split = split_target(frame, "won", 0.2, 0.2, has_time=True, validation_cutoff=cutoff)
    assert split.validation_cutoff == cutoff
    assert (frame.loc[split.validation, "created_at"] >= cutoff).all()
    assert (frame.loc[split.train, "snapshot_at"] < cutoff).all()


def test_stratified_split_without_time_is_seeded_by_lead_and_keeps_class_shares():
    frame = weekly_examples(2_000)
    frame = frame.drop_duplicates("lead_id").reset_index(drop=True)  # one snapshot per lead
    split = split_target(frame, "won", 0.25, 0.2, has_time=False, seed=7)
    assert split.method == STRATIFIED_RANDOM
    assert split.validation_cutoff is None
    assert not leads_of(frame, split.train) & leads_of(frame, split.validation)
    labelled = frame[frame["label_won"].notna()]
    rate = labelled["label_won"].mean()
    val_rate = frame.loc[split.validation, "label_won"].mean()
    assert abs(len(split.validation) / len(labelled) - 0.25) < 0.01
    assert abs(val_rate - rate) < 0.01
    again = split_target(frame, "won", 0.25, 0.2, has_time=False, seed=7)
    assert again.validation.equals(split.validation) and again.fit.equals(split.fit)
    other = split_target(frame, "won", 0.25, 0.2, has_time=False, seed=8)
    assert not other.validation.equals(split.validation)


def test_stratified_split_keeps_all_snapshots_of_a_lead_together():
    frame = weekly_examples(300)
    rest, held = stratified_split(frame, "label_won", 0.3, seed=0)
    assert not leads_of(frame, rest) & leads_of(frame, held)
    assert len(rest) + len(held) == len(frame)


def test_no_training_rows_leaves_empty_fit_and_calibration():
    frame = weekly_examples(50)
    cutoff = frame["created_at"].min()
    split = split_target(frame, "won", 0.2, 0.2, has_time=True, validation_cutoff=cutoff)
    assert len(split.fit) == 0 and len(split.calibration) == 0
    assert split.counts()["validation_rows"] == int(frame["label_won"].notna().sum())
