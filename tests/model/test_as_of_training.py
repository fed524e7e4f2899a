"""Training as of a past date: full files with `labels.export_date: D` train exactly like files
exported at D (leads created later dropped, events and outcomes dated later removed, feedback
dated later left out)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.data.contract import load_lead_data
from leadscore.data.sample import sample_settings, write_sample
from leadscore.feedback.store import ingest_feedback, read_store
from leadscore.modeling.inputs import with_feedback
from leadscore.modeling.train import run_training

AS_OF = pd.Timestamp("2026-05-01")
NEW_TYPE = "chat_started"  # an activity type that only appears after AS_OF


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column].replace("", None))


def _later(frame: pd.DataFrame, column: str) -> pd.Series:
    return (_times(frame, column) > AS_OF).to_numpy(bool)


def full_files(folder: Path) -> Path:
    """The sample, plus what only exists after AS_OF: a new lead attribute filled only for
    leads created later, and events of a new activity type dated later."""
    write_sample(folder, n_leads=3_000, seed=3)
    leads = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False)
    leads["partner_tier"] = ""
    late = _later(leads, "created_at")
    leads.loc[late, "partner_tier"] = np.resize(["gold", "silver", "bronze"], late.sum())
    leads.to_csv(folder / "leads.csv", index=False)
    acts = pd.read_csv(folder / "activities.csv", dtype=str, keep_default_na=False)
    late_acts = acts[_later(acts, "occurred_at")].iloc[::4].assign(activity_type=NEW_TYPE)
    pd.concat([acts, late_acts]).to_csv(folder / "activities.csv", index=False)
    return folder


def cut_files(full: Path, folder: Path) -> Path:
    """The files as an export on AS_OF would have shown them."""
    folder.mkdir()
    leads = pd.read_csv(full / "leads.csv", dtype=str, keep_default_na=False)
    for column in ("meeting_at", "won_at", "lost_at"):
        later = _later(leads, column)
        if column == "won_at":
            leads.loc[later, "amount"] = ""
        leads.loc[later, column] = ""
    leads = leads[~_later(leads, "created_at")]
    leads.to_csv(folder / "leads.csv", index=False)
    acts = pd.read_csv(full / "activities.csv", dtype=str, keep_default_na=False)
    acts = acts[~_later(acts, "occurred_at") & acts["lead_id"].isin(leads["lead_id"])]
    acts.to_csv(folder / "activities.csv", index=False)
    feedback = pd.read_csv(full / "feedback.csv", dtype=str, keep_default_na=False)
    feedback[~_later(feedback, "date")].to_csv(folder / "feedback.csv", index=False)
    accounts = pd.read_csv(full / "accounts.csv", dtype=str, keep_default_na=False)
    mine = accounts["account_id"].isin(leads["account_id"])
    accounts[mine].to_csv(folder / "accounts.csv", index=False)
    return folder


def settings_for(data: Path, store: Path, export_date=AS_OF.date()):
    """The sample's settings on `data` with its own feedback store; labels also from snapshots
    whose window is not over (so outcomes dated after the export date would show)."""
    return sample_settings(
        data,
        f"sqlite:///{store}/mlruns.db",
        labels={"export_date": export_date, "require_full_window": False},
        data={"feedback": str(data / "store")},
        train={"model": {"n_estimators": 150, "learning_rate": 0.1, "n_jobs": 1}},
        mlflow={"experiment": "tests", "model_name": "as-of", "export_dir": str(store / "x")},
    )


def same(a: dict, b: dict) -> bool:
    """Equal dicts, NaN equal to NaN."""

    def eq(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return x == y or (math.isnan(x) and math.isnan(y))
        return x == y

    return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("as-of")
    full = full_files(root / "full")
    cut = cut_files(full, root / "cut")
    for data in (full, cut):
        settings = settings_for(data, root / "mlflow")
        ingest_feedback(settings, [data / "feedback.csv"], now=pd.Timestamp("2026-12-01"))
    (root / "mlflow").mkdir()
    return full, cut, root / "mlflow"


def test_full_files_read_as_of_the_export_date_hold_what_the_cut_files_hold(folders):
    full, cut, store = folders
    a = load_lead_data(settings_for(full, store))
    b = load_lead_data(settings_for(cut, store))
    pd.testing.assert_frame_equal(a.leads, b.leads)
    pd.testing.assert_frame_equal(
        a.activities.astype({"lead_id": "string", "activity_type": "string"}),
        b.activities.astype({"lead_id": "string", "activity_type": "string"}),
    )
    assert "partner_tier" not in a.categorical + a.numeric  # empty in every lead by AS_OF
    assert NEW_TYPE not in set(a.activities["activity_type"].cat.categories)
    assert a.export_date == b.export_date == AS_OF
    whole = load_lead_data(settings_for(full, store, export_date=None))
    assert len(whole.leads) > len(a.leads) and whole.export_date > AS_OF
    assert "partner_tier" in whole.categorical


def test_feedback_dated_after_the_export_date_is_ignored(folders):
    full, _, store = folders
    settings = settings_for(full, store)
    data = load_lead_data(settings)
    feedback = read_store(settings.data.feedback)
    later = feedback["date"] > AS_OF
    assert later.any() and (~later).any()
    applied, counts = with_feedback(data, feedback)
    expected, expected_counts = with_feedback(data, feedback[~later])
    pd.testing.assert_frame_equal(applied.leads, expected.leads)
    assert counts == expected_counts
    whole = dataclasses.replace(data, cut_at=None)  # data not cut: every entry applies
    assert with_feedback(whole, feedback)[1].applied > counts.applied


@pytest.mark.slow
def test_training_as_of_a_past_date_equals_training_on_files_cut_there(folders):
    full, cut, store = folders
    results = []
    for data in (full, cut):
        settings = settings_for(data, store)
        results.append(run_training(settings, feedback=read_store(settings.data.feedback)))
    on_full, on_cut = results
    assert on_full.metrics and same(on_full.metrics, on_cut.metrics)
    assert on_full.bundle.spec == on_cut.bundle.spec
    assert NEW_TYPE not in on_full.bundle.spec.activity_types
    ref_full, ref_cut = on_full.bundle.reference, on_cut.bundle.reference
    assert ref_full.score_quantiles == ref_cut.score_quantiles
    assert ref_full.mean_won_amount == ref_cut.mean_won_amount
    counts = {k: v for k, v in on_full.counts.items() if not k.startswith("counts.feedback")}
    assert counts == {k: v for k, v in on_cut.counts.items() if k in counts}
    assert on_full.counts["counts.feedback.applied"] == on_cut.counts["counts.feedback.applied"]
