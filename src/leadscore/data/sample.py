"""Synthetic B2B funnel: accounts, leads, activity streams and outcomes, for the demo and the tests.

Everything is vectorised numpy and driven by one `np.random.default_rng(seed)`, so the same seed
gives byte-identical files. The generative story, in order:

1. Accounts get firmographics (industry, employees, revenue correlated with employees, country)
   and 1-6 leads each (skewed towards 1); leads share their account's firmographics.
2. Leads are created over `history_days` before the export date (volume rising gently), on
   weekdays and in business hours mostly; each gets a job level, a job function and a source.
   The source mix drifts over time.
3. A latent intent per lead mixes fit (industry, size x seniority, function, source x industry,
   country, a slow downward drift) with noise that only engagement reveals; half of that noise's
   variance is shared by the leads of one account (the buying group's propensity), so several
   engaged people raise the chance of the account's other leads.
4. Potential outcomes: a first meeting (probability and speed rise with intent), then won (20-150
   days later) or lost; leads without a meeting may be disqualified early. Outcomes falling after
   the export date are left empty: those leads are still open.
5. Activity events: a decaying stream from creation (rate rising with engagement, mix shifting to
   high-intent types), a burst of high-intent events in the weeks before a meeting, some deal
   activity between meeting and close, and little activity after a close. Nothing after export.

The parameters and formulas live in `leadscore.data.sample_model`, shared with
`leadscore.data.sample_truth`, which computes the open leads' true probabilities. A later export
of the same funnel (`generate_exports`, `write_sample(later_days=...)`) cuts the same potential
outcomes and event streams at a later date and adds the leads created in between, drawn from a
random stream of their own, so the first export does not change.
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
from leadscore.data.sample_model import (
    ACCOUNT_INTENT_SHARE,
    ACTIVITY_TYPES,
    BASE_EVENTS_MEAN,
    BURST_BASE,
    BURST_GAMMA,
    BURST_SLOPE,
    COUNTRIES,
    CREATING_EVENT_SECONDS,
    DAY,
    DISQUALIFY_DELAY_MEAN,
    EMPLOYEES_LOG_SD,
    EMPLOYEES_MEDIAN,
    EMPLOYEES_RANGE,
    ENGAGEMENT_NOISE_SD,
    ENGAGEMENT_SHIFT,
    ENGAGEMENT_SLOPE,
    FAST_EVENTS_DAYS,
    FAST_EVENTS_SHARE,
    INDUSTRIES,
    INTENT_CENTRE,
    INTENT_NOISE_SD,
    JOB_FUNCTIONS,
    JOB_LEVELS,
    LEAD_SOURCES,
    LOST_AFTER_MEETING_P,
    MEETING_DELAY_MAX,
    MEETING_DELAY_MEDIAN,
    MEETING_DELAY_SD,
    MEETING_DELAY_SLOPE,
    POST_CLOSE_KEEP_P,
    REVENUE_LOG_SD,
    SLOW_EVENTS_DAYS,
    SMALL_COMPANY,
    TYPE_MIX_BURST,
    TYPE_MIX_HIGH,
    TYPE_MIX_LOW,
    WON_DELAY_BETA,
    WON_DELAY_MIN,
    WON_DELAY_SPAN,
    column,
    creating_event_types,
    disqualify_chance,
    high_intent_share,
    intent_fit,
    meeting_chance,
    normalised,
    size_z,
    win_chance,
)
from leadscore.data.sample_truth import true_probabilities

EXPORT_DATE: pd.Timestamp = pd.Timestamp("2026-11-01")
HISTORY_DAYS = 730  # leads are created over the two years before the export date

LEADS_PER_ACCOUNT_P: tuple[float, ...] = (0.42, 0.22, 0.14, 0.10, 0.07, 0.05)
COMPANY_WORDS: tuple[str, ...] = (
    "Acme", "Apex", "Atlas", "Beacon", "Blue", "Bright", "Cedar", "Crest", "Delta", "Eagle",
    "Ember", "Falcon", "Global", "Granite", "Harbor", "Horizon", "Iron", "Keystone", "Lumen",
    "Maple", "Meridian", "North", "Nova", "Orbit", "Pine", "Pioneer", "Quantum", "River",
    "Sierra", "Silver", "Summit", "Union", "Vertex", "Vista", "West", "Zenith",
)  # fmt: skip

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
# who the lead is and whose it is (display columns, never features): a contact name per lead and
# an owner per account (its leads share it), from a random stream of their own
OWNER_SHARES: dict[str, float] = {**dict.fromkeys(SAMPLE_REPS, 0.18), "Inbound queue": 0.10}
FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kira",
    "Liam", "Mei", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wes", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Andersen", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Meyer", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Urban", "Virtanen", "Walsh", "Yilmaz", "Zhang",
)  # fmt: skip


@dataclass(frozen=True)
class SampleData:
    """The generated tables: one row per lead, the activity event log, and the true outcomes.

    `truth` holds each lead's outcome times without the cut at the export date (what will
    happen next): the sample's sales feedback reports from it.
    """

    leads: pd.DataFrame
    activities: pd.DataFrame
    truth: pd.DataFrame | None = None


@dataclass(frozen=True)
class SampleExports:
    """The funnel exported at the export date (`first`, what `generate_funnel` returns) and, with
    `later_days`, again at `later_date`: the same leads and events with the outcomes reached by
    then, plus the leads created and the events that happened in between (`later`)."""

    first: SampleData
    later: SampleData | None = None
    later_date: pd.Timestamp | None = None


@dataclass(frozen=True)
class _Cohort:
    """Leads generated together, before any cut at an export date: attribute columns, creation
    and potential outcome times (seconds, -1 where none), deal amounts, whether the CRM misses
    the lead's meeting, and events as (lead index, seconds, type code) up to the last export."""

    attributes: pd.DataFrame
    created: np.ndarray
    potential: dict[str, np.ndarray]
    amounts: np.ndarray
    unlogged: np.ndarray
    events: tuple[np.ndarray, np.ndarray, np.ndarray]
    n_accounts: int


def _choice(
    rng: np.random.Generator, probs: np.ndarray | tuple[float, ...], size: int
) -> np.ndarray:
    """Category codes (int8) drawn with fixed probabilities, by inverse CDF."""
    cum = np.cumsum(normalised(probs))
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int8)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category code per row of a (rows x categories) probability matrix."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))
    return (u[:, None] >= cum[:, :-1]).sum(axis=1).astype(np.int8)


def _labels(
    names: list[str] | tuple[str, ...], codes: np.ndarray, missing: np.ndarray | None = None
) -> pd.Series:
    """Text column from category codes (null where `missing`), built through Arrow."""
    indices = pa.array(codes, mask=missing)
    return pa.array(list(names), pa.string()).take(indices).to_pandas()


def _ids(prefix: str, count: int, width: int, first: int = 1) -> pa.Array:
    """Identifiers like 'L0000001': a prefix and a zero-padded number counting from `first`."""
    numbers = pc.cast(pa.array(np.arange(first, first + count)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width=width, padding="0"), "")


def _seconds(ts: pd.Timestamp) -> int:
    """Seconds since the epoch of a (naive, or converted to naive UTC) timestamp."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int((ts - pd.Timestamp(0)) // pd.Timedelta(seconds=1))


def _account_sizes(rng: np.random.Generator, n_leads: int) -> np.ndarray:
    """Leads per account (1-6, skewed), summing exactly to `n_leads`."""
    mean = float(np.dot(np.arange(1, 7), normalised(LEADS_PER_ACCOUNT_P)))
    sizes = _choice(rng, LEADS_PER_ACCOUNT_P, int(n_leads / mean * 1.2) + 16).astype(np.int64) + 1
    total = np.cumsum(sizes)
    n_accounts = int(np.searchsorted(total, n_leads)) + 1
    sizes = sizes[:n_accounts]
    sizes[-1] -= int(total[n_accounts - 1]) - n_leads
    return sizes


def _accounts(rng: np.random.Generator, n_accounts: int) -> dict[str, np.ndarray]:
    """Account firmographics: industry, true employees and revenue, country and missing masks."""
    share, log_shift, rev_per_emp, *_ = column(INDUSTRIES)
    industry = _choice(rng, share, n_accounts)
    log_emp = (
        np.log(EMPLOYEES_MEDIAN)
        + log_shift[industry]
        + rng.normal(0.0, EMPLOYEES_LOG_SD, n_accounts)
    )
    employees = np.clip(np.round(np.exp(log_emp)), *EMPLOYEES_RANGE).astype(np.int64)
    revenue = (
        employees * rev_per_emp[industry] * np.exp(rng.normal(0.0, REVENUE_LOG_SD, n_accounts))
    )
    revenue = np.round(revenue, -3)
    country = _choice(rng, column(COUNTRIES)[0], n_accounts)
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
    small_p, large_p, *_ = column(JOB_LEVELS)
    level = np.where(small_company, _choice(rng, small_p, n), _choice(rng, large_p, n))
    function = _choice(rng, column(JOB_FUNCTIONS)[0], n)
    executive = list(JOB_FUNCTIONS).index("Executive")
    c_level = level == list(JOB_LEVELS).index("C-level")
    function = np.where(c_level & (rng.random(n) < 0.6), executive, function).astype(np.int8)
    src_share, src_drift, *_ = column(LEAD_SOURCES)
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
    account_noise: np.ndarray,
) -> np.ndarray:
    """Latent intent per lead on a logit-like scale: fit (`intent_fit`) plus noise that only
    engagement reveals, partly its own and partly its account's (`account_noise`, standard
    normal per lead's account; `ACCOUNT_INTENT_SHARE` of the variance)."""
    fit = intent_fit(
        industry,
        employees,
        country,
        country_missing,
        roles["level"],
        roles["function"],
        roles["function_missing"],
        roles["source"],
        progress,
    )
    own = rng.normal(0.0, INTENT_NOISE_SD, len(progress))
    shared = INTENT_NOISE_SD * account_noise
    return fit + np.sqrt(1.0 - ACCOUNT_INTENT_SHARE) * own + np.sqrt(ACCOUNT_INTENT_SHARE) * shared


def _outcomes(
    rng: np.random.Generator, created: np.ndarray, intent: np.ndarray, size: np.ndarray
) -> dict[str, np.ndarray]:
    """Potential outcome times in seconds (int64; -1 where none), before censoring at export.

    Returns `meeting`, `won`, `lost` and `close` (the earlier of won/lost, -1 when never closed).
    """
    n = len(created)
    centred = intent - INTENT_CENTRE
    has_meeting = rng.random(n) < meeting_chance(centred)
    delay_days = np.exp(
        np.log(MEETING_DELAY_MEDIAN)
        + MEETING_DELAY_SLOPE * centred
        + rng.normal(0.0, MEETING_DELAY_SD, n)
    )
    delay = np.clip(delay_days * DAY, 3600, MEETING_DELAY_MAX * DAY).astype(np.int64)
    meeting = np.where(has_meeting, created + delay, -1)

    won_flag = has_meeting & (rng.random(n) < win_chance(centred, size))
    won_delay = (WON_DELAY_MIN + WON_DELAY_SPAN * rng.beta(*WON_DELAY_BETA, n)) * DAY
    won = np.where(won_flag, meeting + won_delay.astype(np.int64), -1)

    lost_after = has_meeting & ~won_flag & (rng.random(n) < LOST_AFTER_MEETING_P)
    lost_delay = np.minimum(7.0 + rng.gamma(2.0, 20.0, n), 240.0) * DAY
    disqualified = ~has_meeting & (rng.random(n) < disqualify_chance(centred))
    dq_delay = 3600.0 + rng.exponential(DISQUALIFY_DELAY_MEAN, n) * DAY
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
    cum_low = np.cumsum(normalised(TYPE_MIX_LOW))
    cum_high = np.cumsum(normalised(TYPE_MIX_HIGH))
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
    until: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activity events as (lead index, time in s, type code), sorted by lead then time then type.

    Streams: the event that created the lead (for some sources), a decaying stream from creation,
    a burst of high-intent events before a meeting, deal activity between meeting and close; then
    events after a close are mostly dropped and events from `until` on are removed. Every stream
    is drawn whole before that cut, so the events before any earlier date do not depend on it.
    """
    n = len(created)
    meeting, close = outcomes["meeting"], outcomes["close"]
    engagement = np.exp(
        ENGAGEMENT_SLOPE * (intent - INTENT_CENTRE)
        + rng.normal(0.0, ENGAGEMENT_NOISE_SD, n)
        + ENGAGEMENT_SHIFT
    )
    high_share = high_intent_share(intent)

    # the creating event (a form, a webinar, a download...) a few minutes after creation
    first_type = creating_event_types(source)
    first_idx = np.flatnonzero(first_type >= 0)
    first_t = created[first_idx] + rng.integers(1, CREATING_EVENT_SECONDS, len(first_idx))
    first_code = first_type[first_idx].astype(np.int8)

    # decaying stream from creation: a fast and a slow component
    counts = rng.poisson(BASE_EVENTS_MEAN * engagement)
    base_idx = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(base_idx)
    scale = np.where(
        rng.random(m) < FAST_EVENTS_SHARE, FAST_EVENTS_DAYS * DAY, SLOW_EVENTS_DAYS * DAY
    )
    base_t = created[base_idx] + 1 + (rng.exponential(1.0, m) * scale).astype(np.int64)
    base_code = _types(rng, high_share[base_idx])

    # burst before a (potential) meeting, mostly within the 3 weeks before it
    has_meeting = meeting >= 0
    burst_mean = BURST_BASE + BURST_SLOPE * np.sqrt(engagement)
    burst_counts = np.where(has_meeting, rng.poisson(burst_mean), 0)
    burst_idx = np.repeat(np.arange(n, dtype=np.int64), burst_counts)
    k = len(burst_idx)
    m_at, c_at = meeting[burst_idx], created[burst_idx]
    burst_t = m_at - 1 - (rng.gamma(*BURST_GAMMA, k) * DAY).astype(np.int64)
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
    keep = (t < until) & ~(after_close & (rng.random(len(t)) >= POST_CLOSE_KEEP_P))
    del closed, after_close
    idx, t, code = idx[keep], t[keep], code[keep]
    return _sort_events(idx, t, code, int(created.min()), until)


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


def _company_names(word: np.ndarray, industry: np.ndarray, number: np.ndarray) -> pa.Array:
    """Free-text company names like 'Acme Logistics 123' (one per account, unique by number)."""
    words = pa.array(list(COMPANY_WORDS)).take(pa.array(word))
    kinds = pa.array([v[-1] for v in INDUSTRIES.values()]).take(pa.array(industry))
    numbers = pc.cast(pa.array(number), pa.string())
    return pc.binary_join_element_wise(words, kinds, numbers, " ")


def _people(
    rng: np.random.Generator, n_accounts: int, account_of_lead: np.ndarray
) -> dict[str, np.ndarray]:
    """A contact name per lead and its account's owner (the sales rep or queue)."""
    owners = np.array(list(OWNER_SHARES), dtype=object)
    account_owner = _choice(rng, normalised(np.array(list(OWNER_SHARES.values()))), n_accounts)
    first = rng.integers(0, len(FIRST_NAMES), len(account_of_lead))
    last = rng.integers(0, len(LAST_NAMES), len(account_of_lead))
    names = np.char.add(
        np.char.add(np.array(FIRST_NAMES)[first], " "), np.array(LAST_NAMES)[last]
    ).astype(object)
    return {"contact_name": names, "owner": owners[account_owner[account_of_lead]]}


def _cohort(
    rng: np.random.Generator,
    n_leads: int,
    start: int,
    days: int,
    history: tuple[int, int],
    until: int,
    unlogged_rng: np.random.Generator,
    numbering: tuple[int, int, int, int | None],
    people_rng: np.random.Generator,
    account_rng: np.random.Generator,
) -> _Cohort:
    """Leads created in [start, start + days days) with their accounts, outcomes and events.

    `history` (start in seconds, length in days) places creation times on the funnel's drifts;
    `until` ends the events; `numbering` is (first lead number, first account number, lead-id
    width, account-id width or None for the width its own account count needs); `people_rng`
    draws the contact names and owners, so they leave every other column as it was;
    `account_rng` the accounts' shared intent noise.
    """
    first_lead, first_account, lead_width, account_width = numbering
    sizes = _account_sizes(rng, n_leads)
    acc = _accounts(rng, len(sizes))
    account_of_lead, created = _creation_seconds(rng, sizes, start, days)
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
    progress = (created - history[0]) / (history[1] * DAY)
    roles = lead_roles(rng, employees < SMALL_COMPANY, progress)
    account_noise = account_rng.standard_normal(len(sizes))[account_of_lead]
    intent = _intent(
        rng, industry, employees, country, country_missing, roles, progress, account_noise
    )
    potential = _outcomes(rng, created, intent, size_z(employees))
    amounts = _amounts(rng, employees)
    account_width = account_width or max(6, len(str(len(sizes))))
    people = _people(people_rng, len(sizes), account_rank[account_of_lead])
    attributes = pd.DataFrame(
        {
            "lead_id": _ids("L", n_leads, lead_width, first_lead).to_pandas(),
            "account_id": _ids("A", len(sizes), account_width, first_account)
            .take(pa.array(account_rank[account_of_lead]))
            .to_pandas(),
            "created_at": _timestamps(created),
            "company_name": _company_names(
                acc["name_word"][account_of_lead],
                industry,
                account_rank[account_of_lead] + first_account,
            ).to_pandas(),
            "contact_name": people["contact_name"],
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
            "owner": people["owner"],
        }
    )
    events = _events(rng, created, roles["source"], intent, potential, until)
    unlogged = unlogged_rng.random(n_leads) < CRM_UNLOGGED_MEETING_SHARE
    return _Cohort(attributes, created, potential, amounts, unlogged, events, len(sizes))


def _export(cohorts: list[_Cohort], cutoff: int, first_export: int) -> SampleData:
    """The cohorts as a CRM export at `cutoff` (seconds) shows them: outcome times and events
    before it. A meeting the CRM misses stays missing while the lead was not won by the first
    export (`first_export`), so a later export changes nothing dated before the first one."""
    leads, truth, event_parts, offset = [], [], [], 0
    for cohort in cohorts:
        pot = cohort.potential

        def before(seconds: np.ndarray, end: int) -> np.ndarray:
            return np.where((seconds >= 0) & (seconds < end), seconds, -1)

        won = before(pot["won"], cutoff)
        meeting = before(pot["meeting"], cutoff)
        gap = cohort.unlogged & (meeting >= 0) & (before(pot["won"], first_export) < 0)
        leads.append(
            cohort.attributes.assign(
                meeting_at=_timestamps(np.where(gap, -1, meeting)),
                won_at=_timestamps(won),
                lost_at=_timestamps(before(pot["lost"], cutoff)),
                amount=np.where(won >= 0, cohort.amounts, np.nan),
            )
        )
        truth.append(
            pd.DataFrame(
                {
                    "lead_id": cohort.attributes["lead_id"],
                    "meeting_at": _timestamps(pot["meeting"]),
                    "won_at": _timestamps(pot["won"]),
                    "lost_at": _timestamps(pot["lost"]),
                }
            )
        )
        idx, t, code = cohort.events
        keep = t < cutoff
        event_parts.append((idx[keep] + offset, t[keep], code[keep]))
        offset += len(cohort.created)
    lead_table = leads[0] if len(leads) == 1 else pd.concat(leads, ignore_index=True)
    lead_idx, times, codes = (np.concatenate(part) for part in zip(*event_parts, strict=True))
    activities = pd.DataFrame(
        {
            "lead_id": pd.Categorical.from_codes(
                lead_idx, categories=pd.Index(lead_table["lead_id"], dtype=object)
            ),
            "occurred_at": times.astype("datetime64[s]"),
            "activity_type": pd.Categorical.from_codes(codes, categories=list(ACTIVITY_TYPES)),
        }
    )
    truth_table = truth[0] if len(truth) == 1 else pd.concat(truth, ignore_index=True)
    return SampleData(leads=lead_table, activities=activities, truth=truth_table)


ACCOUNT_COLUMNS: tuple[str, ...] = (
    "account_id", "company_name", "industry", "employees", "annual_revenue", "country",
)  # fmt: skip


def sample_accounts(leads: pd.DataFrame) -> pd.DataFrame:
    """One row per account of the leads: id, name (`account_name`) and firmographics, in the
    order the accounts first appear (their leads share these values)."""
    accounts = leads[list(ACCOUNT_COLUMNS)].drop_duplicates("account_id").reset_index(drop=True)
    return accounts.rename(columns={"company_name": "account_name"})


def _later_lead_count(
    rng: np.random.Generator, created: np.ndarray, export: int, history_days: int, days: int
) -> int:
    """How many leads arrive in the `days` after the export: Poisson at the creation rate of the
    four weeks before the history's last week (which collects the follow-up leads of accounts
    that would have come after the export)."""
    window = min(28, history_days - 7)
    if window > 0:
        end = export - 7 * DAY
        rate = np.count_nonzero((created >= end - window * DAY) & (created < end)) / window
    else:
        rate = len(created) / history_days
    return int(rng.poisson(rate * days))


def generate_exports(
    n_leads: int = 20_000,
    seed: int = 0,
    export_date: pd.Timestamp = EXPORT_DATE,
    history_days: int = HISTORY_DAYS,
    later_days: int = 0,
) -> SampleExports:
    """Generate the funnel and export it at `export_date` and, when `later_days` > 0, again
    `later_days` later (see `SampleExports`).

    The first export is the same for a seed whatever `later_days` is: the later week's new leads
    come from a random stream of their own (seeded by `[seed, 9]`), and every event stream is
    drawn whole before it is cut at an export date.
    """
    if n_leads < 1:
        raise ValueError("n_leads must be at least 1")
    if history_days < 1:
        raise ValueError("history_days must be at least 1")
    if later_days < 0:
        raise ValueError("later_days must be 0 or more")
    export = _seconds(export_date)
    start = export - history_days * DAY
    later = export + later_days * DAY
    lead_width = max(7, len(str(n_leads)))
    history = (start, history_days)
    first = _cohort(
        np.random.default_rng(seed),
        n_leads,
        start,
        history_days,
        history,
        later,
        np.random.default_rng([seed, 7]),
        (1, 1, lead_width, None),
        np.random.default_rng([seed, 11]),
        np.random.default_rng([seed, 13]),
    )
    first_export = _export([first], export, export)
    if not later_days:
        return SampleExports(first=first_export)
    rng = np.random.default_rng([seed, 9])
    cohorts = [first]
    n_new = _later_lead_count(rng, first.created, export, history_days, later_days)
    if n_new:
        numbering = (
            n_leads + 1,
            first.n_accounts + 1,
            lead_width,
            max(6, len(str(first.n_accounts))),
        )
        cohorts.append(
            _cohort(
                rng,
                n_new,
                export,
                later_days,
                history,
                later,
                np.random.default_rng([seed, 9, 7]),
                numbering,
                np.random.default_rng([seed, 9, 11]),
                np.random.default_rng([seed, 9, 13]),
            )
        )
    return SampleExports(
        first=first_export,
        later=_export(cohorts, later, export),
        later_date=pd.Timestamp(export_date) + pd.Timedelta(days=later_days),
    )


def generate_funnel(
    n_leads: int = 20_000,
    seed: int = 0,
    export_date: pd.Timestamp = EXPORT_DATE,
    history_days: int = HISTORY_DAYS,
) -> SampleData:
    """Generate a synthetic B2B funnel: leads (with outcomes) and their activity events.

    Deterministic for a seed. Timestamps are datetime64[s]; outcome times after `export_date` are
    NaT (the lead is still open there). `activities` holds `lead_id` and `activity_type` as
    categoricals and is sorted by lead_id then occurred_at.
    """
    return generate_exports(n_leads, seed, export_date, history_days).first


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


def write_sample(
    out_dir: Path,
    n_leads: int = 20_000,
    seed: int = 0,
    *,
    later_days: int = 0,
    truth: bool = False,
) -> dict[str, Path]:
    """Generate the funnel; write `leads.csv`, `activities.csv`, `accounts.csv` (one row per
    account: id, name, firmographics) and `feedback.csv` atomically.

    Timestamps are written as 'YYYY-MM-DD HH:MM:SS' text, missing values as empty cells.
    `feedback.csv` is sales feedback (lead_id, outcome, date, rep, note) on leads open at the
    export date, dated within `FEEDBACK_HORIZON` after it.

    With `later_days`, also `later/leads.csv` and `later/activities.csv`: the same funnel
    exported `later_days` after the export date (`generate_exports`). With `truth`, also
    `truth.csv`: each lead open at the export date with its true probabilities of a meeting and
    a win within the sample config's label windows (`leadscore.data.sample_truth`); no config
    names it, so training never reads it. The first export's files are the same either way.
    """
    out_dir = Path(out_dir)
    exports = generate_exports(n_leads=n_leads, seed=seed, later_days=later_days)
    data = exports.first
    paths = {
        "leads": out_dir / "leads.csv",
        "activities": out_dir / "activities.csv",
        "accounts": out_dir / "accounts.csv",
        "feedback": out_dir / "feedback.csv",
    }
    write_csv(data.leads, paths["leads"])
    write_csv(sample_accounts(data.leads), paths["accounts"])
    write_csv(data.activities, paths["activities"])
    write_csv(sample_feedback_rows(data, seed), paths["feedback"])
    if truth:
        labels = SAMPLE_CONFIG["labels"]
        probabilities = true_probabilities(
            data.leads,
            data.activities,
            data.truth,
            EXPORT_DATE,
            HISTORY_DAYS,
            meeting_days=labels["meeting_window_days"],
            won_days=labels["won_window_days"],
        )
        paths["truth"] = write_csv(probabilities, out_dir / "truth.csv")
    if exports.later is not None:
        paths["later_leads"] = write_csv(exports.later.leads, out_dir / "later" / "leads.csv")
        paths["later_activities"] = write_csv(
            exports.later.activities, out_dir / "later" / "activities.csv"
        )
        paths["later_accounts"] = write_csv(
            sample_accounts(exports.later.leads), out_dir / "later" / "accounts.csv"
        )
    return paths


# configs/sample.yaml as a mapping, so code needs no repository file to build the sample's
# settings; tests/data/test_sample_settings.py keeps the two equal.
SAMPLE_CONFIG: dict = {
    "data": {
        "leads": "data/sample/leads.csv",
        "activities": "data/sample/activities.csv",
        "outcomes": None,
        "feedback": "data/feedback",
        "accounts": "data/sample/accounts.csv",
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
        "exclude": [],
        "display": ["company_name", "contact_name"],
        "owner": "owner",
    },
    "activity_columns": {
        "lead_id": "lead_id",
        "occurred_at": "occurred_at",
        "type": "activity_type",
    },
    "account_columns": {"account_id": "account_id", "display": ["account_name"]},
    "accounts": {"roles": ["job_level", "job_function"]},
    "labels": {"meeting_window_days": 90, "won_window_days": 180, "export_date": None},
    "score": {"currency": "USD"},
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
    raw["data"]["accounts"] = str(Path(data_dir) / "accounts.csv")
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
