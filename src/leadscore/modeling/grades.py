"""Grades that mean a conversion rate: A-D cut-offs on the calibrated headline probability.

Cut-offs are set at training on the time-ordered validation rows (leads the evaluated model did
not see), either so that given shares of those leads fall in A, B and C (D is the rest) or as
probability cut-offs the user chose. Each grade is then described by what happened to its
validation leads: its share of leads, its conversion rate, its share of all conversions and its
lift over the average. Rows are weighted like every validation metric (each snapshot stands for
the weeks it represents), so "share of leads" is a share of the open leads a weekly scorer sees.

The scheme is stored with the model; a retrain keeps the champion's probability cut-offs unless
the user resets them, so "A" keeps one meaning from one model version to the next.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
BASIS_SHARES = "shares"
BASIS_PROBABILITY = "probability"
BASIS_KEPT = "kept"


@dataclass(frozen=True)
class GradeRow:
    """What one grade's validation leads did."""

    grade: str
    min_probability: float  # a lead is in this grade at or above this P (D: 0)
    leads: float  # weighted number of validation leads
    share: float  # share of validation leads
    converted: float  # weighted conversions
    rate: float  # conversion rate within the target's window
    share_of_conversions: float
    lift: float  # rate / the average rate


@dataclass(frozen=True)
class GradeScheme:
    """Probability cut-offs for A, B and C on one target, and their measured validation table."""

    target: str
    cutoffs: tuple[float, float, float]
    basis: str
    rows: tuple[GradeRow, ...]
    base_rate: float

    def grade(self, probabilities: np.ndarray) -> np.ndarray:
        """A-D per probability: A at or above the first cut-off, then B, C; D below."""
        return grade_for(probabilities, self.cutoffs)

    def row(self, grade: str) -> GradeRow:
        return next(r for r in self.rows if r.grade == grade)

    def sentence(self, grade: str) -> str:
        """ "A leads converted at 12.0% in validation, 4.2x the average" (per grade)."""
        r = self.row(grade)
        if not math.isfinite(r.rate):
            return f"{grade}: no validation leads fell in this grade"
        return (
            f"{grade} leads converted at {r.rate:.1%} in validation, "
            f"{r.lift:.1f}x the average ({self.base_rate:.1%})"
        )

    def metrics(self) -> dict[str, float]:
        """`<target>.grade.<G>.share|rate|lift|share_of_conversions|min_p` for MLflow."""
        out: dict[str, float] = {}
        for r in self.rows:
            key = f"{self.target}.grade.{r.grade}"
            out[f"{key}.share"] = r.share
            out[f"{key}.rate"] = r.rate
            out[f"{key}.lift"] = r.lift
            out[f"{key}.share_of_conversions"] = r.share_of_conversions
            out[f"{key}.min_p"] = r.min_probability
        return out

    def is_monotone(self) -> bool:
        """True when each grade converted at a higher rate than the next one down."""
        rates = [r.rate for r in self.rows if math.isfinite(r.rate)]
        return all(a > b for a, b in itertools.pairwise(rates))


def grade_for(probabilities: np.ndarray, cutoffs: tuple[float, float, float]) -> np.ndarray:
    """A-D per probability given the A, B and C cut-offs (each at or above)."""
    p = np.asarray(probabilities, float)
    a, b, c = cutoffs
    return np.select([p >= a, p >= b, p >= c], ["A", "B", "C"], "D")


def weighted_upper_quantile(p: np.ndarray, w: np.ndarray, share: float) -> float:
    """The probability above which the top `share` of the weight lies (at least one row)."""
    order = np.argsort(-p, kind="stable")
    mass = np.cumsum(w[order]) / w.sum()
    k = int(np.searchsorted(mass, share - 1e-12, side="left"))
    return float(p[order[min(k, len(p) - 1)]])


def cutoffs_from_shares(
    p: np.ndarray, w: np.ndarray, shares: Mapping[str, float]
) -> tuple[float, float, float]:
    """Cut-offs that put `shares['A']` of the weight in A, `shares['B']` in B, `shares['C']` in C.

    Ties at a cut-off all go to the higher grade; cut-offs never increase from A to C.
    """
    p, w = np.asarray(p, float), np.asarray(w, float)
    if len(p) == 0 or w.sum() <= 0:
        raise ValueError("no validation rows to set grade cut-offs on")
    top = 0.0
    cuts = []
    for g in ("A", "B", "C"):
        top += float(shares[g])
        cuts.append(weighted_upper_quantile(p, w, min(top, 1.0)))
    a, b, c = cuts
    return (a, min(b, a), min(c, b, a))


def grade_table(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, cutoffs: tuple[float, float, float]
) -> tuple[tuple[GradeRow, ...], float]:
    """Each grade's weighted share of leads, conversion rate, share of conversions and lift."""
    y, p, w = (np.asarray(a, float) for a in (y, p, w))
    grades = grade_for(p, cutoffs)
    total, positives = w.sum(), (w * y).sum()
    base = positives / total if total > 0 else math.nan
    mins = dict(zip(GRADES, (*cutoffs, 0.0), strict=True))
    rows = []
    for g in GRADES:
        inside = grades == g
        leads, converted = float(w[inside].sum()), float((w * y)[inside].sum())
        rate = converted / leads if leads > 0 else math.nan
        rows.append(
            GradeRow(
                grade=g,
                min_probability=float(mins[g]),
                leads=leads,
                share=leads / total if total > 0 else math.nan,
                converted=converted,
                rate=rate,
                share_of_conversions=converted / positives if positives > 0 else math.nan,
                lift=rate / base if base and math.isfinite(rate) else math.nan,
            )
        )
    return tuple(rows), float(base)


def measure_grades(
    target: str,
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    *,
    shares: Mapping[str, float] | None = None,
    cutoffs: tuple[float, float, float] | None = None,
    basis: str = BASIS_SHARES,
) -> GradeScheme:
    """A grade scheme measured on validation rows: from given cut-offs, else from shares."""
    if cutoffs is None:
        if shares is None:
            raise ValueError("grade cut-offs need either shares or probability cut-offs")
        cutoffs = cutoffs_from_shares(p, w, shares)
    rows, base = grade_table(y, p, w, cutoffs)
    return GradeScheme(target, tuple(float(c) for c in cutoffs), basis, rows, base)


def grade_lines(scheme: GradeScheme | None) -> tuple[tuple[str, str], ...]:
    """(grade, sentence) for the reports, best grade first; empty for a model without grades.

    "P(won) 1.20% or more: A leads converted at 9.0% in validation, 3.2x the average (2.8%);
    10% of leads, 33% of conversions".
    """
    if scheme is None:
        return ()
    lines = []
    for r in scheme.rows:
        where = (
            f"P({scheme.target}) {r.min_probability:.2%} or more"
            if r.grade != GRADES[-1]
            else f"P({scheme.target}) below {scheme.cutoffs[-1]:.2%}"
        )
        share = (
            f"; {r.share:.0%} of leads, {r.share_of_conversions:.0%} of conversions"
            if math.isfinite(r.share_of_conversions)
            else ""
        )
        lines.append((r.grade, f"{where}: {scheme.sentence(r.grade)}{share}"))
    return tuple(lines)
