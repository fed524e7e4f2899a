"""Account snapshots: an account as it stood each week while it had an open lead.

An account's weekly grid starts at its first lead's creation; a snapshot `t` on it is kept while
at least one of its leads is open at `t` (created at or before `t`, no meeting, win or loss at or
before it), up to the export date. Each account keeps at most `snapshots.max_per_lead` of its
snapshots, drawn at random (seeded) and weighted by how many they stand for, as for leads.

Features at `t` are the account's attributes plus aggregates over its leads open at `t`, each
as the lead model sees it then (`build_features`: only events strictly before `t`): the number of
open leads, their oldest and newest age, the open leads per role value (`accounts.roles`),
activity counts per type and window summed and maxed over the people, the days since the
account's last activity, and the features of its best lead (the highest lead-model probability).
The scorer sees exactly the open leads, so the same aggregates are computed there chunk by chunk
(`partial_aggregates`, combined with `combine_partials`).

Label at `t`: any lead of the account open at `t` or created after it reaches the outcome in
`(t, t + window]` (a won deal counts as a meeting); a window not fully observed by the export
date is censored (NaN), as for leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.accounts import ACCOUNT_PREFIX, AccountTable
from leadscore.data.features import (
    AGE_FEATURE,
    RECENCY_FEATURE,
    SECONDS_PER_DAY,
    FeatureSpec,
    slug,
)
from leadscore.data.schema import ACTIVITY_GROUP_PREFIX, LABEL_PREFIX, MISSING
from leadscore.data.snapshots import _sample_per_lead, closed_at, target_event

SUM, MAX, MIN, COUNT, ROLE, BEST = "sum__", "max__", "min__", "n__", "role__", "best__"
N_OPEN = "n__open_leads"
OLDEST, NEWEST = "max__lead_age_days", "min__lead_age_days"
LAST_ACTIVITY = "min__days_since_last_activity"
BEST_P = "best_p"  # the best lead's probability (selection only, not a feature)
ROLLUP_LOGSURV, ROLLUP_MAX = "rollup_logsurv__", "rollup_max__"  # per target, for the roll-up
ACCOUNT_GROUP = "account:"


@dataclass(frozen=True)
class AccountFeatureSpec(FeatureSpec):
    """The account model's features in the shape the lead modeling code expects (`columns`,
    `categorical`, monotone constraints, reason groups).

    `categorical`/`numeric` hold every account feature; `activity_columns` are the lead activity
    counts aggregated (summed and maxed); `roles` the role values counted; `best_columns` the
    lead features copied from the best lead.
    """

    activity_counts: tuple[str, ...] = ()
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    attributes: tuple[str, ...] = ()
    best_columns: tuple[str, ...] = ()
    lead_spec: FeatureSpec | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def monotone_constraints(self) -> list[int]:
        """+1 on the summed and maxed activity counts (more engagement never lowers P)."""
        counts = {SUM + c for c in self.activity_counts} | {MAX + c for c in self.activity_counts}
        up = self.monotone_activity
        return [int(up and c in counts) for c in self.columns]

    def group_of(self, column: str) -> str:
        """Reason groups: an attribute; `account:activity:<type>`; `account:roles:<column>`;
        `account:best_lead`; `account:leads` (open leads, their ages, last activity)."""
        if column.startswith(BEST):
            return f"{ACCOUNT_GROUP}best_lead"
        if column.startswith(ROLE):
            return f"{ACCOUNT_GROUP}roles:{column[len(ROLE) :].split('__', 1)[0]}"
        for prefix in (SUM, MAX):
            if column.startswith(prefix) and self.lead_spec is not None:
                inner = self.lead_spec.group_of(column[len(prefix) :])
                if inner.startswith(ACTIVITY_GROUP_PREFIX):
                    return ACCOUNT_GROUP + inner
        if column in self.attributes:
            return column
        return f"{ACCOUNT_GROUP}leads"


def role_feature(column: str, value: str) -> str:
    """The feature counting an account's open leads with this role value."""
    return f"{ROLE}{column}__{slug(value)}"


def role_values(leads: pd.DataFrame, roles: list[str], max_values: int) -> tuple:
    """The most frequent values of each role column among the leads (ties by name)."""
    out = []
    for col in roles:
        if col not in leads:
            continue
        counts = leads[col].astype("string").fillna(MISSING).value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        out.append((col, tuple(str(k) for k, _ in ranked[:max_values] if k != MISSING)))
    return tuple(out)


def account_spec(
    lead_spec: FeatureSpec, table: AccountTable | None, leads: pd.DataFrame, settings: Settings
) -> AccountFeatureSpec:
    """The account features a model trained on these leads uses."""
    counts = tuple(c for c in lead_spec.activity_columns if c != RECENCY_FEATURE)
    roles = role_values(leads, settings.accounts.roles, settings.accounts.max_role_values)
    best = tuple(c for c in lead_spec.columns if not c.startswith(ACCOUNT_PREFIX))
    best_cat = tuple(BEST + c for c in best if c in lead_spec.categorical)
    best_num = tuple(BEST + c for c in best if c not in lead_spec.categorical)
    attr_cat = table.categorical if table is not None else ()
    attr_num = table.numeric if table is not None else ()
    aggregates = [N_OPEN]
    if lead_spec.has_time:
        aggregates += [OLDEST, NEWEST]
    if lead_spec.has_activities:
        aggregates.append(LAST_ACTIVITY)
    aggregates += [role_feature(col, v) for col, values in roles for v in values]
    aggregates += [p + c for c in counts for p in (SUM, MAX)]
    return AccountFeatureSpec(
        categorical=(*attr_cat, *best_cat),
        numeric=(*attr_num, *aggregates, *best_num),
        activity_types=(),
        windows_days=(),
        has_time=False,
        has_activities=False,
        monotone_activity=lead_spec.monotone_activity,
        activity_counts=counts,
        roles=roles,
        attributes=(*attr_cat, *attr_num),
        best_columns=best,
        lead_spec=lead_spec,
    )


# --- snapshots and labels --------------------------------------------------------------------


def _seconds(values: pd.Series) -> np.ndarray:
    return values.to_numpy("datetime64[ns]").astype("datetime64[s]").astype(np.int64)


def account_snapshot_times(
    leads: pd.DataFrame, settings: Settings, export: pd.Timestamp
) -> pd.DataFrame:
    """`account_id`, `snapshot_at`, `weight`, `created_at` (the account's first lead): the
    weekly snapshots while the account has an open lead, at most `max_per_lead` per account."""
    step = settings.snapshots.interval_days * SECONDS_PER_DAY
    mine = leads[leads["account_id"].notna() & leads["created_at"].notna()]
    acc_codes, acc_index = pd.factorize(mine["account_id"], sort=True)
    created = _seconds(mine["created_at"])
    closed = closed_at(mine).to_numpy("datetime64[s]")
    export_s = int(np.datetime64(export, "s").astype(np.int64))
    last_open = np.where(np.isnat(closed), export_s, closed.astype(np.int64) - 1)
    last_open = np.minimum(last_open, export_s)
    first = np.full(len(acc_index), np.iinfo(np.int64).max)
    np.minimum.at(first, acc_codes, created)
    a0 = first[acc_codes]
    lo = -np.floor_divide(-(created - a0), step)  # ceil
    hi = np.floor_divide(last_open - a0, step)
    ok = hi >= lo
    acc, lo, hi = acc_codes[ok], lo[ok], hi[ok]
    order = np.lexsort((lo, acc))
    acc, lo, hi = acc[order], lo[order], hi[order]
    # merge each account's overlapping week ranges
    frame = pd.DataFrame({"acc": acc, "lo": lo, "hi": hi})
    prev_max = frame.groupby("acc")["hi"].cummax().groupby(frame["acc"]).shift()
    new = prev_max.isna().to_numpy() | (frame["lo"].to_numpy() > prev_max.to_numpy() + 1)
    merged = frame.groupby(np.cumsum(new)).agg(
        acc=("acc", "first"), lo=("lo", "min"), hi=("hi", "max")
    )
    length = (merged["hi"] - merged["lo"] + 1).to_numpy(np.int64)
    per_account = np.bincount(merged["acc"].to_numpy(), weights=length, minlength=len(acc_index))
    per_account = per_account.astype(np.int64)
    rng = np.random.default_rng(settings.snapshots.seed)
    acc_row, j, weight = _sample_per_lead(per_account, settings.snapshots.max_per_lead, rng)
    # the j-th week of an account, across its merged ranges
    interval_end = np.cumsum(length)
    account_start = np.concatenate([[0], np.cumsum(per_account)[:-1]])
    position = account_start[acc_row] + j
    interval = np.searchsorted(interval_end, position, side="right")
    k = merged["lo"].to_numpy()[interval] + (position - (interval_end[interval] - length[interval]))
    t = first[acc_row] + k * step
    return pd.DataFrame(
        {
            "account_id": pd.Series(acc_index[acc_row], dtype="string"),
            "snapshot_at": pd.Series(t.astype("datetime64[s]")).astype("datetime64[ns]"),
            "created_at": pd.Series(first[acc_row].astype("datetime64[s]")).astype(
                "datetime64[ns]"
            ),
            "weight": weight.astype("float64"),
        }
    )


def _pairs(snaps: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """Every (account snapshot, lead of that account) pair, `snap_row` numbering the snapshot."""
    keys = snaps[["account_id", "snapshot_at"]].assign(snap_row=np.arange(len(snaps)))
    mine = leads[leads["account_id"].notna()]
    mine = mine.assign(account_id=mine["account_id"].astype("string"))
    return keys.merge(mine, on="account_id", how="inner", sort=False)


def open_lead_rows(snaps: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """The leads open at each account snapshot, as lead snapshots (`snapshot_at` = the account
    snapshot's time, `snap_row` its row)."""
    pairs = _pairs(snaps, leads)
    closed = closed_at(pairs)
    t = pairs["snapshot_at"]
    is_open = (pairs["created_at"] <= t) & (closed.isna() | (closed > t))
    return pairs[is_open.to_numpy(bool)].reset_index(drop=True)


def account_labels(
    snaps: pd.DataFrame, leads: pd.DataFrame, settings: Settings, export: pd.Timestamp
) -> pd.DataFrame:
    """`label_<target>` per account snapshot: 1.0 when a lead open at `t` or created after it
    reaches the outcome in (t, t + window], else 0.0; NaN when the window is not observed."""
    pairs = _pairs(snaps, leads)
    t = pairs["snapshot_at"]
    closed = closed_at(pairs)
    counts = (pairs["created_at"] > t) | (closed.isna() | (closed > t))
    out = {}
    for target in settings.targets:
        if f"{target}_at" not in leads:
            continue
        window = pd.Timedelta(days=settings.labels.window_days(target))
        event = target_event(pairs, target)
        hit = (counts & (event > t) & (event <= t + window)).to_numpy(bool)
        positive = np.zeros(len(snaps), bool)
        positive[pairs["snap_row"].to_numpy()[hit]] = True
        end = snaps["snapshot_at"] + window
        known = (end <= export).to_numpy(bool)
        if not settings.labels.require_full_window:
            known |= positive
        out[LABEL_PREFIX + target] = np.where(known, positive.astype(float), np.nan)
    return pd.DataFrame(out, index=snaps.index)


# --- aggregates over the open leads ----------------------------------------------------------


def partial_aggregates(
    keys: pd.Series,
    features: pd.DataFrame,
    probabilities: pd.DataFrame,
    roles: pd.DataFrame,
    spec: AccountFeatureSpec,
    headline: str,
) -> pd.DataFrame:
    """Per key (an account snapshot, or an account at scoring), aggregates of its open leads
    that `combine_partials` can merge: sums, maxes, mins, counts, the best lead, the roll-ups.

    `features` are the leads' model features (true ages: the held age is the model's input
    only), `probabilities` `p_<target>` per lead, `roles` the role columns; all aligned with
    `keys`. `best__lead_id` is kept when `features` has a `lead_id` column.
    """
    key = pd.Series(keys.to_numpy(), name="key")
    # float32 (exact for counts; the scorer keeps these per account), roll-ups in float64
    f32 = np.float32
    cols: dict[str, np.ndarray] = {N_OPEN: np.ones(len(key), f32)}
    if spec.lead_spec is not None and spec.lead_spec.has_time:
        age = features[AGE_FEATURE].to_numpy(f32)
        cols[OLDEST], cols[NEWEST] = age, age
    if spec.lead_spec is not None and spec.lead_spec.has_activities:
        cols[LAST_ACTIVITY] = features[RECENCY_FEATURE].to_numpy(f32)
    for col, values in spec.roles:
        have = roles[col].astype("string").to_numpy(object, na_value=None)
        for v in values:
            cols[role_feature(col, v)] = (have == v).astype(f32)
    for c in spec.activity_counts:
        cols[SUM + c] = cols[MAX + c] = features[c].to_numpy(f32)
    for name in probabilities.columns:
        p = np.clip(probabilities[name].to_numpy(float), 0.0, 1.0 - 1e-12)
        target = name.removeprefix("p_")
        cols[ROLLUP_LOGSURV + target] = np.log1p(-p)
        cols[ROLLUP_MAX + target] = p
    frame = pd.DataFrame(cols)
    frame.insert(0, "key", key)
    grouped = frame.groupby("key", sort=False)
    out = grouped.agg({c: _how(c) for c in cols})
    # the best lead: the highest headline probability (ties: the first); dtypes kept (text
    # stays in Arrow buffers, not one Python object per cell)
    best_p = probabilities[f"p_{headline}"].to_numpy(float)
    first = _first_best(key.to_numpy(), best_p)
    names = [c for c in spec.best_columns] + (["lead_id"] if "lead_id" in features else [])
    best = features.iloc[first][names].rename(columns=lambda c: BEST + c)
    best[BEST_P] = best_p[first]
    best.index = pd.Index(key.to_numpy()[first])
    return out.join(best)


def _first_best(keys: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per key (in order of first appearance), the position of its highest `p` (ties: first)."""
    codes = pd.factorize(keys)[0]
    order = np.lexsort((-p, codes))
    return order[np.r_[True, codes[order][1:] != codes[order][:-1]]]


def _how(column: str) -> str:
    if column.startswith((MAX, ROLLUP_MAX)):
        return "max"
    if column.startswith(MIN):
        return "min"
    return "sum"  # sums, counts, role counts, log survival


def combine_partials(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Merge partial aggregates of the same keys (chunks of an account's leads)."""
    if len(parts) == 1:
        return parts[0]
    return merge_partials(pd.concat(parts))


def merge_partials(both: pd.DataFrame) -> pd.DataFrame:
    """Merge partial aggregates whose index may repeat a key (in the order they came)."""
    both.index.name = "key"
    plain = [c for c in both.columns if not c.startswith(BEST) and c != BEST_P]
    merged = both[plain].groupby(level=0, sort=False).agg({c: _how(c) for c in plain})
    best_cols = [c for c in both.columns if c not in plain]
    first = _first_best(both.index.to_numpy(), both[BEST_P].to_numpy(float))
    best = both.iloc[first][best_cols]
    return merged.join(best)


def account_features(
    partials: pd.DataFrame, attributes: pd.DataFrame | None, spec: AccountFeatureSpec
) -> pd.DataFrame:
    """The model's feature frame from combined partials (index: key) and the accounts'
    attributes aligned with them (None: no accounts file)."""
    n = len(partials)
    cols: dict[str, object] = {}
    for col in spec.columns:
        if col in spec.attributes:
            known = attributes is not None and col in attributes
            values = attributes[col].to_numpy() if known else np.full(n, None)
        elif col in partials:
            values = partials[col].to_numpy()
        else:
            values = np.full(n, 0.0 if col.startswith(ROLE) else np.nan)
        if col in spec.categorical:
            cols[col] = pd.array(values, dtype="string")
        else:
            cols[col] = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float32")
    return pd.DataFrame(cols, index=partials.index)[spec.columns]


def rollups(partials: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(noisy-or 1 - prod(1 - p), max p) of the leads' `target` probabilities, per key."""
    noisy_or = -np.expm1(partials[ROLLUP_LOGSURV + target].to_numpy(float))
    return noisy_or, partials[ROLLUP_MAX + target].to_numpy(float)
