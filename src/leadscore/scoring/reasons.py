"""Plain-language reasons: each lead's strongest effects as sentences a salesperson understands.

A reason is one feature *group* (``FeatureSpec.group_of``): an attribute column, one activity
type (its counts over every window), or the lead's timeline (its age, days since its last
activity and its activity over all types), written as a fact about the lead plus its signed
effect in percentage points of probability, e.g. "Job level is VP (+4.2 pts)" or "Lead is
6 months old, no activity for 45 days (−2.3 pts)". Negative effects use the typographic minus
sign (U+2212).

Templates
---------
* Attribute: "<Nice name> is <value>" ("job_level" -> "Job level"); numbers with thousands
  separators and at most three significant digits below 1,000 ("5,000", "12.5", "0.25");
  missing values: "<Nice name> is unknown".
* Activity type: the group holds the type's counts over every window, so the sentence names the
  **shortest window that holds all of the lead's activity of this type in the longest window**:
  "Viewed the pricing page 3 times in the last 30 days" (all of the 90-day count already within
  30 days, not all within 7). Without activity in the longest window: "Viewed the pricing page
  4 times, but not in the last 90 days"; never: "Never viewed the pricing page". Unknown types:
  "Activity 'xyz_abc': 3 times in the last 30 days", "... : never".
  As a reason *against*, a count below the typical one (the mean over the model's training rows,
  ``typical``) says so: "Opened emails only 2 times in the last 90 days"; a typical count whose
  shorter window is below typical says that: "Opened emails 29 times in the last 30 days, none
  in the last 7 days" (the longest such shorter window).
* Timeline: one sentence for age and recency: "New lead: created 8 days ago, no activity yet"
  (under 14 days old), "Lead is 12 weeks old, last activity 3 days ago" (last activity under
  14 days ago), "Lead is 6 months old, no activity for 45 days"; months from 26 weeks, years
  from two years. Without an age feature: "Last activity 3 days ago", "No activity for 45
  days", "No activity yet".

Rules
-----
* An absence is never a reason *for*: a positive effect of "Never ..." or of an old lead's
  timeline without recent activity ("Lead is 6 months old, no activity yet") is left out of the
  reasons for; its points still count in the contributions.
* Effects smaller than ``min_points`` are not reasons, except that every lead gets its strongest
  effect of each sign (if it rounds to at least 0.01 pts and may be said) as first reason when
  none passes the threshold.

Everything is vectorised: per group and output slot, never per row; formatting runs once per
distinct value (``pd.factorize``), so a million leads take seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from leadscore.data.features import (
    AGE_FEATURE,
    RECENCY_FEATURE,
    TIMELINE_GROUP,
    FeatureSpec,
    slug,
)
from leadscore.data.schema import ACTIVITY_GROUP_PREFIX
from leadscore.modeling.model import TargetModel

MINUS = "\u2212"
DEFAULT_MIN_POINTS = 0.05
FALLBACK_MIN_POINTS = 0.005  # a first reason below min_points must still read at least 0.01 pts
MAX_VALUE_CHARS = 60
RECENT_DAYS = 14
NEW_LEAD_DAYS = 14
WEEKS_UNTIL_DAYS = 182
MONTHS_UNTIL_DAYS = 730
NEVER, EARLIER, RECENT, FEW = range(4)  # what an activity sentence says (`activity_phrases`)
SHORT_LIMIT = 1 << 20  # a shorter window's count below typical is far smaller than this

VERBS: dict[str, str] = {
    "email_open": "Opened emails",
    "email_click": "Clicked emails",
    "email_reply": "Replied to emails",
    "page_view": "Viewed web pages",
    "web_visit": "Visited the website",
    "pricing_page_view": "Viewed the pricing page",
    "content_download": "Downloaded content",
    "webinar_registered": "Registered for webinars",
    "webinar_attended": "Attended webinars",
    "event_attended": "Attended events",
    "demo_request": "Requested a demo",
    "trial_signup": "Signed up for a trial",
    "form_submit": "Submitted forms",
    "call": "Had calls",
    "meeting": "Had meetings",
}


def nice_name(column: str) -> str:
    """A column name as words: "job_level" -> "Job level", "annualRevenue" -> "Annual revenue"."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", " ", str(column))
    text = re.sub(r"[_\-.\s]+", " ", text).strip()
    if not text:
        return str(column)
    words = [w if w.isupper() and len(w) > 1 else w.lower() for w in text.split(" ")]
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:]


def format_number(value: float) -> str:
    """A number for people: thousands separators, at most three significant digits below 1,000."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if value == round(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def clean_value(value: object) -> str:
    """A category value on one line, shortened to ``MAX_VALUE_CHARS``."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1].rstrip() + "…"
    return text


def plural(count: int, word: str) -> str:
    """ "1 time", "3 times" (thousands separators for big counts)."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def format_points(points: np.ndarray) -> np.ndarray:
    """Signed effects as text: "+4.2 pts", "−2.3 pts"; under 0.1 in size with two decimals
    ("+0.03 pts"), so a small reason never reads as no effect (object array)."""
    values = np.asarray(points, dtype=np.float64)

    def fmt(digits: int) -> Callable[[float], str]:
        return lambda v: f"{'+' if v >= 0 else MINUS}{abs(v):.{digits}f} pts"

    texts = map_unique(np.round(values, 1) + 0.0, fmt(1))  # +0.0 turns -0.0 into 0.0
    small = np.abs(values) < 0.1
    if small.any():
        texts[small] = map_unique(np.round(values[small], 2) + 0.0, fmt(2))
    return texts


def map_unique(values: np.ndarray | pd.Series, fmt: Callable, missing: str = "") -> np.ndarray:
    """Apply ``fmt`` once per distinct value; missing values get ``missing``. Object array."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = np.array([*(fmt(u) for u in uniques), missing], dtype=object)
    return labels[codes]


def attribute_phrases(values: pd.Series, label: str, numeric: bool) -> np.ndarray:
    """ "<label> is <value>" per row; "<label> is unknown" where missing."""
    if numeric:
        values = pd.to_numeric(values, errors="coerce").astype("float64")
        texts = map_unique(values.to_numpy(), format_number, missing="unknown")
    else:
        texts = map_unique(values.astype("object"), clean_value, missing="unknown")
        texts = np.where(texts == "", "unknown", texts).astype(object)
    return f"{label} is " + texts


def window_phrase(days: int) -> str:
    """ "in the last 30 days" ("in the last day" for one)."""
    return "in the last day" if days == 1 else f"in the last {days} days"


def _counts(features: pd.DataFrame, column: str) -> np.ndarray:
    """An activity count column as int64 (absent or missing: 0)."""
    if column not in features:
        return np.zeros(len(features), dtype=np.int64)
    values = pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.nan_to_num(values, nan=0.0).astype(np.int64)


def whole_days(values: pd.Series | np.ndarray) -> np.ndarray:
    """Days as whole days (float64; NaN where missing, negatives as 0)."""
    days = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(np.float64)
    return np.floor(np.maximum(days, 0))


def typical_counts(model: TargetModel) -> Mapping[str, float]:
    """The mean of each activity count over the model's training rows ({} for models trained
    before it was kept)."""
    return getattr(model.preprocessor, "typical_", {})


def activity_phrases(
    features: pd.DataFrame,
    activity_type: str,
    spec: FeatureSpec,
    verbs: Mapping[str, str] = VERBS,
    against: np.ndarray | None = None,
    typical: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Describe one activity type per row (see the module docstring for the window rule).

    ``against`` marks the rows whose effect is negative: there, counts below ``typical`` (mean
    count by column name) are worded as such. Each row's sentence is a few small integers
    (what it says, a count, a window, a shorter window and its count), so sentences are
    formatted once per distinct combination.
    """
    windows = sorted(spec.windows_days)
    total = _counts(features, spec.activity_feature(activity_type, None))
    columns = [spec.activity_feature(activity_type, w) for w in windows]
    zeros = np.zeros(len(total), dtype=np.int64)
    counts = np.stack([_counts(features, c) for c in columns]) if windows else zeros[None, :]
    longest = counts[-1] if windows else zeros
    window = np.argmax(counts == longest, axis=0)
    what = np.where(longest > 0, RECENT, np.where(total > 0, EARLIER, NEVER))
    count = np.where(longest > 0, longest, total)
    short_window, short = zeros, zeros
    if windows and against is not None and typical:
        limits = np.array([typical.get(c, np.nan) for c in columns], dtype=np.float64)
        said = np.asarray(against, dtype=bool) & (longest > 0)
        widest = below_typical_window(longest, window, limits)
        few = said & (widest > 0)
        what = np.where(few, FEW, what)
        window = np.where(few, widest - 1, window)
        short_window, short = short_window_below_typical(counts, window, limits, said & ~few)
    # one int64 per row, in mixed radix: what (4), window, short window (W each), short, count
    w = len(windows) + 1
    short = np.minimum(short, SHORT_LIMIT - 1)
    key = what + 4 * (window + w * (short_window + w * (short + SHORT_LIMIT * count)))
    codes, uniques = pd.factorize(key)
    say = activity_sentence(activity_type, windows, verbs)

    def decode(k: int) -> str:
        what, k = k % 4, k // 4
        window, k = k % w, k // w
        short_window, k = k % w, k // w
        return say(what, k // SHORT_LIMIT, window, short_window, k % SHORT_LIMIT)

    return np.array([decode(int(k)) for k in uniques], dtype=object)[codes]


def activity_sentence(
    activity_type: str, windows: list[int], verbs: Mapping[str, str]
) -> Callable[[int, int, int, int, int], str]:
    """The sentence of one activity type from (what, count, window, short window + 1 or 0,
    short count)."""
    verb = verbs.get(activity_type) or verbs.get(slug(activity_type).lower())
    if verb:
        head, never = f"{verb} ", f"Never {verb[0].lower()}{verb[1:]}"
    else:
        name = clean_value(activity_type)
        head, never = f"Activity '{name}': ", f"Activity '{name}': never"

    def say(what: int, count: int, window: int, short_window: int, short: int) -> str:
        if what == NEVER:
            return never
        times = plural(count, "time")
        if what == EARLIER:
            return head + times + (f", but not {window_phrase(windows[-1])}" if windows else "")
        text = f"{head}{'only ' if what == FEW else ''}{times} {window_phrase(windows[window])}"
        if short_window:
            amount = "none" if short == 0 else f"only {short:,}"
            text += f", {amount} {window_phrase(windows[short_window - 1])}"
        return text

    return say


def below_typical_window(longest: np.ndarray, chosen: np.ndarray, limits: np.ndarray):
    """1 + index of the longest window, from the shown one (``chosen``) on, whose typical count
    (``limits``; NaN: unknown) is above the lead's count there (``longest``: the shown window
    holds all of it); 0 where there is none."""
    found = np.zeros(len(longest), dtype=np.int64)
    for w in range(len(limits)):
        found = np.where((w >= chosen) & (longest < limits[w]), w + 1, found)
    return found


def short_window_below_typical(
    counts: np.ndarray, chosen: np.ndarray, limits: np.ndarray, rows_to_check: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For ``rows_to_check``: 1 + index of the longest window shorter than the shown one
    (``chosen``) whose count is below its typical count, and that count ("..., none in the last
    7 days"); (0, 0) elsewhere. ``counts`` is windows x rows."""
    shorter = (counts < limits[:, None]) & (np.arange(len(limits))[:, None] < chosen)
    tail = rows_to_check & shorter.any(axis=0)
    last = len(limits) - 1 - np.argmax(shorter[::-1], axis=0)
    short = counts[last, np.arange(counts.shape[1])]
    return np.where(tail, last + 1, 0), np.where(tail, short, 0)


def _days_text(days: int) -> str:
    return plural(days, "day")


def _recency_text(d: float) -> str:
    """ "last activity 3 days ago" (under ``RECENT_DAYS``) or "no activity for 45 days"."""
    if d < 1:
        return "last activity less than a day ago"
    if d < RECENT_DAYS:
        return f"last activity {_days_text(int(d))} ago"
    return f"no activity for {_days_text(int(d))}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def recency_phrases(days: pd.Series | np.ndarray) -> np.ndarray:
    """ "Last activity 3 days ago", "No activity for 45 days" or "No activity yet"."""
    return map_unique(
        whole_days(days), lambda d: _capitalised(_recency_text(d)), missing="No activity yet"
    )


def age_phrases(days: pd.Series | np.ndarray) -> np.ndarray:
    """ "New lead: created 2 days ago", "Lead is 12 weeks old", then months, then years."""

    def one(d: float) -> str:
        if d < 1:
            return "New lead: created less than a day ago"
        if d < NEW_LEAD_DAYS:
            return f"New lead: created {_days_text(int(d))} ago"
        if d < WEEKS_UNTIL_DAYS:
            return f"Lead is {plural(int(d // 7), 'week')} old"
        if d < MONTHS_UNTIL_DAYS:
            return f"Lead is {plural(int(d // 30.44), 'month')} old"
        return f"Lead is {plural(int(d // 365.25), 'year')} old"

    return map_unique(whole_days(days), one, missing="Lead age is unknown")


def timeline_phrases(features: pd.DataFrame) -> np.ndarray:
    """Age and recency as one sentence: "Lead is 6 months old, no activity for 45 days"."""
    has_age, has_recency = AGE_FEATURE in features, RECENCY_FEATURE in features
    if not has_age and not has_recency:
        return np.full(len(features), "Lead timeline", dtype=object)
    if not has_age:
        return recency_phrases(features[RECENCY_FEATURE])
    age = age_phrases(features[AGE_FEATURE])
    if not has_recency:
        return age
    days = whole_days(features[RECENCY_FEATURE])
    tails = map_unique(days, lambda d: ", " + _recency_text(d), missing=", no activity yet")
    return (age + tails).astype(object)


def timeline_absent(features: pd.DataFrame) -> np.ndarray:
    """Rows whose timeline states an absence: not a new lead, and no activity in the last
    ``RECENT_DAYS`` days (or none at all). Without a recency feature there is none."""
    if RECENCY_FEATURE not in features:
        return np.zeros(len(features), dtype=bool)
    quiet = ~(whole_days(features[RECENCY_FEATURE]) < RECENT_DAYS)
    if AGE_FEATURE not in features:
        return quiet
    return quiet & ~(whole_days(features[AGE_FEATURE]) < NEW_LEAD_DAYS)


def group_absent(group: str, features: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Rows whose fact for ``group`` is an absence ("Never ...", an old lead's "no activity"):
    it may be a reason against a lead, never a reason for it."""
    if group == TIMELINE_GROUP:
        return timeline_absent(features)
    if group.startswith(ACTIVITY_GROUP_PREFIX):
        kind = group.removeprefix(ACTIVITY_GROUP_PREFIX)
        return _counts(features, spec.activity_feature(kind, None)) == 0
    return np.zeros(len(features), dtype=bool)


def group_phrases(
    group: str,
    features: pd.DataFrame,
    spec: FeatureSpec,
    labels: Mapping[str, str] | None = None,
    verbs: Mapping[str, str] = VERBS,
    against: np.ndarray | None = None,
    typical: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The fact part of a reason (no effect) for one group, per row of ``features``.

    ``against`` (rows with a negative effect) and ``typical`` (``typical_counts``) enable the
    below-typical wording of activity counts.
    """
    if group == TIMELINE_GROUP:
        return timeline_phrases(features)
    if group.startswith(ACTIVITY_GROUP_PREFIX):
        kind = group.removeprefix(ACTIVITY_GROUP_PREFIX)
        return activity_phrases(features, kind, spec, verbs, against, typical)
    label = (labels or {}).get(group) or nice_name(group)
    if group not in features:
        return np.full(len(features), label, dtype=object)
    return attribute_phrases(features[group], label, numeric=group in spec.numeric)


def rank_effects(values: np.ndarray, n: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``n`` largest (or most negative) effects."""
    keyed = np.where(np.isnan(values), 0.0, values)
    order = np.argsort(-keyed if positive else keyed, axis=1, kind="stable")[:, :n]
    return order, np.take_along_axis(keyed, order, axis=1)


def without_absences(
    values: np.ndarray, groups: list[str], features: pd.DataFrame, spec: FeatureSpec
) -> np.ndarray:
    """``values`` with every positive effect of an absence set to 0 (never a reason for)."""
    out = np.where(np.isnan(values), 0.0, values)
    for j, group in enumerate(groups):
        if group == TIMELINE_GROUP or group.startswith(ACTIVITY_GROUP_PREFIX):
            out[group_absent(group, features, spec) & (out[:, j] > 0), j] = 0.0
    return out


def top_reasons(
    contrib_pp: pd.DataFrame,
    features: pd.DataFrame,
    spec: FeatureSpec,
    n: int = 3,
    min_points: float = DEFAULT_MIN_POINTS,
    labels: Mapping[str, str] | None = None,
    verbs: Mapping[str, str] = VERBS,
    typical: Mapping[str, float] | None = None,
    codes: bool = False,
) -> pd.DataFrame:
    """Each lead's ``n`` strongest reasons for and against, as sentences with signed points.

    ``contrib_pp`` is ``Explanation.contrib_pp`` (rows x groups, percentage points);
    ``features`` are the model inputs of the same rows in the same order. Columns
    ``reason_pos_1..n`` hold only positive effects (largest first), ``reason_neg_1..n`` only
    negative ones (most negative first). Effects smaller than ``min_points`` in size are not
    reasons, except the strongest of each sign, which is always the first one if it reads at
    least 0.01 pts; an absence is never a reason for (see the module docstring); empty strings
    fill the rest. ``labels`` overrides attribute display names, ``verbs`` the activity-type
    verb phrases; ``typical`` (``typical_counts``) enables the below-typical wording.
    With ``codes``, each reason column is followed by ``<column>_code`` (its feature group,
    e.g. ``activity:pricing_page_view``, ``lead:timeline``, ``job_level``; None when empty) and
    ``<column>_points`` (its effect in pts, 2 decimals; NaN when empty), for machines.
    """
    if len(features) != len(contrib_pp):
        raise ValueError(f"{len(features)} feature rows for {len(contrib_pp)} explained rows")
    groups = [str(g) for g in contrib_pp.columns]
    values = contrib_pp.to_numpy(dtype=np.float64)
    rows, n_groups = values.shape
    k = min(n, n_groups)
    slots = {}
    detail: dict[str, np.ndarray] = {}  # codes and points (with ``codes``)
    for sign, positive in (("pos", True), ("neg", False)):
        ranked = without_absences(values, groups, features, spec) if positive else values
        order, vals = rank_effects(ranked, k, positive)
        valid = vals >= min_points if positive else vals <= -min_points
        if k:  # the strongest effect of each sign is a reason even below min_points
            valid[:, 0] |= (vals[:, 0] if positive else -vals[:, 0]) >= FALLBACK_MIN_POINTS
        slots[sign] = (order, valid, [format_points(vals[:, s]) for s in range(k)])
        if codes:
            for s in range(k):
                key = f"reason_{sign}_{s + 1}"
                names = np.asarray(groups, dtype=object)[order[:, s]]
                detail[f"{key}_code"] = np.where(valid[:, s], names, None)
                detail[f"{key}_points"] = np.where(valid[:, s], np.round(vals[:, s], 2), np.nan)
    out = {
        f"reason_{sign}_{s + 1}": np.full(rows, "", dtype=object)
        for sign in slots
        for s in range(n)
    }
    for j, group in enumerate(groups):
        hits = {sign: (order == j) & valid for sign, (order, valid, _) in slots.items()}
        needed = np.flatnonzero(hits["pos"].any(axis=1) | hits["neg"].any(axis=1))
        if needed.size == 0:
            continue
        against = hits["neg"].any(axis=1)[needed]
        phrases = group_phrases(
            group, features.iloc[needed], spec, labels, verbs, against=against, typical=typical
        )
        where = np.full(rows, -1, dtype=np.int64)
        where[needed] = np.arange(needed.size)
        for sign, (_, _, effects) in slots.items():
            for s in range(k):
                mask = hits[sign][:, s]
                if mask.any():
                    column = out[f"reason_{sign}_{s + 1}"]
                    column[mask] = phrases[where[mask]] + " (" + effects[s][mask] + ")"
    ordered = [f"reason_pos_{s + 1}" for s in range(n)] + [f"reason_neg_{s + 1}" for s in range(n)]
    if codes:
        for c in ordered:
            detail.setdefault(f"{c}_code", np.full(rows, None, dtype=object))
            detail.setdefault(f"{c}_points", np.full(rows, np.nan))
        ordered = [name for c in ordered for name in (c, f"{c}_code", f"{c}_points")]
    columns = {**out, **detail}
    return pd.DataFrame({c: columns[c] for c in ordered}, index=contrib_pp.index)
