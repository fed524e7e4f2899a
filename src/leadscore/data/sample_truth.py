"""The true conversion probabilities of the sample funnel's open leads, for measuring models.

For every lead open at the export date `s` (created before it; its true meeting, win and loss,
logged or not, all at or after it) this computes, given everything a model could know at `s`,

    p_meeting_true = P(first meeting in (s, s + meeting_days])
    p_won_true     = P(closed-won in (s, s + won_days])

as an exact posterior of the generator (`leadscore.data.sample_model`), not an estimate from
sampled outcomes. What is known: the lead's attributes (so its fit, the part of its latent intent
they determine), its creation time, that it is still open at `s`, and its activity events before
`s` (times and types; the event that created the lead tells nothing and is left out). What is
not: the intent noise, the engagement noise, whether and when the meeting comes. The posterior
integrates over them:

- intent noise by Gauss-Hermite quadrature; engagement (on the log scale) by the trapezoid rule
  on a grid around where the lead's event count puts it;
- the meeting branch over the meeting delay (log-normal, clipped at `MEETING_DELAY_MAX` days):
  a lead open at age `a` met at `a + u` days, `u > 0`, by Gauss-Legendre nodes in `u` up to
  `BURST_HORIZON` days (where a pre-meeting burst may already show in the events) and the
  log-normal distribution function beyond; the win delay (20 + 130 x Beta(2, 3) days) in closed
  form;
- the no-meeting branch survives as long as the lead is not disqualified (1 h + exponential);
- the event log is a marked Poisson process: the creation stream (rate and type mix set by the
  engagement and intent) plus, on the meeting branch, the burst before the meeting.

Hidden company sizes (the employee count is missing for 8% of accounts) are integrated over their
posterior given the industry, the revenue when known and the job level (small companies have more
C-level leads). What a lead's account siblings reveal is left out: each lead stands alone. The
probability is exactly 0 for leads open for `MEETING_DELAY_MAX` days or more: every meeting of
the generator happens within that.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadscore.data.sample_model import (
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
    MEETING_DELAY_MAX,
    MEETING_DELAY_MEDIAN,
    MEETING_DELAY_SD,
    MEETING_DELAY_SLOPE,
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

TRUTH_COLUMNS: tuple[str, ...] = ("lead_id", "snapshot", "p_meeting_true", "p_won_true")
CREATION_SNAPSHOT_DAYS = 7  # leads younger than this at the export date: snapshot "creation"
BURST_HORIZON = 90.0  # days: a burst further ahead than this leaves no trace in the events
INTENT_NODES = 16  # Gauss-Hermite nodes over the intent noise
ENGAGEMENT_NODES = 24  # trapezoid nodes over log-engagement
SIZE_NODES = 8  # Gauss-Legendre nodes on each side of the small-company line (hidden sizes)
DELAY_NODES = 4  # Gauss-Legendre nodes per segment of meeting delays
DELAY_BREAKS = (0.0, 2.0, 6.0, 14.0, 30.0, 60.0, 90.0)  # days after the export, up to the horizon
CELLS_PER_CHUNK = 4_000_000  # array cells per chunk of leads (32 MB per float array)


def true_probabilities(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    outcomes: pd.DataFrame,
    export_date: pd.Timestamp,
    history_days: int,
    meeting_days: int = 90,
    won_days: int = 180,
) -> pd.DataFrame:
    """One row per lead open at `export_date` (see the module docstring): `lead_id`, `snapshot`
    ("creation" when created in the `CREATION_SNAPSHOT_DAYS` before the export, else "open"),
    `p_meeting_true`, `p_won_true`.

    `leads` and `activities` are the export `generate_funnel` made with `export_date` and
    `history_days`; `outcomes` its uncensored outcome times (`SampleData.truth`), used only to
    tell which leads are truly open (a meeting the CRM never logged closes a lead too).
    """
    s = _seconds(export_date)
    created = _seconds_of(leads["created_at"])
    still_open = created < s
    for name in ("meeting_at", "won_at", "lost_at"):
        t = _seconds_of(outcomes[name])
        still_open &= (t < 0) | (t >= s)
    rows = np.flatnonzero(still_open)
    age = (s - created[rows]) / DAY
    p_meet, p_won = np.zeros(len(rows)), np.zeros(len(rows))
    live = np.flatnonzero(age < MEETING_DELAY_MAX)  # older open leads can no longer meet
    if len(live):
        p_meet[live], p_won[live] = _posterior(
            leads, activities, rows[live], s, history_days, float(meeting_days), float(won_days)
        )
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"].iloc[rows].astype(str).to_numpy(),
            "snapshot": np.where(age < CREATION_SNAPSHOT_DAYS, "creation", "open"),
            "p_meeting_true": p_meet,
            "p_won_true": p_won,
        }
    )


def _posterior(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    rows: np.ndarray,
    s: int,
    history_days: int,
    meeting_days: float,
    won_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """P(meeting in window), P(won in window) for the open leads at `rows` of `leads`."""
    created = _seconds_of(leads["created_at"])
    attrs = _attributes(leads.iloc[rows], s - history_days * DAY, history_days)
    age = (s - created[rows]) / DAY
    events = _event_summary(activities, leads["lead_id"], rows, created, attrs["source"], s)
    pseudo = _size_nodes(attrs)
    log_meet, log_won, log_den = _posterior_integrals(pseudo, age, events, meeting_days, won_days)
    lead, log_weight = pseudo["lead"], pseudo["log_weight"]
    return (
        _combine(lead, log_weight + log_meet, log_weight + log_den, len(rows)),
        _combine(lead, log_weight + log_won, log_weight + log_den, len(rows)),
    )


def _seconds(ts: pd.Timestamp) -> int:
    return int((pd.Timestamp(ts) - pd.Timestamp(0)) // pd.Timedelta(seconds=1))


def _seconds_of(values: pd.Series) -> np.ndarray:
    """Epoch seconds of a datetime column (-1 where empty)."""
    t = pd.to_datetime(values).to_numpy("datetime64[s]")
    return np.where(np.isnat(t), -1, t.astype(np.int64))


def _codes(values: pd.Series, names: dict) -> tuple[np.ndarray, np.ndarray]:
    """Codes into a parameter table and the mask of empty cells."""
    codes = pd.Categorical(values, categories=list(names)).codes.astype(np.int64)
    return np.maximum(codes, 0), codes < 0


def _attributes(leads: pd.DataFrame, start: int, history_days: int) -> dict[str, np.ndarray]:
    """The codes and numbers the fit needs, with masks of what the export leaves empty."""
    industry, _ = _codes(leads["industry"], INDUSTRIES)
    country, country_missing = _codes(leads["country"], COUNTRIES)
    level, _ = _codes(leads["job_level"], JOB_LEVELS)
    function, function_missing = _codes(leads["job_function"], JOB_FUNCTIONS)
    source, _ = _codes(leads["lead_source"], LEAD_SOURCES)
    employees = pd.to_numeric(leads["employees"]).astype(float).to_numpy(na_value=np.nan)
    revenue = pd.to_numeric(leads["annual_revenue"]).astype(float).to_numpy(na_value=np.nan)
    created = _seconds_of(leads["created_at"])
    return {
        "industry": industry,
        "country": country,
        "country_missing": country_missing,
        "level": level,
        "function": function,
        "function_missing": function_missing,
        "source": source,
        "employees": employees,
        "revenue": revenue,
        "progress": (created - start) / (history_days * DAY),
    }


def _event_summary(
    activities: pd.DataFrame,
    lead_ids: pd.Series,
    rows: np.ndarray,
    created: np.ndarray,
    source: np.ndarray,
    s: int,
) -> dict[str, np.ndarray]:
    """Per open lead: event counts per type before `s` (without the creating event), and the
    events of the last `BURST_HORIZON` days (lead position, age at the event, days before `s`,
    type code), sorted by lead."""
    position = np.full(len(lead_ids), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    lead_codes = pd.Index(lead_ids.astype(str)).get_indexer(
        activities["lead_id"].astype(str).to_numpy()
    )
    lead = position[lead_codes]
    t = activities["occurred_at"].to_numpy("datetime64[s]").astype(np.int64)
    kind = pd.Categorical(activities["activity_type"], categories=ACTIVITY_TYPES).codes
    keep = (lead >= 0) & (t < s) & (kind >= 0)
    lead, t, kind = lead[keep], t[keep], kind[keep].astype(np.int64)
    order = np.lexsort((t, lead))
    lead, t, kind = lead[order], t[order], kind[order]
    lead_created = created[rows][lead]
    creating = _creating_events(lead, t - lead_created, kind, source[lead])
    lead, t, kind, lead_created = (a[~creating] for a in (lead, t, kind, lead_created))
    counts = np.zeros((len(rows), len(ACTIVITY_TYPES)))
    np.add.at(counts, (lead, kind), 1.0)
    before = (s - t) / DAY
    recent = before <= BURST_HORIZON
    return {
        "counts": counts,
        "recent_lead": lead[recent],
        "recent_age": ((t - lead_created) / DAY)[recent],
        "recent_before": before[recent],
        "recent_kind": kind[recent],
    }


def _creating_events(
    lead: np.ndarray, after_created: np.ndarray, kind: np.ndarray, source: np.ndarray
) -> np.ndarray:
    """Mask of each lead's first event of its source's creating type within
    `CREATING_EVENT_SECONDS` of creation (events sorted by lead, then time)."""
    candidate = (kind == creating_event_types(source)) & (after_created < CREATING_EVENT_SECONDS)
    idx = np.flatnonzero(candidate)
    _, first = np.unique(lead[idx], return_index=True)
    mask = np.zeros(len(lead), dtype=bool)
    mask[idx[first]] = True
    return mask


def _size_nodes(attrs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pseudo-leads: one per lead with a known company size, `2 x SIZE_NODES` per lead with a
    hidden one (its posterior over log-employees given industry, revenue and job level), each with
    a log-weight, the fit and the size on the `size_z` scale."""
    hidden = np.isnan(attrs["employees"])
    h = np.flatnonzero(hidden)
    lead = np.concatenate([np.flatnonzero(~hidden), np.repeat(h, 2 * SIZE_NODES)])
    employees = attrs["employees"][lead].copy()
    log_weight = np.zeros(len(lead))
    if len(h):
        nodes, log_w = _hidden_size_posterior(
            attrs["industry"][h], attrs["revenue"][h], attrs["level"][h]
        )
        employees[len(lead) - nodes.size :] = nodes.ravel()
        log_weight[len(lead) - nodes.size :] = log_w.ravel()
    fit = intent_fit(
        attrs["industry"][lead],
        employees,
        attrs["country"][lead],
        attrs["country_missing"][lead],
        attrs["level"][lead],
        attrs["function"][lead],
        attrs["function_missing"][lead],
        attrs["source"][lead],
        attrs["progress"][lead],
    )
    return {"lead": lead, "log_weight": log_weight, "fit": fit, "size": size_z(employees)}


def _hidden_size_posterior(
    industry: np.ndarray, revenue: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Employee-count nodes and their log-weights (normalised per lead) for hidden sizes."""
    _, log_shift, rev_per_emp, *_ = column(INDUSTRIES)
    mean = np.log(EMPLOYEES_MEDIAN) + log_shift[industry]
    var = np.full(len(industry), EMPLOYEES_LOG_SD**2)
    known = ~np.isnan(revenue)
    observed = np.log(np.where(known, revenue, 1.0)) - np.log(rev_per_emp[industry])
    post_var = np.where(known, 1.0 / (1.0 / var + 1.0 / REVENUE_LOG_SD**2), var)
    mean = np.where(known, post_var * (mean / var + observed / REVENUE_LOG_SD**2), mean)
    sd = np.sqrt(post_var)
    lo, hi = mean - 5.0 * sd, mean + 5.0 * sd
    line = np.clip(np.log(SMALL_COMPANY - 0.5), lo, hi)
    x, w = np.polynomial.legendre.leggauss(SIZE_NODES)
    small_share, large_share, *_ = column(JOB_LEVELS)
    parts, weights = [], []
    for a, b, share in ((lo, line, small_share), (line, hi, large_share)):
        half = (b - a) / 2.0
        nodes = (a + b)[:, None] / 2.0 + half[:, None] * x[None, :]
        density = np.exp(-0.5 * ((nodes - mean[:, None]) / sd[:, None]) ** 2) / sd[:, None]
        level_p = normalised(share)[level][:, None]
        parts.append(nodes)
        weights.append(w[None, :] * half[:, None] * density * level_p)
    log_emp, weight = np.concatenate(parts, axis=1), np.concatenate(weights, axis=1)
    weight /= weight.sum(axis=1, keepdims=True)
    employees = np.clip(np.round(np.exp(log_emp)), *EMPLOYEES_RANGE)
    with np.errstate(divide="ignore"):
        return employees, np.log(weight)


def _posterior_integrals(
    pseudo: dict[str, np.ndarray],
    age: np.ndarray,
    events: dict[str, np.ndarray],
    meeting_days: float,
    won_days: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log of the meeting, won and normalising integrals per pseudo-lead, a chunk at a time."""
    n = len(pseudo["lead"])
    breaks = _burst_breaks(meeting_days, won_days)
    per_lead = INTENT_NODES * ENGAGEMENT_NODES * (DELAY_NODES * (len(breaks) - 1) + 1)
    recent_lead = events["recent_lead"]
    recent_count = np.bincount(recent_lead, minlength=len(age))[pseudo["lead"]]
    out = np.empty((3, n))
    start = 0
    while start < n:
        cells = np.cumsum((1 + recent_count[start:]) * per_lead)
        stop = start + max(1, int(np.searchsorted(cells, CELLS_PER_CHUNK)))
        part = slice(start, stop)
        chunk = {k: v[part] for k, v in pseudo.items()} | {"recent": recent_count[part]}
        out[:, part] = _chunk_integrals(chunk, age, events, breaks, meeting_days, won_days)
        start = stop
    return out[0], out[1], out[2]


def _chunk_integrals(
    pseudo: dict[str, np.ndarray],
    age_of_lead: np.ndarray,
    events: dict[str, np.ndarray],
    breaks: np.ndarray,
    meeting_days: float,
    won_days: float,
) -> np.ndarray:
    """(3, pseudo-leads): log meeting, log won and log normalising integrals (see module doc)."""
    lead = pseudo["lead"]
    age = age_of_lead[lead]  # a, days
    counts = events["counts"][lead]  # (P, K)
    n_events = counts.sum(axis=1)

    # intent: centred = fit - centre + noise, Gauss-Hermite nodes (P, C)
    x, w = np.polynomial.hermite_e.hermegauss(INTENT_NODES)
    centred = (pseudo["fit"] - INTENT_CENTRE)[:, None] + INTENT_NOISE_SD * x[None, :]
    log_w_intent = np.log(w / math.sqrt(2.0 * math.pi))[None, :]

    # log-engagement zeta = slope x centred + engagement noise; engagement = exp(zeta + shift)
    zeta, log_h = _engagement_grid(pseudo["fit"], age, n_events, pseudo["recent"])  # (P, Z)
    engagement = np.exp(zeta + ENGAGEMENT_SHIFT)
    noise = zeta[:, None, :] - ENGAGEMENT_SLOPE * centred[:, :, None]  # (P, C, Z)
    log_prior = (
        log_w_intent[:, :, None]
        + log_h[:, None, :]
        - 0.5 * (noise / ENGAGEMENT_NOISE_SD) ** 2
        - math.log(ENGAGEMENT_NOISE_SD * math.sqrt(2.0 * math.pi))
    )

    # creation stream: counts and type mix (constants of the event times dropped)
    mix = _base_type_mix(centred)  # (P, C, K)
    log_base = (
        n_events[:, None, None] * zeta[:, None, :]
        + np.einsum("pk,pck->pc", counts, np.log(mix))[:, :, None]
        - (BASE_EVENTS_MEAN * _base_cdf(age))[:, None, None] * engagement[:, None, :]
    )

    # meeting branch, over the meeting delay D = age + u
    u, u_weight = _delay_nodes(age, breaks)  # (P, U)
    log_burst = _burst_log_likelihood(pseudo, age, u, centred, engagement, mix, events)
    mu = np.log(MEETING_DELAY_MEDIAN) + MEETING_DELAY_SLOPE * centred  # (P, C)
    density = _delay_weights(age, u, u_weight, mu)  # (P, C, U)
    peak = log_burst.max(axis=3)  # (P, C, Z)
    scaled = np.exp(log_burst - peak[..., None])
    met_window = (u <= meeting_days).astype(float)
    won_within = _won_delay_cdf(won_days - u)
    burst_den = np.einsum("pcu,pczu->pcz", density, scaled)
    burst_meet = np.einsum("pcu,pczu->pcz", density * met_window[:, None, :], scaled)
    burst_won = np.einsum("pcu,pczu->pcz", density * won_within[:, None, :], scaled)
    tail_den, tail_meet, tail_won = _tail_integrals(age, mu, meeting_days, won_days)
    shrink = np.exp(-peak)
    m_den = burst_den + tail_den[:, :, None] * shrink
    m_meet = burst_meet + tail_meet[:, :, None] * shrink
    m_won = burst_won + tail_won[:, :, None] * shrink

    p_meet = meeting_chance(centred)  # (P, C)
    stays = (1.0 - p_meet) * (1.0 - disqualify_chance(centred) * _disqualified_by(age)[:, None])
    p_win = win_chance(centred, pseudo["size"][:, None])
    common = log_prior + log_base
    with np.errstate(divide="ignore"):
        log_met = common + np.log(p_meet)[:, :, None] + peak
        log_den = np.logaddexp(log_met + np.log(m_den), common + np.log(stays)[:, :, None])
        log_meet = log_met + np.log(m_meet)
        log_won = log_met + np.log(p_win)[:, :, None] + np.log(m_won)
    return np.stack([_logsumexp(v.reshape(len(lead), -1)) for v in (log_meet, log_won, log_den)])


def _engagement_grid(
    fit: np.ndarray, age: np.ndarray, n_events: np.ndarray, recent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoid nodes over log-engagement (zeta) and their log-widths, (P, Z) each.

    The grid spans 4 sd either side of the Laplace posterior of zeta from the event count, once
    with every event from the creation stream and once with the recent ones left out (had they
    been a burst), so it covers the integrand on both branches.
    """
    prior_mean = ENGAGEMENT_SLOPE * (fit - INTENT_CENTRE)
    prior_var = (ENGAGEMENT_SLOPE * INTENT_NOISE_SD) ** 2 + ENGAGEMENT_NOISE_SD**2
    rate = BASE_EVENTS_MEAN * math.exp(ENGAGEMENT_SHIFT) * _base_cdf(age)
    lows, highs = [], []
    for count in (n_events, n_events - recent):
        mode, sd = _poisson_laplace(count, rate, prior_mean, prior_var)
        lows.append(mode - 4.0 * sd)
        highs.append(mode + 4.0 * sd)
    lo, hi = np.minimum(*lows), np.maximum(*highs)
    steps = np.linspace(0.0, 1.0, ENGAGEMENT_NODES)
    zeta = lo[:, None] + (hi - lo)[:, None] * steps[None, :]
    h = (hi - lo) / (ENGAGEMENT_NODES - 1)
    ends = np.ones(ENGAGEMENT_NODES)
    ends[[0, -1]] = 0.5
    return zeta, np.log(h[:, None] * ends[None, :])


def _poisson_laplace(
    count: np.ndarray, rate: np.ndarray, mean: np.ndarray, var: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mode and sd of count x z - rate x exp(z) - (z - mean)^2 / (2 var) (concave; Newton)."""
    z = mean.copy()
    for _ in range(40):
        grad = count - rate * np.exp(z) - (z - mean) / var
        curv = rate * np.exp(z) + 1.0 / var
        z += np.clip(grad / curv, -1.0, 1.0)
    return z, 1.0 / np.sqrt(rate * np.exp(z) + 1.0 / var)


def _base_type_mix(centred: np.ndarray) -> np.ndarray:
    """Type probabilities of creation-stream events, (..., K)."""
    high = high_intent_share(centred + INTENT_CENTRE)[..., None]
    return high * normalised(TYPE_MIX_HIGH) + (1.0 - high) * normalised(TYPE_MIX_LOW)


def _base_cdf(days: np.ndarray) -> np.ndarray:
    """Share of the creation stream's events within `days` of creation."""
    return FAST_EVENTS_SHARE * -np.expm1(-days / FAST_EVENTS_DAYS) + (
        1.0 - FAST_EVENTS_SHARE
    ) * -np.expm1(-days / SLOW_EVENTS_DAYS)


def _base_density(days: np.ndarray) -> np.ndarray:
    """Density (per day) of a creation-stream event `days` after creation."""
    return FAST_EVENTS_SHARE / FAST_EVENTS_DAYS * np.exp(-days / FAST_EVENTS_DAYS) + (
        1.0 - FAST_EVENTS_SHARE
    ) / SLOW_EVENTS_DAYS * np.exp(-days / SLOW_EVENTS_DAYS)


def _gamma_density(days: np.ndarray) -> np.ndarray:
    """Density of the burst lead time (Gamma with integer shape), per day."""
    shape, scale = int(BURST_GAMMA[0]), BURST_GAMMA[1]
    y = np.maximum(days, 0.0) / scale
    return y ** (shape - 1) * np.exp(-y) / (scale * math.factorial(shape - 1))


def _gamma_survival(days: np.ndarray) -> np.ndarray:
    """P(burst lead time > days)."""
    shape, scale = int(BURST_GAMMA[0]), BURST_GAMMA[1]
    y = np.maximum(days, 0.0) / scale
    return np.exp(-y) * sum(y**i / math.factorial(i) for i in range(shape))


def _burst_breaks(meeting_days: float, won_days: float) -> np.ndarray:
    """Segment ends (days after the export) for the delays within the burst horizon: the
    `DELAY_BREAKS` and the window edges that fall inside it (kinks of the integrands)."""
    edges = (meeting_days, won_days - WON_DELAY_MIN - WON_DELAY_SPAN, won_days - WON_DELAY_MIN)
    inside = [e for e in edges if 0.0 < e < BURST_HORIZON]
    return np.unique(np.concatenate([DELAY_BREAKS, inside]))


def _legendre_nodes(
    breaks: np.ndarray, limit: np.ndarray, per_segment: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights, (P, segments x per_segment), on the segments between
    `breaks` with each lead's segments cut at its `limit` (none beyond it)."""
    x, w = np.polynomial.legendre.leggauss(per_segment)
    ends = np.minimum(np.asarray(breaks, dtype=float)[None, :], limit[:, None])
    half = np.diff(ends, axis=1) / 2.0  # (P, S)
    mid = (ends[:, :-1] + ends[:, 1:]) / 2.0
    nodes = mid[:, :, None] + half[:, :, None] * x[None, None, :]
    weights = half[:, :, None] * w[None, None, :]
    return nodes.reshape(len(limit), -1), weights.reshape(len(limit), -1)


def _delay_nodes(age: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Meeting delays after the export (days) where a burst may show, (P, U): Gauss-Legendre
    nodes on the `breaks` segments (cut where the lead reaches `MEETING_DELAY_MAX`) plus the
    clip point, and their weights (1 for the clip point, which carries the clipped mass)."""
    limit = np.maximum(MEETING_DELAY_MAX - age, 0.0)
    u, weight = _legendre_nodes(breaks, limit, DELAY_NODES)
    clip = limit[:, None]
    return np.concatenate([u, clip], axis=1), np.concatenate([weight, np.ones_like(clip)], axis=1)


def _delay_weights(age: np.ndarray, u: np.ndarray, u_weight: np.ndarray, mu: np.ndarray):
    """Quadrature weight x prior density of the meeting at delay age + u, (P, C, U); the last
    node holds the mass clipped to `MEETING_DELAY_MAX` (none once the lead is that old)."""
    d = age[:, None] + u  # (P, U)
    z = (np.log(d)[:, None, :] - mu[:, :, None]) / MEETING_DELAY_SD
    density = np.exp(-0.5 * z**2) / (d[:, None, :] * MEETING_DELAY_SD * math.sqrt(2 * math.pi))
    inside = (d < MEETING_DELAY_MAX)[:, None, :]
    weights = np.where(inside, u_weight[:, None, :] * density, 0.0)
    clipped = _normal_sf((math.log(MEETING_DELAY_MAX) - mu) / MEETING_DELAY_SD)
    weights[:, :, -1] = np.where((age < MEETING_DELAY_MAX)[:, None], clipped, 0.0)
    return weights


def _tail_integrals(
    age: np.ndarray, mu: np.ndarray, meeting_days: float, won_days: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Meeting-delay mass beyond the burst horizon (no burst yet), (P, C) each: all of it below
    the clip, the part within the meeting window, and the part weighted by a win in time."""
    start = age + BURST_HORIZON

    def cdf(days: np.ndarray) -> np.ndarray:
        d = np.clip(days, 1e-9, MEETING_DELAY_MAX)[:, None]
        return _normal_cdf((np.log(d) - mu) / MEETING_DELAY_SD)

    den = np.maximum(cdf(np.full_like(age, MEETING_DELAY_MAX)) - cdf(start), 0.0)
    meet = np.maximum(cdf(np.maximum(age + meeting_days, start)) - cdf(start), 0.0)
    # a win needs the meeting by won_days - WON_DELAY_MIN after the export
    last = won_days - WON_DELAY_MIN
    won = np.zeros_like(den)
    if last > BURST_HORIZON:
        kink = won_days - WON_DELAY_MIN - WON_DELAY_SPAN
        breaks = np.unique([BURST_HORIZON, min(max(kink, BURST_HORIZON), last), last])
        limit = np.maximum(MEETING_DELAY_MAX - age, 0.0)
        u, weight = _legendre_nodes(breaks, limit, 4 * DELAY_NODES)  # (P, V)
        d = np.maximum(age[:, None] + u, 1e-9)
        z = (np.log(d)[:, None, :] - mu[:, :, None]) / MEETING_DELAY_SD
        density = np.exp(-0.5 * z**2) / (d[:, None, :] * MEETING_DELAY_SD * math.sqrt(2 * math.pi))
        won = np.einsum("pcv,pv->pc", density, weight * _won_delay_cdf(won_days - u))
    return den, meet, won


def _burst_log_likelihood(
    pseudo: dict[str, np.ndarray],
    age: np.ndarray,
    u: np.ndarray,
    centred: np.ndarray,
    engagement: np.ndarray,
    mix: np.ndarray,
    events: dict[str, np.ndarray],
) -> np.ndarray:
    """log of what a burst before a meeting at age + u changes in the event likelihood,
    (P, C, Z, U): the recent events' intensity ratio (burst + stream) / stream, and the chance of
    no further burst event before the export."""
    burst_mean = BURST_BASE + BURST_SLOPE * np.sqrt(engagement)  # (P, Z)
    d = age[:, None] + u  # (P, U)
    s_d = _gamma_survival(d)
    before_export = _gamma_survival(u) - s_d + s_d * age[:, None] / d  # P(burst event < export)
    out = np.broadcast_to(
        -(burst_mean[:, None, :, None] * before_export[:, None, None, :]),
        (len(age), centred.shape[1], engagement.shape[1], u.shape[1]),
    ).copy()
    # events of these pseudo-leads (the pseudo-leads of one lead share its events)
    recent = events["recent_lead"]
    starts = np.searchsorted(recent, pseudo["lead"], side="left")
    counts = np.searchsorted(recent, pseudo["lead"], side="right") - starts
    if not counts.sum():
        return out
    owner = np.repeat(np.arange(len(counts)), counts)
    ev = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    before, age_at, kind = (events[k][ev] for k in ("recent_before", "recent_age", "recent_kind"))
    # burst time density at the event given the meeting at d: lead time + uniform fallback
    burst_density = _gamma_density(u[owner] + before[:, None]) + s_d[owner] / d[owner]  # (J, U)
    ratio_time = burst_density / _base_density(age_at)[:, None]
    ratio_kind = normalised(TYPE_MIX_BURST)[kind][:, None] / mix[owner, :, kind]  # (J, C)
    ratio_rate = burst_mean[owner] / (BASE_EVENTS_MEAN * engagement[owner])  # (J, Z)
    # single precision for the biggest arrays: the summed logs stay within 1e-5 of float64
    r = (ratio_kind[:, :, None] * ratio_rate[:, None, :]).astype(np.float32)[..., None]
    r = r * ratio_time.astype(np.float32)[:, None, None, :]
    np.log1p(r, out=r)
    has = np.flatnonzero(counts)
    out[has] += np.add.reduceat(r, (np.cumsum(counts) - counts)[has], axis=0)
    return out


def _won_delay_cdf(days: np.ndarray) -> np.ndarray:
    """P(win delay after the meeting <= days): WON_DELAY_MIN + WON_DELAY_SPAN x Beta(a, b) with
    integer a, b (a binomial sum)."""
    a, b = (int(v) for v in WON_DELAY_BETA)
    x = np.clip((np.asarray(days, dtype=float) - WON_DELAY_MIN) / WON_DELAY_SPAN, 0.0, 1.0)
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1.0 - x) ** (n - j) for j in range(a, n + 1))


def _disqualified_by(age: np.ndarray) -> np.ndarray:
    """P(a disqualification delay (1 hour + exponential) <= age days)."""
    return -np.expm1(-np.maximum(age - 1.0 / 24.0, 0.0) / DISQUALIFY_DELAY_MEAN)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * _ERFC(-np.asarray(z) / math.sqrt(2.0))


def _normal_sf(z: np.ndarray) -> np.ndarray:
    return 0.5 * _ERFC(np.asarray(z) / math.sqrt(2.0))


_ERFC = np.vectorize(math.erfc, otypes=[float])


def _logsumexp(v: np.ndarray) -> np.ndarray:
    """log(sum(exp(v))) along the last axis; -inf where every term is -inf."""
    top = v.max(axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.exp(v - safe[..., None]).sum(axis=-1))


def _combine(lead: np.ndarray, log_num: np.ndarray, log_den: np.ndarray, n: int) -> np.ndarray:
    """Per lead: sum of its pseudo-leads' numerators over the sum of their denominators."""
    top = np.full(n, -np.inf)
    np.maximum.at(top, lead, log_den)
    num = np.zeros(n)
    den = np.zeros(n)
    np.add.at(num, lead, np.exp(log_num - top[lead]))
    np.add.at(den, lead, np.exp(log_den - top[lead]))
    return num / den
