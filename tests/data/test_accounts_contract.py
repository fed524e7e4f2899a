"""The accounts file: checked against the contract (file, row, column, value), joined onto leads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from leadscore.accounts.score import account_hooks
from leadscore.config import settings_from_dict
from leadscore.data.contract import check_data, load_lead_data
from leadscore.data.snapshots import feature_spec_for
from leadscore.errors import ConfigError, ContractError
from leadscore.scoring.stream import scoring_settings

LEADS = """lead_id,account_id,created_at,industry,meeting_at,won_at
L1,A1,2025-01-01,software,2025-01-20,
L2,A1,2025-01-05,software,,
L3,A2,2025-06-01,retail,,
L4,,2025-06-03,retail,,
"""
ACCOUNTS = """account_id,account_name,industry,employees,tier
A1,Acme,software,120,gold
A2,Beta,retail,,silver
"""


def settings_for(tmp_path: Path, leads: str = LEADS, accounts: str = ACCOUNTS, **extra):
    (tmp_path / "leads.csv").write_text(leads)
    (tmp_path / "accounts.csv").write_text(accounts)
    raw = {
        "data": {"leads": str(tmp_path / "leads.csv"), "accounts": str(tmp_path / "accounts.csv")},
        "columns": {"account_id": "account_id"},
        "account_columns": {"account_id": "account_id", "display": ["account_name"]},
        **extra,
    }
    return settings_from_dict(raw)


def test_clean_accounts_join_their_new_attributes_onto_the_leads(tmp_path):
    settings = settings_for(tmp_path)
    assert check_data(settings) == []
    data = load_lead_data(settings)
    table = data.accounts
    assert list(table.frame["account_id"]) == ["A1", "A2"]
    assert table.categorical == ("industry", "tier") and table.numeric == ("employees",)
    # the leads file has `industry`: the lead's own value stands; the others join, prefixed
    assert table.joined == ("tier", "employees")
    assert "account__tier" in data.categorical and "account__employees" in data.numeric
    assert "account__industry" not in data.leads
    assert list(data.leads["account__tier"].fillna("-")) == ["gold", "gold", "silver", "-"]
    assert data.leads["account__employees"].iloc[0] == 120
    assert data.sources["accounts"].endswith("accounts.csv")


def test_duplicate_and_missing_account_ids_name_file_row_and_value(tmp_path):
    accounts = ACCOUNTS + "A1,Acme again,software,5,gold\n,Nameless,retail,3,gold\n"
    problems = check_data(settings_for(tmp_path, accounts=accounts))
    found = {(p.message, p.row, p.value) for p in problems}
    assert ("duplicate account id", 4, "A1") in found
    assert ("missing account id", 5, None) in found
    assert all(p.file.endswith("accounts.csv") and p.column == "account_id" for p in problems)


def test_leads_pointing_at_unknown_accounts_are_reported_on_the_leads_file(tmp_path):
    leads = LEADS + "L5,A9,2025-07-01,retail,,\n"
    (problem,) = check_data(settings_for(tmp_path, leads=leads))
    assert problem.file.endswith("leads.csv")
    assert (problem.column, problem.row, problem.value, problem.lead_id) == (
        "account_id",
        6,
        "A9",
        "L5",
    )
    assert "unknown account id" in problem.message
    with pytest.raises(ContractError, match="A9"):
        load_lead_data(settings_for(tmp_path, leads=leads))


def test_unknown_account_lead_is_dropped_when_the_config_says_so(tmp_path):
    leads = LEADS + "L5,A9,2025-07-01,retail,,\n"
    settings = settings_for(tmp_path, leads=leads, validation={"drop_invalid_rows": True})
    assert "L5" not in set(load_lead_data(settings).leads["lead_id"])


def test_bad_number_and_missing_column_in_the_accounts_file(tmp_path):
    bad = ACCOUNTS.replace("A2,Beta,retail,,silver", "A2,Beta,retail,many,silver")
    columns = {"account_id": "account_id", "numeric": ["employees"], "categorical": ["tier"]}
    settings = settings_for(tmp_path, accounts=bad, account_columns=columns)
    (problem,) = check_data(settings)
    assert (problem.message, problem.column, problem.row, problem.value) == (
        "unparseable number",
        "employees",
        3,
        "many",
    )
    settings = settings_for(tmp_path, account_columns={"account_id": "acct"})
    (problem,) = check_data(settings)
    assert (problem.message, problem.column) == ("missing column", "acct")


def test_accounts_need_the_leads_account_id_column(tmp_path):
    with pytest.raises(ConfigError, match="account_id"):
        settings_from_dict({"data": {"leads": "x.csv", "accounts": "a.csv"}})


def test_scoring_reads_leads_without_the_joined_columns_and_joins_them_per_chunk(tmp_path):
    settings = settings_for(tmp_path)
    data = load_lead_data(settings)
    spec = feature_spec_for(data, settings)
    assert "account__tier" in spec.categorical
    reading = scoring_settings(settings, spec)  # the leads file has no account__ columns
    assert not [c for c in reading.columns.categorical if c.startswith("account__")]
    bundle = SimpleNamespace(accounts=SimpleNamespace(), spec=spec)
    tally, prepare = account_hooks(settings, bundle)
    part = pd.DataFrame({"lead_id": ["L3", "L4"], "account_id": pd.array(["A2", None], "string")})
    joined = prepare(part)
    assert list(joined["account__tier"].fillna("-")) == ["silver", "-"]
    assert joined["account__employees"].isna().all()  # A2 has no employee count
    assert tally is not None
