"""Synthetic B2B funnel: accounts, leads, activity streams and outcomes, for the demo and the tests.

Everything is vectorised numpy and driven by one `np.random.default_rng(seed)`, so the same seed
gives byte-identical files. The generative story, in order:

1. Accounts get firmographics (industry, employees, revenue correlated with employees, country)
   and 1-6 leads each (skewed towards 1); leads share their account's firmographics.
2. Leads are created over `history_days` before the export date (volume rising gently), on
   weekdays and in business hours mostly; each gets a job level, a job function and a source.
   The source mix drifts over time.
3. A latent intent per lead mixes fit (industry, size x seniority, function, source x industry,
   country, a slow downward drift) with noise that only engagement reveals.
4. Potential outcomes: a first meeting (probability and speed rise with intent), then won (20-150
   days later) or lost; leads without a meeting may be disqualified early. Outcomes falling after
   the export date are left empty: those leads are still open.
5. Activity events: a decaying stream from creation (rate rising with engagement, mix shifting to
   high-intent types), a burst of high-intent events in the weeks before a meeting, some deal
   activity between meeting and close, and little activity after a close. Nothing after export.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.config import Settings, settings_from_dict
from leadscore.data.io import write_csv
from leadscore.data.parse import nonblank_text, utc_naive

EXPORT_DATE: pd.Timestamp = pd.Timestamp("2026-11-01")

ACTIVITY_TYPES: tuple[str, ...] = (
    "email_open",
    "email_click",
    "page_view",
    "pricing_page_view",
    "content_download",
    "webinar_attended",
    "demo_request",
    "form_submit",
)

DAY = 86_400

# name: (share of accounts, log-employees shift, revenue per employee USD, intent effect,
#        extra intent when the lead came from a webinar, company-name word)
INDUSTRIES: dict[str, tuple[float, float, float, float, float, str]] = {
    "Software": (0.18, 0.0, 260_000, 0.45, 0.70, "Systems"),
    "Financial services": (0.11, 0.5, 420_000, 0.30, 0.50, "Capital"),
    "Healthcare": (0.09, 0.4, 190_000, 0.10, 0.40, "Health"),
    "Manufacturing": (0.12, 0.5, 300_000, 0.00, -0.40, "Industries"),
    "Retail": (0.09, 0.3, 170_000, -0.20, -0.50, "Stores"),
    "Logistics": (0.07, 0.2, 230_000, 0.10, -0.20, "Logistics"),
    "Education": (0.06, 0.1, 90_000, -0.50, -0.40, "Learning"),
    "Government": (0.04, 0.9, 120_000, -0.40, 0.10, "Agency"),
    "Media": (0.06, -0.3, 210_000, -0.10, 0.30, "Media"),
    "Telecommunications": (0.05, 0.8, 380_000, 0.20, 0.00, "Networks"),
    "Professional services": (0.13, -0.2, 150_000, 0.15, 0.20, "Partners"),
}

# name: (share, intent effect)
COUNTRIES: dict[str, tuple[float, float]] = {
    "United States": (0.40, 0.10),
    "United Kingdom": (0.11, 0.05),
    "Germany": (0.09, 0.00),
    "Canada": (0.06, 0.05),
    "France": (0.06, -0.10),
    "India": (0.06, -0.35),
    "Australia": (0.05, 0.05),
    "Netherlands": (0.04, 0.05),
    "Brazil": (0.04, -0.25),
    "Spain": (0.03, -0.15),
    "Japan": (0.03, -0.20),
    "Sweden": (0.03, 0.05),
}

# name: (share at small companies, share elsewhere, intent effect, slope of intent on company size)
JOB_LEVELS: dict[str, tuple[float, float, float, float]] = {
    "C-level": (0.16, 0.05, 0.30, 0.55),
    "VP": (0.08, 0.09, 0.50, 0.50),
    "Director": (0.14, 0.17, 0.45, 0.35),
    "Manager": (0.24, 0.28, 0.15, 0.05),
    "Individual contributor": (0.26, 0.31, -0.30, -0.25),
    "Consultant": (0.06, 0.05, -0.40, 0.00),
    "Student": (0.06, 0.05, -2.00, -0.30),
}

# name: (share, intent effect)
JOB_FUNCTIONS: dict[str, tuple[float, float]] = {
    "Sales": (0.20, 0.35),
    "Marketing": (0.22, 0.40),
    "Operations": (0.13, 0.10),
    "IT": (0.14, 0.20),
    "Finance": (0.08, 0.00),
    "Engineering": (0.10, -0.15),
    "HR": (0.05, -0.25),
    "Executive": (0.03, 0.30),
    "Other": (0.05, -0.40),
}

# name: (share mid-history, drift of the log-share over the history, intent effect,
#        activity type of the event that created the lead, or None)
LEAD_SOURCES: dict[str, tuple[float, float, float, str | None]] = {
    "web_form": (0.15, 0.0, 0.50, "form_submit"),
    "webinar": (0.08, 0.5, 0.00, "webinar_attended"),
    "paid_search": (0.18, -0.7, -0.20, "page_view"),
    "organic_search": (0.16, 0.0, 0.00, "page_view"),
    "event": (0.07, 0.3, 0.35, None),
    "referral": (0.05, 0.2, 1.00, None),
    "partner": (0.06, 0.3, 0.60, None),
    "email_campaign": (0.12, -0.3, -0.30, "email_click"),
    "content_syndication": (0.13, 0.7, -0.80, "content_download"),
}

LEADS_PER_ACCOUNT_P: tuple[float, ...] = (0.42, 0.22, 0.14, 0.10, 0.07, 0.05)
COMPANY_WORDS: tuple[str, ...] = (
    "Acme", "Apex", "Atlas", "Beacon", "Blue", "Bright", "Cedar", "Crest", "Delta", "Eagle",
    "Ember", "Falcon", "Global", "Granite", "Harbor", "Horizon", "Iron", "Keystone", "Lumen",
    "Maple", "Meridian", "North", "Nova", "Orbit", "Pine", "Pioneer", "Quantum", "River",
    "Sierra", "Silver", "Summit", "Union", "Vertex", "Vista", "West", "Zenith",
)  # fmt: skip

# Activity-type mixes: low intent, high intent, and the mix of a pre-meeting burst.
TYPE_MIX_LOW = (0.42, 0.14, 0.30, 0.02, 0.07, 0.03, 0.005, 0.015)
TYPE_MIX_HIGH = (0.20, 0.13, 0.28, 0.14, 0.07, 0.05, 0.06, 0.07)
TYPE_MIX_BURST = (0.10, 0.10, 0.26, 0.24, 0.06, 0.04, 0.11, 0.09)

# Funnel calibration (intercepts on the logit scale and event rates).
MEETING_INTERCEPT = -1.9
MEETING_SLOPE = 1.0
WIN_INTERCEPT = -1.55
WIN_SLOPE = 0.8
WIN_SWEET_SPOT = 2.2
CONVERSION_DRIFT = -0.35
LOST_AFTER_MEETING_P = 0.7
BASE_EVENTS_MEAN = 29.0
POST_CLOSE_KEEP_P = 0.1


# the sample's feedback ends 2026-11-22, so no sample feedback date lies in the future
FEEDBACK_HORIZON = pd.Timedelta(weeks=3)
FEEDBACK_LEAD_AGE_DAYS = 120
CRM_UNLOGGED_MEETING_SHARE = 0.15
# synthetic sales feedback (`sample_feedback`)
SAMPLE_DISQUALIFY_SHARE = 0.15
SAMPLE_REPS: tuple[str, ...] = ("Alex Morgan", "Sam Patel", "Jordan Lee", "Maria Rossi", "Chen Wei")
SAMPLE_NOTES: dict[str, tuple[str, ...]] = {
    "meeting_held": ("intro call done", "demo given", "discovery call, good fit"),
    "won": ("contract signed", "signed after trial", "closed"),
    "lost": ("went with a competitor", "no budget this year", "project cancelled"),
    "disqualified": ("no reply after 3 attempts", "not a buyer", "too small for us"),
}
SAMPLE_NOTE_SHARE = 0.6


@dataclass(frozen=True)
class SampleData:
    """The generated tables: one row per lead, the activity event log, and the true outcomes.

    `truth` holds each lead's outcome times without the cut at the export date (what will
    happen next): the sample's sales feedback reports from it.
    """

    leads: pd.DataFrame
    activities: pd.DataFrame
    truth: pd.DataFrame | None = None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _normalised(p: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Probabilities scaled to sum to one."""
    p = np.asarray(p, dtype=float)
    return p / p.sum()


def _choice(
    rng: np.random.Generator, probs: np.ndarray | tuple[float, ...], size: int
) -> np.ndarray:
    """Category codes (int8) drawn with fixed probabilities, by inverse CDF."""
    cum = np.cumsum(_normalised(probs))
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int8)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category code per row of a (rows x categories) probability matrix."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))
    return (u[:, None] >= cum[:, :-1]).sum(axis=1).astype(np.int8)


def _column(values: dict) -> tuple[np.ndarray, ...]:
    """Transpose a table of parameter tuples into one numpy array per field."""
    return tuple(np.array(col) for col in zip(*values.values(), strict=True))


def _labels(
    names: list[str] | tuple[str, ...], codes: np.ndarray, missing: np.ndarray | None = None
) -> pd.Series:
    """Text column from category codes (null where `missing`), built through Arrow."""
    indices = pa.array(codes, mask=missing)
    return pa.array(list(names), pa.string()).take(indices).to_pandas()


def _ids(prefix: str, count: int, width: int) -> pa.Array:
    """Identifiers like 'L0000001': a prefix and a zero-padded 1-based number."""
    numbers = pc.cast(pa.array(np.arange(1, count + 1)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width=width, padding="0"), "")


def _seconds(ts: pd.Timestamp) -> int:
    """Seconds since the epoch of a (naive, or converted to naive UTC) timestamp."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int((ts - pd.Timestamp(0)) // pd.Timedelta(seconds=1))


def _account_sizes(rng: np.random.Generator, n_leads: int) -> np.ndarray:
    """Leads per account (1-6, skewed), summing exactly to `n_leads`."""
    mean = float(np.dot(np.arange(1, 7), _normalised(LEADS_PER_ACCOUNT_P)))
    sizes = _choice(rng, LEADS_PER_ACCOUNT_P, int(n_leads / mean * 1.2) + 16).astype(np.int64) + 1
    total = np.cumsum(sizes)
    n_accounts = int(np.searchsorted(total, n_leads)) + 1
    sizes = sizes[:n_accounts]
    sizes[-1] -= int(total[n_accounts - 1]) - n_leads
    return sizes


def _accounts(rng: np.random.Generator, n_accounts: int) -> dict[str, np.ndarray]:
    """Account firmographics: industry, true employees and revenue, country and missing masks."""
    share, log_shift, rev_per_emp, *_ = _column(INDUSTRIES)
    industry = _choice(rng, share, n_accounts)
    log_emp = np.log(120.0) + log_shift[industry] + rng.normal(0.0, 1.5, n_accounts)
    employees = np.clip(np.round(np.exp(log_emp)), 1, 300_000).astype(np.int64)
    revenue = employees * rev_per_emp[industry] * np.exp(rng.normal(0.0, 0.5, n_accounts))
    revenue = np.round(revenue, -3)
    country = _choice(rng, _column(COUNTRIES)[0], n_accounts)
    employees_missing = rng.random(n_accounts) < 0.08
    revenue_missing = rng.random(n_accounts) < np.where(employees_missing, 0.6, 0.07)
    country_missing = rng.random(n_accounts) < 0.05
    name_word = rng.integers(0, len(COMPANY_WORDS), n_accounts)
    return {
        "industry": industry,
        "employees": employees,
        "revenue": revenue,
        "country": country,
        "employees_missing": employees_missing,
        "revenue_missing": revenue_missing,
        "country_missing": country_missing,
        "name_word": name_word,
    }


def _creation_seconds(
    rng: np.random.Generator, sizes: np.ndarray, start: int, history_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Account index of each lead and its creation time (s) in [start, start + history_days days).

    Account starts have a density rising linearly to 1.6x at the export date; later leads of an
    account follow within weeks. Weekend creations mostly move to the Friday before, and the
    time of day is mostly business hours.
    """
    n_accounts, n_leads = len(sizes), int(sizes.sum())
    g = 0.6
    r = rng.random(n_accounts)
    account_day = (np.sqrt(1.0 + 2.0 * g * r * (1.0 + g / 2.0)) - 1.0) / g * history_days
    account_of_lead = np.repeat(np.arange(n_accounts), sizes)
    rank = np.arange(n_leads) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    day = account_day[account_of_lead] + np.where(rank > 0, rng.exponential(45.0, n_leads), 0.0)
    late = day >= history_days
    base = account_day[account_of_lead]
    day = np.where(late, base + rng.random(n_leads) * (history_days - base), day)
    day = np.minimum(np.floor(day), history_days - 1).astype(np.int64)
    weekday = (start // DAY + 3 + day) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    move = (weekday >= 5) & (rng.random(n_leads) < 0.75)
    day = np.where(move & (day - (weekday - 4) >= 0), day - (weekday - 4), day)
    office = rng.random(n_leads) < 0.85
    tod = np.where(office, rng.normal(14.0 * 3600, 3.0 * 3600, n_leads), rng.random(n_leads) * DAY)
    tod = np.clip(tod, 0, DAY - 1).astype(np.int64)
    return account_of_lead, start + day * DAY + tod


def lead_roles(
    rng: np.random.Generator, small_company: np.ndarray, progress: np.ndarray
) -> dict[str, np.ndarray]:
    """Job level (more C-level at small companies), job function and lead source (drifting mix)."""
    n = len(progress)
    small_p, large_p, *_ = _column(JOB_LEVELS)
    level = np.where(small_company, _choice(rng, small_p, n), _choice(rng, large_p, n))
    function = _choice(rng, _column(JOB_FUNCTIONS)[0], n)
    executive = list(JOB_FUNCTIONS).index("Executive")
    c_level = level == list(JOB_LEVELS).index("C-level")
    function = np.where(c_level & (rng.random(n) < 0.6), executive, function).astype(np.int8)
    src_share, src_drift, *_ = _column(LEAD_SOURCES)
    logits = np.log(src_share)[None, :] + np.outer(progress - 0.5, src_drift)
    source = _choice_rows(rng, np.exp(logits))
    syndicated = source == list(LEAD_SOURCES).index("content_syndication")
    function_missing = rng.random(n) < np.where(syndicated, 0.25, 0.07)
    return {
        "level": level,
        "function": function,
        "source": source,
        "function_missing": function_missing,
    }


def _intent(
    rng: np.random.Generator,
    industry: np.ndarray,
    employees: np.ndarray,
    country: np.ndarray,
    country_missing: np.ndarray,
    roles: dict[str, np.ndarray],
    progress: np.ndarray,
) -> np.ndarray:
    """Latent intent per lead, fit plus noise, on a logit-like scale.

    Interactions: company size helps only senior levels (and hurts juniors); a webinar source is
    worth much more in some industries than others.
    """
    n = len(progress)
    *_, ind_effect, webinar_effect, _ = _column(INDUSTRIES)
    *_, lvl_effect, lvl_size_slope = _column(JOB_LEVELS)
    fn_effect = _column(JOB_FUNCTIONS)[1]
    src_effect = _column(LEAD_SOURCES)[2].astype(float)
    size_z = (np.log10(employees) - 2.1) / 0.65
    level, source = roles["level"], roles["source"]
    webinar = source == list(LEAD_SOURCES).index("webinar")
    fit = (
        ind_effect[industry]
        + lvl_effect[level]
        + lvl_size_slope[level] * np.clip(size_z, -2.5, 2.5)
        + np.where(roles["function_missing"], -0.15, fn_effect[roles["function"]])
        + src_effect[source]
        + np.where(webinar, webinar_effect[industry], 0.0)
        + np.where(country_missing, -0.1, _column(COUNTRIES)[1][country])
        + CONVERSION_DRIFT * (progress - 0.5)
    )
    return fit + rng.normal(0.0, 0.85, n)


def _outcomes(
    rng: np.random.Generator, created: np.ndarray, intent: np.ndarray, size_z: np.ndarray
) -> dict[str, np.ndarray]:
    """Potential outcome times in seconds (int64; -1 where none), before censoring at export.

    Returns `meeting`, `won`, `lost` and `close` (the earlier of won/lost, -1 when never closed).
    """
    n = len(created)
    centred = intent - 0.3
    has_meeting = rng.random(n) < _sigmoid(MEETING_INTERCEPT + MEETING_SLOPE * centred)
    delay_days = np.exp(np.log(18.0) - 0.25 * centred + rng.normal(0.0, 0.9, n))
    delay = np.clip(delay_days * DAY, 3600, 400 * DAY).astype(np.int64)
    meeting = np.where(has_meeting, created + delay, -1)

    # deals close best in the mid-market sweet spot (a few hundred to a few thousand employees):
    # a bell in company size, not a straight line
    sweet_spot = WIN_SWEET_SPOT * (np.exp(-((size_z - 0.9) ** 2)) - 0.5)
    p_win = _sigmoid(WIN_INTERCEPT + WIN_SLOPE * centred + sweet_spot)
    won_flag = has_meeting & (rng.random(n) < p_win)
    won_delay = (20.0 + 130.0 * rng.beta(2.0, 3.0, n)) * DAY
    won = np.where(won_flag, meeting + won_delay.astype(np.int64), -1)

    lost_after = has_meeting & ~won_flag & (rng.random(n) < LOST_AFTER_MEETING_P)
    lost_delay = np.minimum(7.0 + rng.gamma(2.0, 20.0, n), 240.0) * DAY
    p_dq = 0.30 + 0.35 * _sigmoid(-1.5 * centred)
    disqualified = ~has_meeting & (rng.random(n) < p_dq)
    dq_delay = 3600.0 + rng.exponential(20.0, n) * DAY
    lost = np.where(lost_after, meeting + lost_delay.astype(np.int64), -1)
    lost = np.where(disqualified, created + dq_delay.astype(np.int64), lost)
    close = np.where(won_flag, won, lost)
    return {"meeting": meeting, "won": won, "lost": lost, "close": close}


def _amounts(rng: np.random.Generator, employees: np.ndarray) -> np.ndarray:
    """Log-normal deal amounts (USD, rounded to 10), larger for bigger companies."""
    mu = np.log(14_000.0) + 0.4 * np.log(np.maximum(employees, 1) / 150.0)
    return np.maximum(np.round(np.exp(mu + rng.normal(0.0, 0.6, len(employees))), -1), 500.0)


def _types(rng: np.random.Generator, high_share: np.ndarray) -> np.ndarray:
    """Activity type codes (int8); each event uses the high-intent mix with its own probability."""
    n = len(high_share)
    cum_low = np.cumsum(_normalised(TYPE_MIX_LOW))
    cum_high = np.cumsum(_normalised(TYPE_MIX_HIGH))
    cum_low[-1] = cum_high[-1] = 1.0
    table = np.concatenate([cum_low, 1.0 + cum_high])
    high = rng.random(n) < high_share
    v = rng.random(n) + high
    code = np.searchsorted(table, v, side="right") - len(ACTIVITY_TYPES) * high
    return np.minimum(code, len(ACTIVITY_TYPES) - 1).astype(np.int8)


def _events(
    rng: np.random.Generator,
    created: np.ndarray,
    source: np.ndarray,
    intent: np.ndarray,
    outcomes: dict[str, np.ndarray],
    export: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activity events as (lead index, time in s, type code), sorted by lead then time then type.

    Streams: the event that created the lead (for some sources), a decaying stream from creation,
    a burst of high-intent events before a meeting, deal activity between meeting and close; then
    events after a close are mostly dropped and events after the export date are removed.
    """
    n = len(created)
    meeting, close = outcomes["meeting"], outcomes["close"]
    engagement = np.exp(0.5 * (intent - 0.3) + rng.normal(0.0, 0.6, n) - 0.35)
    high_share = np.clip(0.15 + 0.35 * _sigmoid(1.5 * (intent - 0.8)), 0.0, 1.0)

    # the creating event (a form, a webinar, a download...) a few minutes after creation
    first_type = np.array(
        [-1 if t is None else ACTIVITY_TYPES.index(t) for *_, t in LEAD_SOURCES.values()]
    )[source]
    first_idx = np.flatnonzero(first_type >= 0)
    first_t = created[first_idx] + rng.integers(1, 900, len(first_idx))
    first_code = first_type[first_idx].astype(np.int8)

    # decaying stream from creation: a fast and a slow component
    counts = rng.poisson(BASE_EVENTS_MEAN * engagement)
    base_idx = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(base_idx)
    scale = np.where(rng.random(m) < 0.55, 12.0 * DAY, 120.0 * DAY)
    base_t = created[base_idx] + 1 + (rng.exponential(1.0, m) * scale).astype(np.int64)
    base_code = _types(rng, high_share[base_idx])

    # burst before a (potential) meeting, mostly within the 3 weeks before it
    has_meeting = meeting >= 0
    burst_counts = np.where(has_meeting, rng.poisson(4.0 + 5.0 * np.sqrt(engagement)), 0)
    burst_idx = np.repeat(np.arange(n, dtype=np.int64), burst_counts)
    k = len(burst_idx)
    m_at, c_at = meeting[burst_idx], created[burst_idx]
    burst_t = m_at - 1 - (rng.gamma(2.0, 4.0, k) * DAY).astype(np.int64)
    inside = c_at + 1 + (rng.random(k) * (m_at - c_at - 1)).astype(np.int64)
    burst_t = np.where(burst_t <= c_at, inside, burst_t)
    burst_code = _choice(rng, TYPE_MIX_BURST, k)

    # deal activity between the meeting and the close (or 90 days when never closed)
    deal_counts = np.where(has_meeting, rng.poisson(5.0, n), 0)
    deal_idx = np.repeat(np.arange(n, dtype=np.int64), deal_counts)
    d_start = meeting[deal_idx]
    d_end = np.where(close[deal_idx] >= 0, close[deal_idx], d_start + 90 * DAY)
    deal_t = d_start + (rng.random(len(deal_idx)) * (d_end - d_start)).astype(np.int64)
    deal_code = _types(rng, np.full(len(deal_idx), 0.6))

    idx = np.concatenate([first_idx, base_idx, burst_idx, deal_idx])
    t = np.concatenate([first_t, base_t, burst_t, deal_t])
    code = np.concatenate([first_code, base_code, burst_code, deal_code])
    del base_idx, base_t, base_code, burst_idx, burst_t, burst_code, inside, m_at, c_at

    closed = close[idx]
    after_close = (closed >= 0) & (t > closed)
    keep = (t < export) & ~(after_close & (rng.random(len(t)) >= POST_CLOSE_KEEP_P))
    del closed, after_close
    idx, t, code = idx[keep], t[keep], code[keep]
    return _sort_events(idx, t, code, int(created.min()), export)


def _sort_events(
    idx: np.ndarray, t: np.ndarray, code: np.ndarray, t0: int, export: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort events by (lead, time, type) through one packed int64 key."""
    t_bits = max(int(export - t0).bit_length(), 1)
    type_bits = 3
    if int(idx.max(initial=0)).bit_length() + t_bits + type_bits > 62:
        raise ValueError("too many leads or too long a history to pack event sort keys")
    key = (idx << (t_bits + type_bits)) | ((t - t0) << type_bits) | code.astype(np.int64)
    del idx, t, code
    key.sort()
    lead = (key >> (t_bits + type_bits)).astype(np.int32)
    times = ((key >> type_bits) & ((1 << t_bits) - 1)) + t0
    codes = (key & ((1 << type_bits) - 1)).astype(np.int8)
    return lead, times, codes


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """datetime64[s] from epoch seconds, NaT where negative (no value)."""
    out = seconds.astype("datetime64[s]")
    out[seconds < 0] = np.datetime64("NaT")
    return out


def _company_names(word: np.ndarray, industry: np.ndarray, account_rank: np.ndarray) -> pa.Array:
    """Free-text company names like 'Acme Logistics 123' (one per account, unique by number)."""
    words = pa.array(list(COMPANY_WORDS)).take(pa.array(word))
    kinds = pa.array([v[-1] for v in INDUSTRIES.values()]).take(pa.array(industry))
    numbers = pc.cast(pa.array(account_rank + 1), pa.string())
    return pc.binary_join_element_wise(words, kinds, numbers, " ")


def generate_funnel(
    n_leads: int = 20_000,
    seed: int = 0,
    export_date: pd.Timestamp = EXPORT_DATE,
    history_days: int = 730,
) -> SampleData:
    """Generate a synthetic B2B funnel: leads (with outcomes) and their activity events.

    Deterministic for a seed. Timestamps are datetime64[s]; outcome times after `export_date` are
    NaT (the lead is still open there). `activities` holds `lead_id` and `activity_type` as
    categoricals and is sorted by lead_id then occurred_at.
    """
    if n_leads < 1:
        raise ValueError("n_leads must be at least 1")
    if history_days < 1:
        raise ValueError("history_days must be at least 1")
    rng = np.random.default_rng(seed)
    export = _seconds(export_date)
    start = export - history_days * DAY

    sizes = _account_sizes(rng, n_leads)
    acc = _accounts(rng, len(sizes))
    account_of_lead, created = _creation_seconds(rng, sizes, start, history_days)
    # ids follow creation order, as in a CRM: accounts by first lead, leads by creation time
    order = np.argsort(created, kind="stable")
    account_of_lead, created = account_of_lead[order], created[order]
    _, first_seen = np.unique(account_of_lead, return_index=True)
    account_rank = np.empty(len(sizes), dtype=np.int64)
    account_rank[np.argsort(first_seen)] = np.arange(len(sizes))

    employees = acc["employees"][account_of_lead]
    industry = acc["industry"][account_of_lead]
    country = acc["country"][account_of_lead]
    country_missing = acc["country_missing"][account_of_lead]
    progress = (created - start) / (history_days * DAY)
    roles = lead_roles(rng, employees < 50, progress)
    intent = _intent(rng, industry, employees, country, country_missing, roles, progress)
    size_z = (np.log10(employees) - 2.1) / 0.65
    potential = _outcomes(rng, created, intent, size_z)
    amounts = _amounts(rng, employees)

    def observed(seconds: np.ndarray) -> np.ndarray:
        return np.where((seconds >= 0) & (seconds < export), seconds, -1)

    won = observed(potential["won"])
    meeting = _unlogged_meetings(seed, observed(potential["meeting"]), won)
    leads = pd.DataFrame(
        {
            "lead_id": _ids("L", n_leads, max(7, len(str(n_leads)))).to_pandas(),
            "account_id": _ids("A", len(sizes), max(6, len(str(len(sizes)))))
            .take(pa.array(account_rank[account_of_lead]))
            .to_pandas(),
            "created_at": _timestamps(created),
            "company_name": _company_names(acc["name_word"], acc["industry"], account_rank)
            .take(pa.array(account_of_lead))
            .to_pandas(),
            "industry": _labels(list(INDUSTRIES), industry),
            "employees": pd.arrays.IntegerArray(
                employees.copy(), acc["employees_missing"][account_of_lead]
            ),
            "annual_revenue": np.where(acc["revenue_missing"], np.nan, acc["revenue"])[
                account_of_lead
            ],
            "country": _labels(list(COUNTRIES), country, country_missing),
            "job_level": _labels(list(JOB_LEVELS), roles["level"]),
            "job_function": _labels(
                list(JOB_FUNCTIONS), roles["function"], roles["function_missing"]
            ),
            "lead_source": _labels(list(LEAD_SOURCES), roles["source"]),
            "meeting_at": _timestamps(meeting),
            "won_at": _timestamps(won),
            "lost_at": _timestamps(observed(potential["lost"])),
            "amount": np.where(won >= 0, amounts, np.nan),
        }
    )

    lead_idx, times, codes = _events(rng, created, roles["source"], intent, potential, export)
    activities = pd.DataFrame(
        {
            "lead_id": pd.Categorical.from_codes(
                lead_idx, categories=pd.Index(leads["lead_id"], dtype=object)
            ),
            "occurred_at": times.astype("datetime64[s]"),
            "activity_type": pd.Categorical.from_codes(codes, categories=list(ACTIVITY_TYPES)),
        }
    )
    truth = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "meeting_at": _timestamps(potential["meeting"]),
            "won_at": _timestamps(potential["won"]),
            "lost_at": _timestamps(potential["lost"]),
        }
    )
    return SampleData(leads=leads, activities=activities, truth=truth)


def _unlogged_meetings(seed: int, meeting: np.ndarray, won: np.ndarray) -> np.ndarray:
    """CRM gaps: a share of the meetings of leads not (yet) won never got logged in the CRM.

    Sales reports them later through feedback (`sample_feedback_rows`). Drawn from a stream of
    its own, so the rest of the funnel does not depend on it.
    """
    rng = np.random.default_rng([seed, 7])
    gap = (meeting >= 0) & (won < 0) & (rng.random(len(meeting)) < CRM_UNLOGGED_MEETING_SHARE)
    return np.where(gap, -1, meeting)


def unlogged_meeting_feedback(data: SampleData, seed: int = 0) -> pd.DataFrame:
    """Feedback rows correcting the CRM: meetings held but never logged, at their true dates."""
    truth = data.truth
    gap = (
        truth["meeting_at"].notna()
        & (truth["meeting_at"] < EXPORT_DATE)
        & data.leads["meeting_at"].isna()
        & data.leads["won_at"].isna()
    )
    rows = truth.loc[gap, ["lead_id", "meeting_at"]]
    rng = np.random.default_rng([seed, 8])
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].to_numpy(),
            "outcome": "meeting_held",
            "date": pd.to_datetime(rows["meeting_at"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "rep": rng.choice(["Alex Morgan", "Sam Patel", "Jordan Lee"], size=len(rows)),
            "note": "meeting was not logged in the CRM",
        }
    )


def sample_feedback(
    leads_truth: pd.DataFrame,
    open_lead_ids: pd.Series,
    as_of: pd.Timestamp,
    rng_seed: int,
    *,
    horizon: pd.Timedelta,
    share: float = 0.3,
) -> pd.DataFrame:
    """Plausible sales feedback rows (`lead_id, outcome, date, rep, note`) for open leads.

    A `share` of the open leads (drawn at random) gets feedback on what truly happened in
    `(as_of, as_of + horizon]`: `meeting_held`, `won` and `lost` at their true days (a loss
    without a meeting is reported as `disqualified`), and, for some leads that went nowhere
    (no meeting or win ever, nothing in the window), a `disqualified` on a random day of the
    window. Dates are YYYY-MM-DD text, never after `as_of + horizon`. Deterministic for a seed.
    """
    rng = np.random.default_rng(rng_seed)
    as_of = utc_naive(as_of)
    end = as_of + horizon
    ids = set(nonblank_text(pd.Series(open_lead_ids)).dropna())
    truth = leads_truth.assign(lead_id=nonblank_text(leads_truth["lead_id"]))
    truth = truth[truth["lead_id"].isin(ids)].drop_duplicates("lead_id")
    truth = truth.sort_values("lead_id", kind="stable").reset_index(drop=True)
    n_pick = round(share * len(truth))
    picked = truth.iloc[np.sort(rng.choice(len(truth), size=n_pick, replace=False))]
    picked = picked.reset_index(drop=True)

    def times(name: str) -> pd.Series:
        if name not in picked:
            return pd.Series(pd.NaT, index=picked.index, dtype="datetime64[ns]")
        return picked[name].astype("datetime64[ns]")

    meeting, won, lost = times("meeting_at"), times("won_at"), times("lost_at")

    def window(t: pd.Series) -> np.ndarray:
        return ((t > as_of) & (t <= end)).to_numpy(bool)

    dq_day = as_of.normalize() + pd.to_timedelta(
        rng.integers(1, max(horizon.days, 1) + 1, size=len(picked)), unit="D"
    )
    dq_draw = rng.random(len(picked)) < SAMPLE_DISQUALIFY_SHARE
    rep = np.asarray(SAMPLE_REPS, dtype=object)[rng.integers(0, len(SAMPLE_REPS), len(picked))]
    note_pick = rng.integers(0, 3, size=len(picked) * 2).reshape(-1, 2)
    note_keep = rng.random((len(picked), 2)) < SAMPLE_NOTE_SHARE

    nothing = ~(window(meeting) | window(won) | window(lost)) & meeting.isna() & won.isna()
    lost_kind = np.where(meeting.notna() & (meeting <= lost), "lost", "disqualified")
    parts = [
        (window(meeting), "meeting_held", meeting, 0),
        (window(won), "won", won, 1),
        (window(lost) & (lost_kind == "lost"), "lost", lost, 1),
        (window(lost) & (lost_kind == "disqualified"), "disqualified", lost, 1),
        (nothing.to_numpy(bool) & dq_draw, "disqualified", pd.Series(dq_day), 1),
    ]
    frames = []
    for mask, outcome, when, slot in parts:
        idx = np.flatnonzero(mask)
        notes = np.asarray(SAMPLE_NOTES[outcome], dtype=object)[note_pick[idx, slot]]
        frames.append(
            pd.DataFrame(
                {
                    "lead_id": picked["lead_id"].to_numpy()[idx],
                    "outcome": outcome,
                    "when": when.to_numpy()[idx].astype("datetime64[ns]"),
                    "rep": rep[idx],
                    "note": np.where(note_keep[idx, slot], notes, None),
                    "order": slot,
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    rows["when"] = rows["when"].dt.normalize()
    rows = rows.sort_values(["when", "lead_id", "order"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "lead_id": rows["lead_id"].astype("string"),
            "outcome": rows["outcome"].astype("string"),
            "date": rows["when"].dt.strftime("%Y-%m-%d").astype("string"),
            "rep": rows["rep"].astype("string"),
            "note": rows["note"].astype("string"),
        }
    )


def sample_feedback_rows(data: SampleData, seed: int = 0) -> pd.DataFrame:
    """Sales feedback: meetings the CRM missed, and what happened to recent open leads in the
    weeks after the export date."""
    leads = data.leads
    still_open = leads[["meeting_at", "won_at", "lost_at"]].isna().all(axis=1)
    # sales works the recent leads: feedback comes on leads created in the last four months
    recent = leads["created_at"] >= EXPORT_DATE - pd.Timedelta(days=FEEDBACK_LEAD_AGE_DAYS)
    still_open &= recent
    still_open &= ~leads["lead_id"].isin(unlogged_meeting_feedback(data, seed)["lead_id"])
    recent_news = sample_feedback(
        data.truth,
        leads.loc[still_open, "lead_id"],
        EXPORT_DATE,
        rng_seed=seed,
        horizon=FEEDBACK_HORIZON,
    )
    return pd.concat([unlogged_meeting_feedback(data, seed), recent_news], ignore_index=True)


def write_sample(out_dir: Path, n_leads: int = 20_000, seed: int = 0) -> dict[str, Path]:
    """Generate the funnel; write `leads.csv`, `activities.csv` and `feedback.csv` atomically.

    Timestamps are written as 'YYYY-MM-DD HH:MM:SS' text, missing values as empty cells.
    `feedback.csv` is sales feedback (lead_id, outcome, date, rep, note) on leads open at the
    export date, dated within `FEEDBACK_HORIZON` after it.
    """
    out_dir = Path(out_dir)
    data = generate_funnel(n_leads=n_leads, seed=seed)
    paths = {
        "leads": out_dir / "leads.csv",
        "activities": out_dir / "activities.csv",
        "feedback": out_dir / "feedback.csv",
    }
    write_csv(data.leads, paths["leads"])
    write_csv(data.activities, paths["activities"])
    write_csv(sample_feedback_rows(data, seed), paths["feedback"])
    return paths


# configs/sample.yaml as a mapping, so code needs no repository file to build the sample's
# settings; tests/data/test_sample_settings.py keeps the two equal.
SAMPLE_CONFIG: dict = {
    "data": {
        "leads": "data/sample/leads.csv",
        "activities": "data/sample/activities.csv",
        "outcomes": None,
        "feedback": "data/feedback",
    },
    "columns": {
        "lead_id": "lead_id",
        "created_at": "created_at",
        "account_id": "account_id",
        "meeting_at": "meeting_at",
        "won_at": "won_at",
        "lost_at": "lost_at",
        "amount": "amount",
        "segment": "lead_source",
        "categorical": None,
        "numeric": None,
        "exclude": ["company_name"],
    },
    "activity_columns": {
        "lead_id": "lead_id",
        "occurred_at": "occurred_at",
        "type": "activity_type",
    },
    "labels": {"meeting_window_days": 90, "won_window_days": 180, "export_date": None},
    "mlflow": {"tracking_uri": "sqlite:///mlruns.db", "model_name": "leadscore"},
}


def sample_settings(data_dir: Path, tracking_uri: str, **overrides: dict) -> Settings:
    """The settings of configs/sample.yaml for the sample funnel written to `data_dir`, with
    MLflow tracking to `tracking_uri`.

    Each keyword updates one config section, nested mappings merged key by key, e.g.
    `sample_settings(data, uri, train={"model": {"n_jobs": 1}}, mlflow={"model_name": "t"})`.
    """
    raw = copy.deepcopy(SAMPLE_CONFIG)
    raw["data"]["leads"] = str(Path(data_dir) / "leads.csv")
    raw["data"]["activities"] = str(Path(data_dir) / "activities.csv")
    raw["mlflow"]["tracking_uri"] = tracking_uri
    return settings_from_dict(merged(raw, overrides))


def merged(base: dict, updates: dict) -> dict:
    """`base` updated by `updates`, nested mappings merged key by key (neither is changed)."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
