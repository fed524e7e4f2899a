"""The sample funnel's generative model: its parameters and the formulas that both the generator
(`leadscore.data.sample`) and the exact probabilities of its open leads
(`leadscore.data.sample_truth`) use, so the two cannot drift apart.

Times are in days here unless a name says seconds; `centred` is a lead's latent intent minus
`INTENT_CENTRE`.
"""

from __future__ import annotations

import numpy as np

DAY = 86_400

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

# Company size: log-employees ~ N(log(EMPLOYEES_MEDIAN) + industry shift, EMPLOYEES_LOG_SD),
# revenue = employees x revenue per employee x exp(N(0, REVENUE_LOG_SD)); `SMALL_COMPANY`
# employees or fewer get the small-company job-level mix.
EMPLOYEES_MEDIAN = 120.0
EMPLOYEES_LOG_SD = 1.5
EMPLOYEES_RANGE = (1, 300_000)
REVENUE_LOG_SD = 0.5
SMALL_COMPANY = 50  # fewer employees than this

# Activity-type mixes: low intent, high intent, and the mix of a pre-meeting burst.
TYPE_MIX_LOW = (0.42, 0.14, 0.30, 0.02, 0.07, 0.03, 0.005, 0.015)
TYPE_MIX_HIGH = (0.20, 0.13, 0.28, 0.14, 0.07, 0.05, 0.06, 0.07)
TYPE_MIX_BURST = (0.10, 0.10, 0.26, 0.24, 0.06, 0.04, 0.11, 0.09)

# Latent intent = fit + N(0, INTENT_NOISE_SD); outcomes use `centred` = intent - INTENT_CENTRE.
INTENT_NOISE_SD = 0.85
# The share of that noise's variance shared by the leads of one account (a buying group's common
# propensity): each lead's noise is sqrt(1 - share) x its own draw + sqrt(share) x its account's,
# so a lead's marginal intent (and `sample_truth`, the posterior given the lead's own data) is
# unchanged, while several engaged people of one account reveal a higher account propensity.
ACCOUNT_INTENT_SHARE = 0.5
INTENT_CENTRE = 0.3

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

# Outcome delays (days): meeting after creation log-normal, exp(log(median) + slope x centred +
# N(0, sd)), clipped to [1 hour, max]; won after the meeting min + span x Beta(2, 3);
# disqualified (no meeting) 1 hour + Exponential(mean) after creation.
MEETING_DELAY_MEDIAN = 18.0
MEETING_DELAY_SLOPE = -0.25
MEETING_DELAY_SD = 0.9
MEETING_DELAY_MAX = 400
WON_DELAY_MIN = 20.0
WON_DELAY_SPAN = 130.0
WON_DELAY_BETA = (2.0, 3.0)
DISQUALIFY_DELAY_MEAN = 20.0

# Activity: engagement = exp(ENGAGEMENT_SLOPE x centred + N(0, ENGAGEMENT_NOISE_SD) +
# ENGAGEMENT_SHIFT); a creation stream of Poisson(BASE_EVENTS_MEAN x engagement) events at
# Exponential delays (a fast and a slow component); a pre-meeting burst of
# Poisson(BURST_BASE + BURST_SLOPE x sqrt(engagement)) events at Gamma(BURST_GAMMA) days before
# the meeting (uniform between creation and meeting when that would precede creation).
ENGAGEMENT_SLOPE = 0.5
ENGAGEMENT_NOISE_SD = 0.6
ENGAGEMENT_SHIFT = -0.35
FAST_EVENTS_SHARE = 0.55
FAST_EVENTS_DAYS = 12.0
SLOW_EVENTS_DAYS = 120.0
BURST_BASE = 4.0
BURST_SLOPE = 5.0
BURST_GAMMA = (2.0, 4.0)  # shape, scale in days
CREATING_EVENT_SECONDS = 900  # the event that created a lead follows within this many seconds


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def normalised(p: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Probabilities scaled to sum to one."""
    p = np.asarray(p, dtype=float)
    return p / p.sum()


def column(values: dict) -> tuple[np.ndarray, ...]:
    """Transpose a table of parameter tuples into one numpy array per field."""
    return tuple(np.array(col) for col in zip(*values.values(), strict=True))


def size_z(employees: np.ndarray) -> np.ndarray:
    """Company size on a standardised log10 scale (0 at about 125 employees)."""
    return (np.log10(employees) - 2.1) / 0.65


def intent_fit(
    industry: np.ndarray,
    employees: np.ndarray,
    country: np.ndarray,
    country_missing: np.ndarray,
    level: np.ndarray,
    function: np.ndarray,
    function_missing: np.ndarray,
    source: np.ndarray,
    progress: np.ndarray,
) -> np.ndarray:
    """The part of a lead's latent intent its attributes determine (codes into the tables above;
    `progress` is the creation time as a share of the history, for the slow downward drift).

    Interactions: company size helps only senior levels (and hurts juniors); a webinar source is
    worth much more in some industries than others.
    """
    *_, ind_effect, webinar_effect, _ = column(INDUSTRIES)
    *_, lvl_effect, lvl_size_slope = column(JOB_LEVELS)
    fn_effect = column(JOB_FUNCTIONS)[1]
    src_effect = column(LEAD_SOURCES)[2].astype(float)
    webinar = source == list(LEAD_SOURCES).index("webinar")
    return (
        ind_effect[industry]
        + lvl_effect[level]
        + lvl_size_slope[level] * np.clip(size_z(employees), -2.5, 2.5)
        + np.where(function_missing, -0.15, fn_effect[function])
        + src_effect[source]
        + np.where(webinar, webinar_effect[industry], 0.0)
        + np.where(country_missing, -0.1, column(COUNTRIES)[1][country])
        + CONVERSION_DRIFT * (progress - 0.5)
    )


def meeting_chance(centred: np.ndarray) -> np.ndarray:
    """Probability that a lead ever gets a meeting."""
    return sigmoid(MEETING_INTERCEPT + MEETING_SLOPE * centred)


def win_chance(centred: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Probability that a lead with a meeting is won; deals close best in the mid-market sweet
    spot (a few hundred to a few thousand employees): a bell in company size (`size_z`)."""
    sweet_spot = WIN_SWEET_SPOT * (np.exp(-((size - 0.9) ** 2)) - 0.5)
    return sigmoid(WIN_INTERCEPT + WIN_SLOPE * centred + sweet_spot)


def disqualify_chance(centred: np.ndarray) -> np.ndarray:
    """Probability that a lead without a meeting is disqualified."""
    return 0.30 + 0.35 * sigmoid(-1.5 * centred)


def high_intent_share(intent: np.ndarray) -> np.ndarray:
    """Share of a lead's creation-stream events drawn from the high-intent type mix."""
    return np.clip(0.15 + 0.35 * sigmoid(1.5 * (intent - 0.8)), 0.0, 1.0)


def creating_event_types(source: np.ndarray) -> np.ndarray:
    """Type code of the event that created each lead (a form, a webinar, ...), -1 for none."""
    return np.array(
        [-1 if t is None else ACTIVITY_TYPES.index(t) for *_, t in LEAD_SOURCES.values()]
    )[source]
