"""Scoring accounts: aggregates of the scored open leads, the account model, reasons, the files.

The weekly scorer hands each scored chunk of open leads to an `AccountTally`, which computes
the chunk's per-account aggregates (sums, maxes, counts, the best lead, the roll-up terms) and
spills them to disk, into one of `ACCOUNT_BUCKETS` temporary Parquet files chosen by a hash of the
account id (as the scorer spills leads by lead id). At the end `score_accounts` merges, predicts
and explains the accounts one bucket at a time, so the aggregates of only one bucket are in
memory; it turns them into one row per account with at least one open lead: probabilities
from the account model (or, when training refused one, the roll-up of its leads' probabilities:
`basis` says which), score, grade, the number of open leads, the best lead, buying-group
coverage (role values engaged; typical ones missing) and the reasons from the account model's
exact contributions (TreeSHAP for LightGBM), in words and points like the leads'.
`write_accounts` writes `accounts.parquet` and `accounts.csv`, a slice of rows at a time.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.accounts.model import BASIS_MODEL, AccountModel
from leadscore.accounts.snapshots import (
    ACCOUNT_GROUP,
    BEST,
    LAST_ACTIVITY,
    MAX,
    N_OPEN,
    ROLLUP_MAX,
    SUM,
    account_features,
    merge_partials,
    partial_aggregates,
    role_feature,
    rollups,
)
from leadscore.config import Settings
from leadscore.data.accounts import join_account_attributes, read_accounts
from leadscore.data.features import ALL_TYPES
from leadscore.data.ids import lead_hashes
from leadscore.data.io import atomic_path
from leadscore.data.schema import ACTIVITY_GROUP_PREFIX
from leadscore.data.spill import BucketFiles, frame_schema
from leadscore.modeling.drift import probability_to_score
from leadscore.modeling.explain import explain
from leadscore.modeling.grades import GradeScheme
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.safe_text import safe_text

log = logging.getLogger(__name__)

ACCOUNTS_PARQUET = "accounts.parquet"
ACCOUNTS_CSV = "accounts.csv"
# accounts predicted and explained at a time: the account model's design (splines, one-hot,
# TreeSHAP) is wider than the leads', so fewer rows keep the scorer's memory flat
ACCOUNT_CHUNK_ROWS = 25_000
# temporary files the per-account aggregates are spilled to, by account id hash: one bucket's
# aggregates are in memory at a time (about 20,000 accounts of 630,000)
ACCOUNT_BUCKETS = 32
WRITE_ROWS = 50_000  # accounts rows written to accounts.parquet/csv at a time
ROLLUP_NOTE = (
    "account probabilities are the roll-up of their open leads' probabilities ({how}), not an "
    "account model: {why}"
)


def account_buckets(account_ids: pd.Series) -> np.ndarray:
    """The spill bucket of each account id (the same id always goes to the same bucket)."""
    return (lead_hashes(account_ids) % np.uint64(ACCOUNT_BUCKETS)).astype(np.int64)


class AccountTally:
    """Per-account aggregates of the scored open leads, spilled to disk by account id hash
    (see the module docstring). `folder`: where the temporary folder is made (None: the
    system's); `close` removes it."""

    def __init__(
        self,
        model: AccountModel,
        roles: tuple[str, ...],
        attributes: pd.DataFrame | None = None,
        folder: Path | None = None,
    ):
        self.model = model
        self.roles = roles
        # the accounts file as it is now (by account id), else as it was at training
        self.attributes = model.attributes if attributes is None else attributes
        self.folder = folder
        self.files: BucketFiles | None = None
        self.lead_ids: list[pa.Array] = []
        self.account_ids: list[pa.Array] = []

    def _spill(self, part: pd.DataFrame) -> None:
        frame = part.rename_axis("key").reset_index()
        frame["key"] = frame["key"].astype("string")
        if self.files is None:
            work = Path(tempfile.mkdtemp(dir=self.folder, prefix=".accounts-"))
            self.files = BucketFiles(work, "accounts", frame_schema(frame, keep_float32=True))
        self.files.write(frame, account_buckets(frame["key"]))

    def close(self) -> None:
        """Remove the spilled aggregates."""
        if self.files is not None:
            self.files.close()
            shutil.rmtree(self.files.folder, ignore_errors=True)
            self.files = None

    def buckets(self):
        """The merged aggregates (index: account id), one bucket at a time."""
        if self.files is None:
            return
        self.files.close()  # every chunk written: the files are complete
        for b in np.flatnonzero(self.files.counts):
            both = self.files.read([int(b)])
            both.index = pd.Index(both.pop("key").to_numpy(), dtype="string")
            yield merge_partials(both)

    def partials(self) -> pd.DataFrame:
        """Every account's merged aggregates at once (small inputs and tests)."""
        parts = list(self.buckets())
        return pd.concat(parts) if parts else pd.DataFrame()

    def add(self, leads: pd.DataFrame, out: pd.DataFrame, shown: pd.DataFrame) -> None:
        """Fold in one chunk: the leads as read (`account_id`, role columns), their score rows
        (`lead_id`, `p_<target>`) and their features as they stand (true ages)."""
        if "account_id" not in leads:
            return
        has = leads["account_id"].notna().to_numpy(bool)
        if not has.any():
            return
        keys = pd.Series(leads["account_id"].astype("string").to_numpy()[has])
        feats = shown[has].reset_index(drop=True).assign(lead_id=out["lead_id"].to_numpy()[has])
        probs = out.loc[has, [c for c in out.columns if c.startswith("p_")]]
        probs = probs.reset_index(drop=True)
        roles = leads.reindex(columns=list(self.roles))[has].reset_index(drop=True)
        spec, headline = self.model.spec, self.model.headline_target
        self._spill(partial_aggregates(keys, feats, probs, roles, spec, headline))
        self.lead_ids.append(pa.array(out["lead_id"].to_numpy()[has], pa.string()))
        self.account_ids.append(pa.array(keys.to_numpy(), pa.string()))

    def account_of(self, lead_ids: pd.Series) -> pd.Series:
        """The account id of each given lead (missing for leads without one)."""
        if not self.lead_ids:
            return pd.Series(pd.NA, index=lead_ids.index, dtype="string")
        table = pd.Series(
            pa.chunked_array(self.account_ids).to_pandas().to_numpy(),
            index=pa.chunked_array(self.lead_ids).to_pandas().to_numpy(),
        )
        found = table.reindex(lead_ids.astype("string").to_numpy()).to_numpy()
        return pd.Series(found, index=lead_ids.index, dtype="string")


@dataclass(frozen=True)
class ScoredAccounts:
    """One row per account with an open lead, and what the reports say about them."""

    rows: pd.DataFrame
    basis: str
    note: str | None  # said in the outputs when the probabilities are a roll-up
    grade_lines: tuple[str, ...] = ()
    display: tuple[str, ...] = ()  # the accounts' display columns


def _points(value: float) -> str:
    digits = 1 if abs(value) >= 0.1 else 2
    sign = "+" if value >= 0 else "\u2212"
    return f"{sign}{abs(value):.{digits}f} pts"


def _humane(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def _count(n: float) -> str:
    n = round(n)
    return f"{n} time" + ("" if n == 1 else "s")


def _texts(
    group: str, frame: pd.DataFrame, model: AccountModel, against: bool = False
) -> list[str]:
    """The plain words for one reason group, for every account (row) of `frame`; `against`: the
    group lowers these accounts' probability, so engagement reads as "only" so much and a role
    group names the typical roles it lacks."""
    spec = model.spec
    n = len(frame)
    if group.startswith(ACCOUNT_GROUP + ACTIVITY_GROUP_PREFIX):
        kind = group[len(ACCOUNT_GROUP + ACTIVITY_GROUP_PREFIX) :]
        column = spec.lead_spec.activity_feature(kind, None)
        total = frame.get(SUM + column, pd.Series(np.nan, index=frame.index)).to_numpy(float)
        top = frame.get(MAX + column, pd.Series(np.nan, index=frame.index)).to_numpy(float)
        label = _humane(kind) if kind != ALL_TYPES else "Activity"
        only = "only " if against else ""
        return [
            f"{label}: {only}{_count(t)} by its open leads (most by one person: {int(m)})"
            if np.isfinite(t) and t > 0
            else f"{label}: none by its open leads"
            for t, m in zip(total, top, strict=True)
        ]
    if group.startswith(ACCOUNT_GROUP + "roles:"):
        col = group.split(":", 2)[2]
        values = dict(spec.roles).get(col, ())
        engaged = _engaged(frame, col, values)
        lacking = _lacking(frame, col, values, model.typical_roles.get(col, ())) if against else []
        return [
            (f"{_humane(col)} engaged: {e}" if e else f"No {col} known engaged")
            + (f"; no {gap} among them" if against and gap else "")
            for e, gap in zip(engaged, lacking or [""] * len(engaged), strict=True)
        ]
    if group == ACCOUNT_GROUP + "best_lead":
        first = [c for c, _ in spec.roles]
        order = first + [c for c in spec.lead_spec.categorical if c not in first]
        cols = [BEST + c for c in order if BEST + c in frame][:3]
        values = [frame[c].astype("string").to_numpy(object, na_value=None) for c in cols]
        out = []
        for parts in zip(*values, strict=True) if values else [()] * n:
            known = [str(p) for p in parts if p is not None]
            out.append("Best lead: " + (", ".join(known) if known else "its most likely lead"))
        return out
    if group == ACCOUNT_GROUP + "leads":
        leads = frame[N_OPEN].to_numpy(float)
        last = frame.get(LAST_ACTIVITY, pd.Series(np.nan, index=frame.index)).to_numpy(float)
        out = []
        for k, d in zip(leads, last, strict=True):
            text = f"{int(k)} open lead" + ("" if int(k) == 1 else "s")
            if np.isfinite(d):
                out.append(f"{text}, last activity {int(d)} day{'' if int(d) == 1 else 's'} ago")
            else:
                out.append(f"{text}, no activity yet")
        return out
    values = frame[group] if group in frame else pd.Series(pd.NA, index=frame.index)
    numeric = pd.api.types.is_numeric_dtype(values)
    out = []
    for v in values.to_numpy(object, na_value=None):
        if v is None or (numeric and not np.isfinite(float(v))):
            out.append(f"{_humane(group)} unknown")
        else:
            out.append(f"{_humane(group)} is {f'{float(v):,.0f}' if numeric else v}")
    return out


def _role_matrix(frame: pd.DataFrame, col: str, values: tuple[str, ...]) -> np.ndarray:
    """(accounts, values) booleans: which role values are among each account's open leads."""
    if not values:
        return np.zeros((len(frame), 0), bool)
    zero = pd.Series(0.0, index=frame.index)
    cols = [frame.get(role_feature(col, v), zero).to_numpy(float) > 0 for v in values]
    return np.column_stack(cols)


def _lacking(
    frame: pd.DataFrame, col: str, values: tuple[str, ...], typical: tuple[str, ...]
) -> list[str]:
    """Per account, the typical role values (common in converting accounts) not among its open
    leads ("VP or Director"; "" for none)."""
    have = _role_matrix(frame, col, values)
    names = np.asarray(values, dtype=object)
    wanted = np.isin(names, typical)
    if have.shape[1] == 0:
        return [""] * len(frame)
    return [" or ".join(names[wanted & ~row]) for row in have]


def _engaged(frame: pd.DataFrame, col: str, values: tuple[str, ...]) -> list[str]:
    """Per account, the role values among its open leads ("VP, Manager"; "" for none)."""
    names = np.asarray(values, dtype=object)
    return [", ".join(names[row]) for row in _role_matrix(frame, col, values)]


def account_reasons(
    contrib_pp: pd.DataFrame, rows: pd.DataFrame, model: AccountModel, n: int
) -> pd.DataFrame:
    """`reason_pos_k`, `reason_neg_k` with `_code` and `_points`: the strongest groups for and
    against each account, in words (worded one group at a time, for all its accounts)."""
    out: dict[str, object] = {}
    values = contrib_pp.to_numpy(float)
    groups = np.asarray(contrib_pp.columns, dtype=object)
    every = np.arange(len(values))
    for side, sign in (("pos", 1.0), ("neg", -1.0)):
        order = np.argsort(-sign * values, axis=1, kind="stable")[:, :n]
        for k in range(min(n, values.shape[1])):
            j = order[:, k]
            v = values[every, j]
            ok = sign * v > 0.005
            texts = np.full(len(values), None, dtype=object)
            for g in np.unique(j[ok]):
                mine = ok & (j == g)
                words = _texts(groups[g], rows[mine], model, against=side == "neg")
                texts[mine] = [f"{w} ({_points(p)})" for w, p in zip(words, v[mine], strict=True)]
            out[f"reason_{side}_{k + 1}"] = pd.array(texts, dtype="string")
            out[f"reason_{side}_{k + 1}_code"] = pd.array(
                np.where(ok, groups[j], None), dtype="string"
            )
            out[f"reason_{side}_{k + 1}_points"] = np.where(ok, np.round(v, 2), np.nan)
    return pd.DataFrame(out, index=rows.index)


def coverage(partials: pd.DataFrame, model: AccountModel) -> tuple[list[str], list[str]]:
    """Per account: the role values engaged ("job_level: VP, Manager; ...") and the typical
    ones (present in many converting accounts) it lacks."""
    engaged: list[list[str]] = [[] for _ in range(len(partials))]
    missing: list[list[str]] = [[] for _ in range(len(partials))]
    for col, values in model.spec.roles:
        have = _role_matrix(partials, col, values)
        names = np.asarray(values, dtype=object)
        typical = np.isin(names, model.typical_roles.get(col, ()))
        for i, row in enumerate(have):
            if row.any():
                engaged[i].append(f"{col}: {', '.join(names[row])}")
            gaps = typical & ~row
            if gaps.any():
                missing[i].append(f"{col}: {', '.join(names[gaps])}")
    return ["; ".join(e) for e in engaged], ["; ".join(m) for m in missing]


def _score_rows(
    partials: pd.DataFrame,
    attributes: pd.DataFrame | None,
    model: AccountModel,
    grades: GradeScheme | None,
    quantiles: tuple[float, ...],
    top_reasons: int,
) -> pd.DataFrame:
    """The accounts rows of one slice of the combined aggregates (see `score_accounts`)."""
    attrs = None if attributes is None else attributes.reindex(partials.index)
    rows = pd.DataFrame({"account_id": pd.array(partials.index.astype(str), dtype="string")})
    for col in model.display:
        known = attrs is not None and col in attrs
        rows[col] = pd.array(attrs[col].to_numpy() if known else [None] * len(rows), "string")
    headline = model.headline_target
    features = None
    if model.basis == BASIS_MODEL:
        features = account_features(partials, attrs, model.spec)
        for target, m in sorted(model.targets.items()):
            rows[f"p_{target}"] = m.predict_proba(features[model.spec.columns])
    else:
        targets = sorted(c.removeprefix(ROLLUP_MAX) for c in partials if c.startswith(ROLLUP_MAX))
        for target in targets:
            noisy_or, top = rollups(partials, target)
            rows[f"p_{target}"] = noisy_or if model.rollup == "noisy_or" else top
    p_head = rows[f"p_{headline}"].to_numpy(float)
    if quantiles:
        rows["score"] = probability_to_score(p_head, quantiles)
    else:
        rows["score"] = np.clip(np.round(p_head * 100), 0, 100).astype(np.int64)
    rows["grade"] = grades.grade(p_head) if grades is not None else "D"
    rows["basis"] = model.basis
    rows["n_open_leads"] = partials[N_OPEN].to_numpy(np.int64)
    rows["top_lead_id"] = pd.array(partials[BEST + "lead_id"].to_numpy(), dtype="string")
    engaged, missing = coverage(partials, model)
    rows["roles_engaged"] = pd.array(engaged, dtype="string")
    rows["roles_missing"] = pd.array(missing, dtype="string")
    if features is not None:
        expl = explain(model.targets[headline], features, model.spec)
        extra = [c for c in partials.columns if c not in features.columns]
        shown = pd.concat(
            [features.reset_index(drop=True), partials[extra].reset_index(drop=True)], axis=1
        )
        contrib = expl.contrib_pp.reset_index(drop=True)
        reasons = account_reasons(contrib, shown, model, top_reasons)
        rows = pd.concat([rows, reasons.reset_index(drop=True)], axis=1)
    return rows


def score_accounts(
    tally: AccountTally,
    lead_grades: GradeScheme | None,
    lead_quantiles: tuple[float, ...],
    top_reasons: int,
    chunk_rows: int = ACCOUNT_CHUNK_ROWS,
) -> ScoredAccounts | None:
    """One row per account with an open lead, highest score first; None when no open lead has
    an account. The spilled aggregates are merged one bucket at a time and their accounts
    predicted and explained `chunk_rows` at a time (bounded memory); the spill is removed."""
    model = tally.model
    note = None
    if model.basis == BASIS_MODEL:
        grades, quantiles = model.grades, model.score_quantiles
    else:
        grades, quantiles = lead_grades, lead_quantiles
        how = "1 - prod(1 - p)" if model.rollup == "noisy_or" else "the highest p"
        note = ROLLUP_NOTE.format(how=how, why=model.refusal)
    parts = []
    try:
        for partials in tally.buckets():
            for start in range(0, len(partials), chunk_rows):
                part = partials.iloc[start : start + chunk_rows]
                parts.append(
                    _score_rows(part, tally.attributes, model, grades, quantiles, top_reasons)
                )
    finally:
        tally.close()
    if not parts:
        return None
    rows = _highest_first(parts)
    lines = () if grades is None else tuple(grades.sentence(g) for g in "ABCD")
    return ScoredAccounts(rows, model.basis, note, lines, model.display)


def _highest_first(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts' rows in one frame, highest score first (ties: by account id), assembled a
    column at a time, each taken out of the parts as it is placed (no second copy of them all)."""
    keys = pd.DataFrame(
        {
            "score": np.concatenate([p["score"].to_numpy() for p in parts]),
            "account_id": np.concatenate([p["account_id"].to_numpy(object) for p in parts]),
        }
    )
    order = keys.sort_values(["score", "account_id"], ascending=[False, True], kind="stable")
    take = order.index.to_numpy()
    del keys, order
    columns: dict[str, pd.Series] = {}
    for col in list(parts[0].columns):
        whole = pd.concat([p.pop(col) for p in parts], ignore_index=True)
        columns[col] = whole.take(take).reset_index(drop=True)
    parts.clear()
    return pd.DataFrame(columns, copy=False)


def write_accounts(scored: ScoredAccounts, out_dir: Path, stamp: dict) -> dict[str, Path]:
    """accounts.parquet and accounts.csv (formula guard on text, ASCII signs), atomically;
    `stamp` adds columns such as the model and the as-of date."""
    paths = {"accounts_parquet": out_dir / ACCOUNTS_PARQUET, "accounts_csv": out_dir / ACCOUNTS_CSV}
    with (
        atomic_path(paths["accounts_parquet"]) as pq_tmp,
        atomic_path(paths["accounts_csv"]) as csv_tmp,
    ):
        writer = None
        try:
            for start in range(0, max(len(scored.rows), 1), WRITE_ROWS):
                machine = _machine_rows(scored.rows.iloc[start : start + WRITE_ROWS], stamp)
                table = pa.Table.from_pandas(machine, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(pq_tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                _safe_rows(machine).to_csv(
                    csv_tmp, index=False, header=start == 0, mode="w" if start == 0 else "a"
                )
        finally:
            if writer is not None:
                writer.close()
    return paths


def _machine_rows(rows: pd.DataFrame, stamp: dict) -> pd.DataFrame:
    """The rows as accounts.parquet holds them: stamped, ASCII minus signs in the reasons."""
    machine = rows.assign(**stamp)
    for col in machine.columns:
        if pd.api.types.is_string_dtype(machine[col]) and col.startswith("reason_"):
            machine[col] = machine[col].str.replace("\u2212", "-", regex=False)
    return machine


def _safe_rows(machine: pd.DataFrame) -> pd.DataFrame:
    """The rows as accounts.csv holds them: the formula guard on text."""
    safe = machine.copy()
    for col in safe.columns:
        if pd.api.types.is_string_dtype(safe[col]) and col not in ("grade", "basis"):
            safe[col] = safe_text(safe[col])
    return safe


def account_hooks(settings: Settings, bundle: LeadScoreModel, folder: Path | None = None):
    """(the account tally, the chunk preparation joining account attributes onto leads), each
    None when the model has no account part / joins nothing; the tally spills into a
    temporary folder made in `folder` (the scoring output folder)."""
    if bundle.accounts is None:
        return None, None
    table, _ = read_accounts(settings)  # the contract checked it at training
    joined = tuple(
        c for c in getattr(table, "attributes", ()) if f"account__{c}" in bundle.spec.columns
    )
    prepare = None
    if table is not None and joined:
        table = replace(table, joined=joined)
        prepare = lambda part: join_account_attributes(part, table)  # noqa: E731
    current = None if table is None else table.frame.set_index("account_id")
    tally = AccountTally(bundle.accounts, tuple(settings.accounts.roles), current, folder)
    return tally, prepare


def finish_accounts(
    tally: AccountTally, bundle: LeadScoreModel, settings: Settings
) -> ScoredAccounts | None:
    """The accounts scored from the tally; logs how many and on which basis."""
    accounts = score_accounts(
        tally,
        bundle.grades,
        bundle.reference.score_quantiles,
        settings.score.top_reasons,
        chunk_rows=min(settings.score.chunk_size, ACCOUNT_CHUNK_ROWS),
    )
    if accounts is None:
        log.info("no open lead has an account: no accounts scored")
        return None
    counts = accounts.rows["grade"].value_counts().to_dict()
    log.info(
        f"{len(accounts.rows):,} accounts with open leads scored ({accounts.basis}): "
        + ", ".join(f"{g} {counts.get(g, 0):,}" for g in "ABCD")
    )
    if accounts.note:
        log.warning(accounts.note)
    return accounts


def with_account_grades(
    top: pd.DataFrame, tally: AccountTally, accounts: ScoredAccounts
) -> pd.DataFrame:
    """The report rows with their account's id and grade (`account_id`, `account_grade`)."""
    account = tally.account_of(top["lead_id"])
    grade = accounts.rows.set_index("account_id")["grade"]
    return top.assign(
        account_id=account.to_numpy(),
        account_grade=pd.array(grade.reindex(account.to_numpy()).to_numpy(), dtype="string"),
    )
