"""The data contract: read the user's tables through the config and check them.

Every problem names the file, the column, the row (counted as a spreadsheet does: the header is
row 1, the first lead row 2) and the bad value. `check_data` collects all problems at once;
`load_lead_data` raises `ContractError` listing them, unless the config says to drop bad rows.
Role columns come out under canonical names (`lead_id`, `created_at`, `meeting_at`, ...); attribute
columns keep the user's names.

With `labels.export_date` set, the labelled data is read as it stood on that date (`cut_at`):
leads created later are left out with their events, events dated later are left out, outcome
times dated later are blanked (a deal amount with its later win), and attribute types are
inferred from the leads created by then. Training on full files with `export_date: D` then sees
exactly what training on files exported at D sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.accounts import (
    AccountTable,
    join_account_attributes,
    joinable,
    joined_features,
    read_accounts,
    unknown_account_problems,
)
from leadscore.data.io import file_digest, read_table
from leadscore.data.parse import (
    parse_flags,
    parse_numbers,
    parse_timestamps,
    problem_value,
    strip_text,
)
from leadscore.errors import ContractError, DataFileError, Problem

log = logging.getLogger(__name__)

TIME_ROLES = ("created_at", "meeting_at", "won_at", "lost_at")
OUTCOME_ROLES = ("meeting_at", "won_at", "lost_at", "amount", "meeting_flag", "won_flag")
ROLES = ("lead_id", "account_id", *TIME_ROLES, "amount", "meeting_flag", "won_flag")
ID_LIKE_UNIQUE_SHARE = 0.9


@dataclass(frozen=True)
class LeadData:
    """Leads (and their activities) in canonical form, ready for snapshots and features."""

    leads: pd.DataFrame
    activities: pd.DataFrame | None
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    export_date: pd.Timestamp | None
    warnings: tuple[Problem, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    # the configured export date the data was cut at (`cut_at`); None: read whole
    cut_at: pd.Timestamp | None = None
    accounts: AccountTable | None = None  # the accounts file (`data.accounts`), when configured

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.categorical + self.numeric


def _problems_for(
    mask: pd.Series,
    values: pd.Series,
    file: str,
    column: str | None,
    message: str,
    ids: pd.Series | None = None,
) -> list[Problem]:
    """One problem per flagged row; `ids` (each row's lead id) lets bad rows be dropped by lead."""
    hits = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    return [
        Problem(
            file,
            message,
            column,
            int(r) + 2,
            problem_value(values.iloc[r]),
            None if ids is None or pd.isna(ids.iloc[r]) else str(ids.iloc[r]),
        )
        for r in hits
    ]


def _role_map(settings: Settings, include_outcomes: bool) -> dict[str, str]:
    """Canonical role -> user column, for the roles the config names."""
    cols = settings.columns
    roles = {r: getattr(cols, r) for r in ROLES}
    if not include_outcomes:
        roles = {r: c for r, c in roles.items() if r not in OUTCOME_ROLES}
    return {r: c for r, c in roles.items() if c}


def _check_columns(frame: pd.DataFrame, needed: list[str], file: str) -> list[Problem]:
    return [Problem(file, "missing column", c) for c in needed if c not in frame.columns]


def _parse_role_columns(
    frame: pd.DataFrame, roles: dict[str, str], file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Rename role columns to canonical names and parse their types, collecting problems."""
    problems: list[Problem] = []
    out = pd.DataFrame(index=frame.index)
    for role, col in roles.items():
        raw = frame[col]
        if role in ("lead_id", "account_id"):
            values = raw.astype("string").str.strip()
            out[role] = values
            if role == "lead_id":
                problems += _problems_for(values.isna(), raw, file, col, "missing lead id")
            continue
        if role in TIME_ROLES:
            parsed = parse_timestamps(raw)
            kind = "unparseable timestamp"
        elif role == "amount":
            parsed = parse_numbers(raw)
            kind = "unparseable number"
        else:
            parsed = parse_flags(raw)
            kind = "unparseable yes/no flag"
        bad = parsed.isna() & raw.notna()
        if role in ("meeting_flag", "won_flag"):
            bad = parsed.isna()
        problems += _problems_for(bad, raw, file, col, kind, out.get("lead_id"))
        out[role] = parsed
    if "created_at" in roles:
        problems += _problems_for(
            out["created_at"].isna() & frame[roles["created_at"]].isna(),
            frame[roles["created_at"]],
            file,
            roles["created_at"],
            "missing creation time",
            out["lead_id"],
        )
    return out, problems


def _outcome_order_problems(
    parsed: pd.DataFrame, roles: dict[str, str], file: str
) -> list[Problem]:
    """Outcomes before creation, and a win recorded with a loss."""
    problems: list[Problem] = []
    if "created_at" not in parsed:
        return problems
    for role in ("meeting_at", "won_at", "lost_at"):
        if role in parsed:
            before = parsed[role] < parsed["created_at"]
            problems += _problems_for(
                before,
                parsed[role],
                file,
                roles[role],
                f"{role} is before created_at",
                parsed["lead_id"],
            )
    return problems


def duplicate_problems(
    ids: pd.Series, file: str, column: str, seen_before: np.ndarray | None = None
) -> list[Problem]:
    """Ids repeated in `ids` (the first one stands), or already seen (`seen_before` is true)."""
    dup = ids.duplicated(keep="first")
    if seen_before is not None:
        dup |= seen_before
    return _problems_for(dup & ids.notna(), ids, file, column, "duplicate lead id", ids)


def _infer_attributes(
    frame: pd.DataFrame, settings: Settings, used: set[str], file: str
) -> tuple[list[str], list[str], list[Problem]]:
    """Categorical and numeric attribute columns: from the config, else inferred from values."""
    cols = settings.columns
    notes: list[Problem] = []
    skip = used | set(cols.exclude) | set(cols.shown)  # shown columns are never features
    if cols.categorical is not None or cols.numeric is not None:
        return list(cols.categorical or []), list(cols.numeric or []), notes
    categorical, numeric = [], []
    for col in frame.columns:
        if col in skip:
            continue
        if col in ROLES:
            notes.append(
                Problem(file, "named like a role column but not mapped; not used as a feature", col)
            )
            continue
        values = frame[col].dropna()
        if values.empty:
            notes.append(Problem(file, "column is empty everywhere; not used as a feature", col))
            continue
        if parse_numbers(values).notna().mean() >= 0.98:
            numeric.append(col)
            continue
        if values.nunique() > ID_LIKE_UNIQUE_SHARE * len(values) and len(values) > 50:
            notes.append(
                Problem(file, "looks like an identifier or free text; not used as a feature", col)
            )
            continue
        categorical.append(col)
    return categorical, numeric, notes


def _attribute_frame(
    frame: pd.DataFrame,
    categorical: list[str],
    numeric: list[str],
    missing_words: list[str],
    file: str,
    ids: pd.Series,
) -> tuple[pd.DataFrame, list[Problem]]:
    problems: list[Problem] = []
    out = pd.DataFrame(index=frame.index)
    missing = set(missing_words)
    for col in categorical:
        values = frame[col]
        if not (isinstance(values.dtype, pd.CategoricalDtype)):
            values = values.astype("string").str.strip()
        values = values.astype("string")
        if missing:
            values = values.mask(values.isin(missing))
        out[col] = values
    for col in numeric:
        raw = frame[col]
        if missing and not pd.api.types.is_numeric_dtype(raw):
            raw = raw.mask(raw.astype("string").str.strip().isin(missing))
        parsed = parse_numbers(raw)
        bad = parsed.isna() & raw.notna()
        problems += _problems_for(bad, raw, file, col, "unparseable number", ids)
        out[col] = parsed
    return out, problems


def _read(
    path: Path, problems: list[Problem], categorical: list[str] | None = None
) -> pd.DataFrame | None:
    try:
        return read_table(path, categorical=categorical)
    except DataFileError as exc:
        problems.append(Problem(str(path), str(exc).removeprefix(f"{path}: ")))
        return None


def read_outcomes(
    settings: Settings, problems: list[Problem]
) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The separate outcomes file, parsed (first row per lead id), and its role columns."""
    path = settings.data.outcomes
    roles = {r: c for r, c in _role_map(settings, True).items() if r in (*OUTCOME_ROLES,)}
    roles = {"lead_id": settings.columns.lead_id, **roles}
    raw = _read(path, problems)
    if raw is None:
        return None, roles
    file = str(path)
    missing = _check_columns(raw, list(roles.values()), file)
    if missing:
        problems += missing
        return None, roles
    parsed, found = _parse_role_columns(raw, roles, file)
    problems += found
    problems += duplicate_problems(parsed["lead_id"], file, roles["lead_id"])
    return parsed, roles


def attach_outcomes(
    leads: pd.DataFrame, parsed: pd.DataFrame, roles: dict[str, str], file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Leads with their outcomes (by lead id), and outcomes dated before the lead's creation."""
    problems: list[Problem] = []
    if "created_at" in leads:
        created = leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
        mine = parsed[parsed["lead_id"].isin(created.index).to_numpy(bool)]
        with_created = mine.assign(created_at=mine["lead_id"].map(created))
        for p in _outcome_order_problems(with_created.reset_index(drop=True), roles, file):
            problems.append(replace(p, row=int(mine.index[p.row - 2]) + 2))
    first = parsed.drop_duplicates("lead_id", keep="first")
    merged = leads.merge(first, on="lead_id", how="left", validate="many_to_one")
    merged.index = leads.index
    return merged, problems


def _merge_outcomes(
    leads: pd.DataFrame, settings: Settings, problems: list[Problem]
) -> pd.DataFrame | None:
    """Read the separate outcomes file and attach it to the leads by lead id."""
    parsed, roles = read_outcomes(settings, problems)
    if parsed is None:
        return None
    file = str(settings.data.outcomes)
    unknown = ~parsed["lead_id"].isin(leads["lead_id"]) & parsed["lead_id"].notna()
    problems += _problems_for(unknown, parsed["lead_id"], file, roles["lead_id"], "unknown lead id")
    merged, found = attach_outcomes(leads, parsed, roles, file)
    problems += found
    return merged


def _load_activities(
    settings: Settings, lead_ids: pd.Series, problems: list[Problem], strict_leads: bool
) -> pd.DataFrame | None:
    path = settings.data.activities
    if path is None:
        return None
    ac = settings.activity_columns
    raw = _read(path, problems, categorical=[ac.lead_id, ac.type])
    if raw is None:
        return None
    file = str(path)
    needed = [ac.lead_id, ac.occurred_at, ac.type] + ([ac.value] if ac.value else [])
    missing = _check_columns(raw, needed, file)
    if missing:
        problems += missing
        return None
    lead = strip_text(raw[ac.lead_id])
    when = parse_timestamps(raw[ac.occurred_at])
    kind = strip_text(raw[ac.type])
    problems += _problems_for(lead.isna(), raw[ac.lead_id], file, ac.lead_id, "missing lead id")
    problems += _problems_for(
        when.isna(), raw[ac.occurred_at], file, ac.occurred_at, "unparseable or missing timestamp"
    )
    problems += _problems_for(kind.isna(), raw[ac.type], file, ac.type, "missing activity type")
    known = lead.isin(lead_ids).fillna(False)
    if strict_leads:
        problems += _problems_for(~known & lead.notna(), lead, file, ac.lead_id, "unknown lead id")
    out = pd.DataFrame({"lead_id": lead, "occurred_at": when, "activity_type": kind})
    if ac.value:
        out["value"] = parse_numbers(raw[ac.value])
    keep = known & when.notna() & kind.notna()
    return out[keep.to_numpy(bool)].reset_index(drop=True)


def _export_date(settings: Settings, leads: pd.DataFrame, acts: pd.DataFrame | None):
    if settings.labels.export_date:
        return pd.Timestamp(settings.labels.export_date)
    configured = _role_map(settings, True)
    stamps = [leads[c].max() for c in TIME_ROLES if c in configured and c in leads]
    if acts is not None and len(acts):
        stamps.append(acts["occurred_at"].max())
    stamps = [s for s in stamps if pd.notna(s)]
    return max(stamps) if stamps else None


def lead_roles(settings: Settings, header: list[str], include_outcomes: bool) -> dict[str, str]:
    """Role columns to read from the leads file (a file to score may lack the outcomes)."""
    roles = _role_map(settings, include_outcomes and settings.data.outcomes is None)
    if not include_outcomes:
        roles.update({r: c for r, c in _role_map(settings, True).items() if c in header})
    return roles


def attribute_column_problems(header: list[str], attributes: list[str], file: str):
    """Attribute columns missing from the file, or named like a role."""
    problems = [Problem(file, "missing column", c) for c in attributes if c not in header]
    problems += [
        Problem(file, "an attribute cannot have a role column's name; rename it", c)
        for c in attributes
        if c in ROLES
    ]
    return problems


def parse_leads(
    raw: pd.DataFrame,
    roles: dict[str, str],
    categorical: list[str],
    numeric: list[str],
    settings: Settings,
    file: str,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Leads rows in canonical form, and every problem in them except duplicate ids."""
    parsed, problems = _parse_role_columns(raw, roles, file)
    problems += _outcome_order_problems(parsed, roles, file)
    attrs, found = _attribute_frame(
        raw, categorical, numeric, settings.columns.missing_values, file, parsed["lead_id"]
    )
    return pd.concat([parsed, attrs], axis=1), problems + found


def read_lead_data(
    settings: Settings,
    leads_path: Path | None = None,
    activities_path: Path | None = None,
    include_outcomes: bool = True,
    strict_leads: bool = True,
) -> tuple[LeadData | None, list[Problem]]:
    """Read and check the configured tables; return the data (if readable) and every problem.

    `include_outcomes=False` reads a file to be scored, which may have no outcome columns.
    """
    problems: list[Problem] = []
    if leads_path is not None or activities_path is not None:
        data = settings.data.model_copy(
            update={
                "leads": leads_path or settings.data.leads,
                "activities": activities_path or settings.data.activities,
            }
        )
        settings = settings.model_copy(update={"data": data})
    path = settings.data.leads
    file = str(path)
    raw = _read(path, problems)
    if raw is None:
        return None, problems
    roles = lead_roles(settings, list(raw.columns), include_outcomes)
    missing = _check_columns(raw, [*roles.values(), *settings.columns.shown], file)
    if missing:
        return None, problems + missing
    used = set(_role_map(settings, True).values())
    cut = cut_date(settings) if include_outcomes else None
    early = raw if cut is None else raw[created_by(raw, roles, cut)]
    categorical, numeric, notes = _infer_attributes(early, settings, used, file)
    problems += attribute_column_problems(list(raw.columns), categorical + numeric, file)
    if any(p.message == "missing column" for p in problems):
        return None, problems
    leads, found = parse_leads(raw, roles, categorical, numeric, settings, file)
    problems += found + duplicate_problems(leads["lead_id"], file, roles["lead_id"])
    accounts, found = read_accounts(settings)
    problems += found
    if accounts is not None and "account_id" in leads:
        problems += unknown_account_problems(leads, accounts, file, roles["account_id"])
        accounts = replace(accounts, joined=joinable(accounts, list(raw.columns)))
        leads = join_account_attributes(leads, accounts)
        joined_cat, joined_num = joined_features(accounts)
        categorical, numeric = categorical + list(joined_cat), numeric + list(joined_num)
    if include_outcomes and settings.data.outcomes is not None:
        merged = _merge_outcomes(leads, settings, problems)
        if merged is None:
            return None, problems
        leads = merged
    acts = _load_activities(settings, leads["lead_id"], problems, strict_leads)
    sources = {"leads": str(path)}
    for name in ("activities", "outcomes"):
        p = getattr(settings.data, name)
        if p is not None and (name != "outcomes" or include_outcomes):
            sources[name] = str(p)
    if accounts is not None:
        sources["accounts"] = accounts.source
    data = LeadData(
        leads=leads,
        activities=acts,
        categorical=tuple(categorical),
        numeric=tuple(numeric),
        export_date=_export_date(settings, leads, acts),
        warnings=tuple(notes),
        sources=sources,
        accounts=accounts,
    )
    return (data if cut is None else cut_at(data, cut)), problems


def cut_date(settings: Settings) -> pd.Timestamp | None:
    """The configured export date the labelled data is cut at; None without one, or without
    creation times (nothing to date the leads by)."""
    if not settings.labels.export_date or not settings.columns.created_at:
        return None
    return pd.Timestamp(settings.labels.export_date)


def created_by(raw: pd.DataFrame, roles: dict[str, str], when: pd.Timestamp) -> np.ndarray:
    """Raw lead rows created at or before `when` (rows with a bad creation time too: the contract
    reports them)."""
    created = parse_timestamps(raw[roles["created_at"]])
    return (~(created > when)).to_numpy(bool)


def cut_at(data: LeadData, when: pd.Timestamp) -> LeadData:
    """The data as it stood at `when`: leads created later left out with their events; events
    dated later left out; meeting, win and loss times dated later blanked, and the deal amount
    of a win dated later (the amount came with the win). Leads keep their order; feedback is
    cut where it is applied (`cut_at` is recorded)."""
    leads = data.leads
    keep = ~(leads["created_at"] > when).to_numpy(bool)
    leads = leads[keep].reset_index(drop=True)
    blanked = 0
    for role in ("meeting_at", "won_at", "lost_at"):
        if role not in leads:
            continue
        later = (leads[role] > when).to_numpy(bool)
        blanked += int(later.sum())
        if role == "won_at" and "amount" in leads:
            leads["amount"] = leads["amount"].mask(later)
        leads[role] = leads[role].mask(later)
    acts, n_acts = data.activities, 0
    if acts is not None:
        mine = acts["lead_id"].isin(leads["lead_id"]).to_numpy(bool)
        use = mine & (acts["occurred_at"] <= when).to_numpy(bool)
        n_acts = int((~use).sum())
        acts = acts[use].reset_index(drop=True)
        for col in ("lead_id", "activity_type"):  # no level that only later rows had
            if isinstance(acts[col].dtype, pd.CategoricalDtype):
                acts[col] = acts[col].cat.remove_unused_categories()
    log.info(
        f"data as of the export date {when:%Y-%m-%d}: {int((~keep).sum()):,} lead(s) created "
        f"later, {n_acts:,} activities and {blanked:,} outcome time(s) dated later left out"
    )
    return replace(data, leads=leads, activities=acts, export_date=when, cut_at=when)


def drop_leads(leads: pd.DataFrame, bad_ids: set[str]) -> pd.DataFrame:
    """Leads without the given lead ids, nor rows without a lead id."""
    keep = ~leads["lead_id"].isin(bad_ids) & leads["lead_id"].notna()
    return leads[keep.to_numpy(bool)].reset_index(drop=True)


def _drop_bad_rows(data: LeadData, problems: list[Problem]) -> LeadData:
    """Remove the leads a problem names (when the config allows dropping bad rows).

    Bad activity rows are already left out when the activities are read.
    """
    leads = drop_leads(data.leads, {p.lead_id for p in problems if p.lead_id is not None})
    acts = data.activities
    if acts is not None:
        acts = acts[acts["lead_id"].isin(leads["lead_id"])].reset_index(drop=True)
    return LeadData(
        leads=leads,
        activities=acts,
        categorical=data.categorical,
        numeric=data.numeric,
        export_date=data.export_date,
        warnings=data.warnings + tuple(problems),
        sources=data.sources,
        cut_at=data.cut_at,
        accounts=data.accounts,
    )


def check_data(settings: Settings) -> list[Problem]:
    """Every contract problem in the configured data (empty list: all good)."""
    _, problems = read_lead_data(settings)
    return problems


def load_lead_data(
    settings: Settings,
    leads_path: Path | None = None,
    activities_path: Path | None = None,
    include_outcomes: bool = True,
    strict_leads: bool = True,
) -> LeadData:
    """Read the data or raise `ContractError` with every problem found."""
    data, problems = read_lead_data(
        settings, leads_path, activities_path, include_outcomes, strict_leads
    )
    if data is None:
        raise ContractError(problems)
    if problems:
        if not settings.validation.drop_invalid_rows:
            raise ContractError(problems)
        data = _drop_bad_rows(data, problems)
    return data


def input_digests(data: LeadData) -> dict[str, str]:
    """sha256 of each input file, for lineage."""
    return {name: file_digest(path) for name, path in data.sources.items()}
