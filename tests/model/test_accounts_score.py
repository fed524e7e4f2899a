"""Account scoring end to end: one bundle (one version) with the account model, accounts.csv and
accounts.parquet, the Accounts sheet and section, the account grade on lead rows, the roll-up
fallback said in the outputs."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest

from leadscore.accounts.model import train_accounts
from leadscore.modeling.registry import version_uri
from leadscore.modeling.train import run_training
from leadscore.scoring.run import run_scoring

pytestmark = pytest.mark.slow

AS_OF = pd.Timestamp("2026-11-01")


@pytest.fixture(scope="module")
def scored(tmp_path_factory, settings_in):
    store = tmp_path_factory.mktemp("accounts-store")
    settings = settings_in(
        store,
        train={"families": ["lightgbm"]},
        accounts={"min_accounts": 100, "min_positives": 20, "require_beats_rollup": False},
    )
    result = run_training(settings, account_trainer=train_accounts)
    out = store / "scores"
    run_scoring(settings, AS_OF, out, model_uri=version_uri(settings, result.model_version))
    return settings, result, out


def test_the_account_model_is_in_the_registered_bundle(scored):
    _, result, _ = scored
    assert result.bundle.accounts.basis == "model"
    assert result.metrics["accounts.won.roc_auc"] > 0.5
    assert "accounts.won.rollup_max.roc_auc" in result.metrics
    assert "accounts.won.rollup_noisy_or.roc_auc" in result.metrics


def test_account_engagement_against_reads_as_only_so_much(scored):
    """An activity count that lowers an account's probability is worded as below what it could
    be ("only 6 times"), never as if engagement itself were a reason against."""
    table = pd.read_parquet(scored[2] / "accounts.parquet")
    seen = {"pos": 0, "neg": 0}
    for side in seen:
        for k in (1, 2, 3):
            codes = table[f"reason_{side}_{k}_code"].fillna("")
            texts = table.loc[codes.str.startswith("account:activity:"), f"reason_{side}_{k}"]
            only = texts.str.contains(": only ", regex=False)
            none = texts.str.contains(": none by", regex=False)
            seen[side] += len(texts)
            assert (only | none).all() if side == "neg" else (~only & ~none).all()
    assert seen["pos"] > 0


def test_accounts_file_has_one_row_per_account_with_an_open_lead(scored):
    _, _, out = scored
    accounts = pd.read_csv(out / "accounts.csv", dtype={"model_version": str})
    table = pd.read_parquet(out / "accounts.parquet")
    assert list(accounts.columns) == list(table.columns)
    assert len(accounts) == len(table) and accounts["account_id"].is_unique
    scores = pd.read_parquet(out / "scores.parquet")
    leads = pd.read_csv(scored[0].data.leads, dtype=str)
    open_accounts = leads.set_index("lead_id").loc[scores["lead_id"], "account_id"]
    assert set(accounts["account_id"]) == set(open_accounts)
    counts = open_accounts.value_counts()
    assert (
        accounts.set_index("account_id")["n_open_leads"]
        == counts.reindex(accounts["account_id"]).to_numpy()
    ).all()
    assert accounts["top_lead_id"].isin(scores["lead_id"]).all()
    for col in ("account_name", "p_meeting", "p_won", "score", "grade", "basis", "roles_engaged"):
        assert col in accounts
    assert set(accounts["grade"]) <= set("ABCD") and (accounts["basis"] == "model").all()
    assert accounts["score"].is_monotonic_decreasing
    assert not list(out.glob(".accounts-*"))  # the spilled aggregates are removed
    assert accounts["reason_pos_1"].notna().mean() > 0.9
    assert accounts["reason_pos_1"].dropna().str.contains(r"\(\+\d", regex=True).all()
    assert not accounts["reason_neg_1"].dropna().str.contains("\u2212").any()


def test_reports_show_accounts_and_the_leads_account_grade(scored):
    _, _, out = scored
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert "Accounts" in wb.sheetnames
    header = next(wb["Accounts"].iter_rows(max_row=1, values_only=True))
    assert header[:4] == ("Account", "Account name", "Grade", "Score")
    leads_header = next(wb["Scores"].iter_rows(max_row=1, values_only=True))
    assert "Account grade" in leads_header
    page = (out / "report.html").read_text()
    assert "<h2>Accounts: the top" in page and "Account grade" in page


def test_too_few_accounts_scores_the_rollup_and_says_so(scored, tmp_path):
    settings, _, _ = scored
    strict = settings.model_copy(
        update={"accounts": settings.accounts.model_copy(update={"min_accounts": 10**6})}
    )
    result = run_training(strict, account_trainer=train_accounts)
    assert result.bundle.accounts.basis == "rollup"
    run_scoring(strict, AS_OF, tmp_path, model_uri=version_uri(strict, result.model_version))
    accounts = pd.read_csv(tmp_path / "accounts.csv")
    assert (accounts["basis"] == "rollup").all()
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    leads = pd.read_csv(settings.data.leads, dtype=str).set_index("lead_id")
    scores["account_id"] = leads.loc[scores["lead_id"], "account_id"].to_numpy()
    expected = 1 - scores.groupby("account_id")["p_won"].apply(lambda p: (1 - p).prod())
    got = accounts.set_index("account_id")["p_won"]
    assert got.to_numpy() == pytest.approx(expected.reindex(got.index).to_numpy(), abs=1e-9)
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")
    first = next(wb["Accounts"].iter_rows(max_row=1, values_only=True))[0]
    assert first.startswith("Note: account probabilities are the roll-up")
    assert "roll-up of their open leads" in (tmp_path / "report.html").read_text()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (
        manifest["accounts"]["basis"] == "rollup" and "min_accounts" in manifest["accounts"]["note"]
    )
