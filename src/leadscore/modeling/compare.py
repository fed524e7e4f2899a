"""Two models on the same rows, with uncertainty: a lead-level bootstrap of a metric's gain.

A lead has several snapshot rows (weighted like the training examples), and its rows are not
independent, so the bootstrap resamples *leads*: each round draws as many leads as there are,
with replacement (multinomial counts), and every row of a drawn lead enters with its snapshot
weight times the lead's count. The metrics are recomputed for all rounds at once on the fixed
score order (weighted cumulative sums of positives and negatives), so 200 rounds on 100,000
rows take a second or two. Seeded: the same rows and seed give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EPS = 1e-15
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False}
CELLS_PER_BLOCK = 4_000_000  # rounds x rows held in memory at once


@dataclass(frozen=True)
class Gain:
    """The gain of a challenger over a reference in one metric (positive: the challenger is
    better, also for log loss), with its bootstrap interval (NaN without rounds)."""

    metric: str
    challenger: float
    reference: float
    gain: float
    low: float
    high: float
    confidence: float
    rounds: int
    leads: int
    rows: int

    @property
    def has_interval(self) -> bool:
        return self.rounds > 0 and bool(np.isfinite(self.low) and np.isfinite(self.high))


def weighted_metric(metric: str, y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`metric` of scores `p` against labels `y` under each row of `weights` (rounds x rows):
    ROC AUC (trapezoids), PR AUC (average precision, as scikit-learn's
    `average_precision_score`) or log loss; NaN for a round with a single class."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if metric == "log_loss":
        q = np.clip(p, EPS, 1 - EPS)
        loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))
        total = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, weights @ loss / total, np.nan)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted, w_sorted = p[order], y[order], weights[:, order]
    ends = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]  # last row of each tie
    tp = np.cumsum(w_sorted * y_sorted, axis=1)[:, ends]
    fp = np.cumsum(w_sorted * (1 - y_sorted), axis=1)[:, ends]
    pos, neg = tp[:, -1:], fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / pos
        if metric == "roc_auc":
            fpr = fp / neg
            tpr0 = np.c_[np.zeros(len(tpr)), tpr]
            fpr0 = np.c_[np.zeros(len(fpr)), fpr]
            out = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2, axis=1)
        elif metric == "pr_auc":
            called = tp + fp
            precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
            recall0 = np.c_[np.zeros(len(tpr)), tpr]
            out = np.sum(np.diff(recall0, axis=1) * precision, axis=1)
        else:
            raise ValueError(f"unknown metric {metric!r}")
    single_class = (pos[:, 0] <= 0) | (neg[:, 0] <= 0)
    return np.where(single_class, np.nan, out)


def lead_counts(n_leads: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """rounds x leads: how often each lead is drawn in each round (n_leads draws per round)."""
    return rng.multinomial(n_leads, np.full(n_leads, 1.0 / n_leads), size=rounds)


def bootstrap_weights(
    lead_ids: pd.Series | np.ndarray, weights: np.ndarray, rounds: int, seed: int | list[int]
):
    """Yield blocks of bootstrap row weights (rounds x rows): each round resamples leads with
    replacement, a row's weight is its snapshot weight times its lead's count."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(lead_ids)), sort=False)
    weights = np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    block = max(1, CELLS_PER_BLOCK // max(len(weights), 1))
    done = 0
    while done < rounds:
        n = min(block, rounds - done)
        counts = lead_counts(len(uniques), n, rng)
        yield counts[:, codes] * weights
        done += n


def compare(
    metric: str,
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_reference: np.ndarray,
    weights: np.ndarray,
    lead_ids: pd.Series | np.ndarray,
    rounds: int,
    confidence: float,
    seed: int | list[int],
) -> Gain:
    """The challenger's gain over the reference on the same rows, and the percentile interval
    of the lead-level bootstrap (`rounds` 0: point figures only)."""
    w = np.asarray(weights, dtype=float)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    chall = float(weighted_metric(metric, y, p_challenger, w)[0])
    ref = float(weighted_metric(metric, y, p_reference, w)[0])
    gains = []
    for block in bootstrap_weights(lead_ids, w, rounds, seed):
        a = weighted_metric(metric, y, p_challenger, block)
        b = weighted_metric(metric, y, p_reference, block)
        gains.append(sign * (a - b))
    low = high = float("nan")
    if gains:
        g = np.concatenate(gains)
        g = g[np.isfinite(g)]
        if len(g):
            tail = 100 * (1 - confidence) / 2
            low, high = (float(v) for v in np.percentile(g, [tail, 100 - tail]))
    return Gain(
        metric=metric,
        challenger=chall,
        reference=ref,
        gain=sign * (chall - ref),
        low=low,
        high=high,
        confidence=confidence,
        rounds=rounds,
        leads=int(pd.Series(np.asarray(lead_ids)).nunique()),
        rows=len(w),
    )
