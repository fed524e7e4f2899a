"""Plain-language reasons: each lead's strongest effects as sentences a salesperson understands.

A reason is one feature *group* (an attribute column, one activity type, all activity and
recency, or the lead's age: see ``FeatureSpec.group_of``) written as a fact about the lead plus
its signed effect in percentage points of probability, e.g. "Job level is VP (+4.2 pts)" or
"No activity for 45 days (−2.3 pts)". Negative effects use the typographic minus sign (U+2212).

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
* All activity: recency only: "Last activity 3 days ago" (under 14 days), "No activity for 45
  days", "No activity recorded yet".
* Age: "New lead (created 2 days ago)" under 14 days, then "Lead is 12 weeks old", "... months
  old" from 26 weeks, "... years old" from two years.

Everything is vectorised: per group and output slot, never per row; formatting runs once per
distinct value (``pd.factorize``), so a million leads take seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from leadscore.data.features import AGE_FEATURE, ALL_TYPES, RECENCY_FEATURE, FeatureSpec, slug
from leadscore.data.schema import ACTIVITY_GROUP_PREFIX

MINUS = "\u2212"
DEFAULT_MIN_POINTS = 0.05
MAX_VALUE_CHARS = 60
RECENT_DAYS = 14
NEW_LEAD_DAYS = 14
WEEKS_UNTIL_DAYS = 182
MONTHS_UNTIL_DAYS = 730

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
    """Signed effects as text: "+4.2 pts", "−2.3 pts" (object array, one decimal)."""
    rounded = np.round(np.asarray(points, dtype=np.float64), 1) + 0.0  # +0.0 turns -0.0 into 0.0
    return map_unique(rounded, lambda v: f"{'+' if v >= 0 else MINUS}{abs(v):.1f} pts")


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


def activity_phrases(
    features: pd.DataFrame,
    activity_type: str,
    spec: FeatureSpec,
    verbs: Mapping[str, str] = VERBS,
) -> np.ndarray:
    """Describe one activity type per row (see the module docstring for the window rule)."""
    windows = sorted(spec.windows_days)
    total = _counts(features, spec.activity_feature(activity_type, None))
    verb = verbs.get(activity_type) or verbs.get(slug(activity_type).lower())
    if verb:
        head, never = f"{verb} ", f"Never {verb[0].lower()}{verb[1:]}"
    else:
        name = clean_value(activity_type)
        head, never = f"Activity '{name}': ", f"Activity '{name}': never"
    times = map_unique(total, lambda c: plural(int(c), "time"))
    if not windows:
        return np.where(total > 0, head + times, never).astype(object)
    counts = np.stack([_counts(features, spec.activity_feature(activity_type, w)) for w in windows])
    longest = counts[-1]
    chosen = np.argmax(counts == longest, axis=0)
    in_window = map_unique(longest, lambda c: plural(int(c), "time"))
    phrases = np.array([window_phrase(w) for w in windows], dtype=object)[chosen]
    recent = head + in_window + " " + phrases
    earlier = head + times + ", but not " + window_phrase(windows[-1])
    return np.where(longest > 0, recent, np.where(total > 0, earlier, never)).astype(object)


def _days_text(days: int) -> str:
    return plural(days, "day")


def recency_phrases(days: pd.Series | np.ndarray) -> np.ndarray:
    """ "Last activity 3 days ago", "No activity for 45 days" or "No activity recorded yet"."""
    values = np.floor(np.maximum(pd.to_numeric(pd.Series(days), errors="coerce").to_numpy(), 0))

    def one(d: float) -> str:
        if d < 1:
            return "Last activity less than a day ago"
        if d < RECENT_DAYS:
            return f"Last activity {_days_text(int(d))} ago"
        return f"No activity for {_days_text(int(d))}"

    return map_unique(values, one, missing="No activity recorded yet")


def age_phrases(days: pd.Series | np.ndarray) -> np.ndarray:
    """ "New lead (created 2 days ago)", "Lead is 12 weeks old", then months, then years."""
    values = np.floor(np.maximum(pd.to_numeric(pd.Series(days), errors="coerce").to_numpy(), 0))

    def one(d: float) -> str:
        if d < 1:
            return "New lead (created less than a day ago)"
        if d < NEW_LEAD_DAYS:
            return f"New lead (created {_days_text(int(d))} ago)"
        if d < WEEKS_UNTIL_DAYS:
            return f"Lead is {plural(int(d // 7), 'week')} old"
        if d < MONTHS_UNTIL_DAYS:
            return f"Lead is {plural(int(d // 30.44), 'month')} old"
        return f"Lead is {plural(int(d // 365.25), 'year')} old"

    return map_unique(values, one, missing="Lead age is unknown")


def group_phrases(
    group: str,
    features: pd.DataFrame,
    spec: FeatureSpec,
    labels: Mapping[str, str] | None = None,
    verbs: Mapping[str, str] = VERBS,
) -> np.ndarray:
    """The fact part of a reason (no effect) for one group, per row of ``features``."""
    if group == f"{ACTIVITY_GROUP_PREFIX}{ALL_TYPES}":
        if RECENCY_FEATURE in features:
            return recency_phrases(features[RECENCY_FEATURE])
        return np.full(len(features), "Overall activity", dtype=object)
    if group.startswith(ACTIVITY_GROUP_PREFIX):
        kind = group.removeprefix(ACTIVITY_GROUP_PREFIX)
        return activity_phrases(features, kind, spec, verbs)
    if group == AGE_FEATURE and AGE_FEATURE in features:
        return age_phrases(features[AGE_FEATURE])
    label = (labels or {}).get(group) or nice_name(group)
    if group not in features:
        return np.full(len(features), label, dtype=object)
    return attribute_phrases(features[group], label, numeric=group in spec.numeric)


def rank_effects(values: np.ndarray, n: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``n`` largest (or most negative) effects."""
    keyed = np.where(np.isnan(values), 0.0, values)
    order = np.argsort(-keyed if positive else keyed, axis=1, kind="stable")[:, :n]
    return order, np.take_along_axis(keyed, order, axis=1)


def top_reasons(
    contrib_pp: pd.DataFrame,
    features: pd.DataFrame,
    spec: FeatureSpec,
    n: int = 3,
    min_points: float = DEFAULT_MIN_POINTS,
    labels: Mapping[str, str] | None = None,
    verbs: Mapping[str, str] = VERBS,
) -> pd.DataFrame:
    """Each lead's ``n`` strongest reasons for and against, as sentences with signed points.

    ``contrib_pp`` is ``Explanation.contrib_pp`` (rows x groups, percentage points);
    ``features`` are the model inputs of the same rows in the same order. Columns
    ``reason_pos_1..n`` hold only positive effects (largest first), ``reason_neg_1..n`` only
    negative ones (most negative first); effects smaller than ``min_points`` in size are not
    reasons (they would read "+0.0 pts"); empty strings fill the rest. ``labels`` overrides
    attribute display names, ``verbs`` the activity-type verb phrases.
    """
    if len(features) != len(contrib_pp):
        raise ValueError(f"{len(features)} feature rows for {len(contrib_pp)} explained rows")
    values = contrib_pp.to_numpy(dtype=np.float64)
    rows, n_groups = values.shape
    k = min(n, n_groups)
    slots = {}
    for sign, positive in (("pos", True), ("neg", False)):
        order, vals = rank_effects(values, k, positive)
        valid = vals >= min_points if positive else vals <= -min_points
        slots[sign] = (order, valid, [format_points(vals[:, s]) for s in range(k)])
    out = {
        f"reason_{sign}_{s + 1}": np.full(rows, "", dtype=object)
        for sign in slots
        for s in range(n)
    }
    for j, group in enumerate(contrib_pp.columns):
        hits = {sign: (order == j) & valid for sign, (order, valid, _) in slots.items()}
        needed = np.flatnonzero(hits["pos"].any(axis=1) | hits["neg"].any(axis=1))
        if needed.size == 0:
            continue
        phrases = group_phrases(str(group), features.iloc[needed], spec, labels, verbs)
        where = np.full(rows, -1, dtype=np.int64)
        where[needed] = np.arange(needed.size)
        for sign, (_, _, effects) in slots.items():
            for s in range(k):
                mask = hits[sign][:, s]
                if mask.any():
                    column = out[f"reason_{sign}_{s + 1}"]
                    column[mask] = phrases[where[mask]] + " (" + effects[s][mask] + ")"
    ordered = [f"reason_pos_{s + 1}" for s in range(n)] + [f"reason_neg_{s + 1}" for s in range(n)]
    return pd.DataFrame({c: out[c] for c in ordered}, index=contrib_pp.index)
