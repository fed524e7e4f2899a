"""The account model in the lead bundle: trained on account snapshots with roll-up baselines, or
refused with the numbers and replaced by the roll-up."""

from __future__ import annotations

import pytest

from leadscore.accounts.model import BASIS_MODEL, BASIS_ROLLUP, train_accounts
from leadscore.data.contract import load_lead_data
from leadscore.data.snapshots import build_examples
from leadscore.modeling.train import train_targets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(settings_in, tmp_path_factory):
    settings = settings_in(
        tmp_path_factory.mktemp("store"),
        train={"families": ["lightgbm"]},
        accounts={"min_accounts": 100, "min_positives": 20, "require_beats_rollup": False},
    )
    data = load_lead_data(settings)
    examples = build_examples(data, settings)
    results = train_targets(examples, settings)
    return settings, data, examples, results


def test_account_model_is_measured_against_the_lead_rollups(trained):
    settings, data, examples, results = trained
    model = train_accounts(data, settings, examples.spec, results, "won")
    assert model.basis == BASIS_MODEL and set(model.targets) == {"meeting", "won"}
    for target in ("meeting", "won"):
        for name in ("", ".rollup_max", ".rollup_noisy_or", ".logreg"):
            value = model.metrics[f"accounts.{target}{name}.roc_auc"]
            assert 0.5 < value < 1.0, (target, name, value)
    # the same validation rows for the model and its roll-up baselines
    assert model.metrics["accounts.won.n"] == model.metrics["accounts.won.rollup_max.n"]
    assert model.grades is not None and model.grades.target == "won"
    assert len(model.score_quantiles) > 100
    assert set(model.typical_roles) == {"job_level", "job_function"}
    assert model.attributes is not None and "industry" in model.attributes


def test_too_few_accounts_falls_back_to_the_rollup(trained, caplog):
    settings, data, examples, results = trained
    strict = settings.model_copy(
        update={"accounts": settings.accounts.model_copy(update={"min_accounts": 10**6})}
    )
    model = train_accounts(data, strict, examples.spec, results, "won")
    assert model.basis == BASIS_ROLLUP and not model.targets
    assert "1,000,000" in model.refusal and "accounts.min_accounts" in model.refusal
    assert "roll-up" in caplog.text
