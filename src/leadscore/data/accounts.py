"""The accounts table (`data.accounts`): read, checked against the leads, joined onto them.

One row per account: its id (`account_columns.account_id`), attribute columns (categorical,
numeric; inferred when the config names neither) and display columns. Problems name the file,
the column, the row (the header is row 1) and the value: a missing or repeated account id, an
unparseable number, and a lead whose account id the accounts file does not hold (reported on the
leads file, with the lead's row, so `validation.drop_invalid_rows` drops that lead).

Account attributes join onto each lead as `account__<column>` features, unless the leads file
already has a column of that name (the lead's own value stands).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.io import read_table
from leadscore.data.parse import nonblank_text, parse_numbers, problem_value
from leadscore.errors import DataFileError, Problem

ACCOUNT_PREFIX = "account__"  # account attributes joined onto leads
ID_LIKE_UNIQUE_SHARE = 0.9


@dataclass(frozen=True)
class AccountTable:
    """Accounts in canonical form: `account_id`, attributes under their names, display columns."""

    frame: pd.DataFrame
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    display: tuple[str, ...]
    source: str
    joined: tuple[str, ...] = ()  # attributes joined onto the leads (as ACCOUNT_PREFIX + name)

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.categorical + self.numeric


def _row_problems(mask: np.ndarray, values: pd.Series, file: str, column: str, message: str):
    return [
        Problem(file, message, column, int(r) + 2, problem_value(values.iloc[r]))
        for r in np.flatnonzero(mask)
    ]


def _infer(raw: pd.DataFrame, settings: Settings) -> tuple[list[str], list[str]]:
    """Attribute columns: from the config, else every other column by its values."""
    ac = settings.account_columns
    if ac.categorical is not None or ac.numeric is not None:
        return list(ac.categorical or []), list(ac.numeric or [])
    skip = {ac.account_id, *ac.exclude, *ac.display}
    categorical, numeric = [], []
    for col in raw.columns:
        values = raw[col].dropna()
        if col in skip or values.empty:
            continue
        if parse_numbers(values).notna().mean() >= 0.98:
            numeric.append(col)
        elif not (values.nunique() > ID_LIKE_UNIQUE_SHARE * len(values) and len(values) > 50):
            categorical.append(col)
    return categorical, numeric


def read_accounts(settings: Settings) -> tuple[AccountTable | None, list[Problem]]:
    """Read and check the accounts file; (None, problems) when it cannot be used at all."""
    path = settings.data.accounts
    if path is None:
        return None, []
    file = str(path)
    try:
        raw = read_table(Path(path))
    except DataFileError as exc:
        return None, [Problem(file, str(exc).removeprefix(f"{path}: "))]
    ac = settings.account_columns
    categorical, numeric = _infer(raw, settings)
    needed = [ac.account_id, *categorical, *numeric, *ac.display]
    missing = [Problem(file, "missing column", c) for c in needed if c not in raw.columns]
    if missing:
        return None, missing
    ids = nonblank_text(raw[ac.account_id])
    missing_id = ids.isna().to_numpy()
    problems = _row_problems(
        missing_id, raw[ac.account_id], file, ac.account_id, "missing account id"
    )
    dup = (ids.duplicated(keep="first") & ids.notna()).to_numpy()
    problems += _row_problems(dup, ids, file, ac.account_id, "duplicate account id")
    frame = pd.DataFrame({"account_id": ids})
    for col in categorical:
        frame[col] = nonblank_text(raw[col])
    for col in numeric:
        parsed = parse_numbers(raw[col])
        bad = (parsed.isna() & raw[col].notna()).to_numpy()
        problems += _row_problems(bad, raw[col], file, col, "unparseable number")
        frame[col] = parsed
    for col in ac.display:
        frame[col] = raw[col].astype("string")
    keep = (ids.notna() & ~ids.duplicated(keep="first")).to_numpy()
    table = AccountTable(
        frame=frame[keep].reset_index(drop=True),
        categorical=tuple(categorical),
        numeric=tuple(numeric),
        display=tuple(ac.display),
        source=file,
    )
    return table, problems


def unknown_account_problems(
    leads: pd.DataFrame, table: AccountTable, file: str, column: str
) -> list[Problem]:
    """Leads whose account id is not in the accounts file (a lead without one is fine)."""
    ids = leads["account_id"]
    unknown = (ids.notna() & ~ids.isin(table.frame["account_id"])).to_numpy(bool)
    return [
        Problem(
            file,
            "unknown account id (not in the accounts file)",
            column,
            int(r) + 2,
            problem_value(ids.iloc[r]),
            None if pd.isna(leads["lead_id"].iloc[r]) else str(leads["lead_id"].iloc[r]),
        )
        for r in np.flatnonzero(unknown)
    ]


def joinable(table: AccountTable, lead_columns: list[str]) -> tuple[str, ...]:
    """Account attributes to join onto the leads: those the leads file has no column for."""
    return tuple(c for c in table.attributes if c not in lead_columns)


def join_account_attributes(leads: pd.DataFrame, table: AccountTable | None) -> pd.DataFrame:
    """Leads with their account's joined attributes as `account__<column>` (missing without an
    account); the leads' order and index are kept."""
    if table is None or not table.joined or "account_id" not in leads:
        return leads
    attrs = table.frame.set_index("account_id")[list(table.joined)]
    looked = attrs.reindex(leads["account_id"].astype("string").to_numpy())
    out = leads.copy()
    for col in table.joined:
        out[ACCOUNT_PREFIX + col] = looked[col].to_numpy()
        if col in table.categorical:
            out[ACCOUNT_PREFIX + col] = out[ACCOUNT_PREFIX + col].astype("string")
    return out


def joined_features(table: AccountTable | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categorical, numeric) lead feature names the join adds."""
    if table is None:
        return (), ()
    cat = tuple(ACCOUNT_PREFIX + c for c in table.joined if c in table.categorical)
    num = tuple(ACCOUNT_PREFIX + c for c in table.joined if c in table.numeric)
    return cat, num
