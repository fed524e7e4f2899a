"""The logged MLflow model on its own: lead rows in the user's columns in, the batch scorer's
values out; optional columns that are optional; and loading it where leadscore is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from leadscore.data.contract import load_lead_data
from leadscore.data.features import build_features
from leadscore.data.io import read_table
from leadscore.data.model_input import EVENTS_COLUMN, model_input_rows
from leadscore.data.snapshots import scoring_snapshots
from leadscore.modeling import registry
from leadscore.modeling.registry import CHAMPION, PACKAGE_DIR, load_bundle, mlflow_module
from leadscore.modeling.train import run_training
from leadscore.scoring.run import run_scoring

pytestmark = pytest.mark.slow  # every test uses a trained champion

AS_OF = pd.Timestamp("2026-11-01")
N_ROWS = 300
COMPARED = (
    "p_meeting", "p_won", "score", "grade", "fit_score", "engagement_score", "expected_value",
    "dormant", "explore",
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, settings_in):
    """Settings whose registry holds a promoted (and exported) champion on the sample."""
    store = tmp_path_factory.mktemp("pyfunc-store")
    settings = settings_in(store, train={"min_positives": 10, "min_negatives": 10})
    run_training(settings, promote=True)
    return settings


@pytest.fixture(scope="module")
def model(trained):
    mlflow = mlflow_module(trained.mlflow.tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{trained.mlflow.model_name}@{CHAMPION}")


@pytest.fixture(scope="module")
def scores(trained, tmp_path_factory) -> pd.DataFrame:
    """scores.parquet of the batch scorer at AS_OF."""
    out = tmp_path_factory.mktemp("pyfunc-scores")
    run_scoring(trained, AS_OF, out)
    return pq.read_table(out / "scores.parquet").to_pandas()


def lead_rows(settings, scores: pd.DataFrame) -> pd.DataFrame:
    """The leads file's own rows (all its columns, outcomes too) of some scored leads, with
    their events from the activities file as lists of {occurred_at, activity_type}."""
    leads = pd.read_csv(settings.data.leads, dtype=str)
    ids = scores["lead_id"].sample(N_ROWS, random_state=0)
    rows = leads[leads["lead_id"].isin(set(ids))].reset_index(drop=True)
    acts = pd.read_csv(settings.data.activities, dtype=str)
    acts = acts[acts["lead_id"].isin(set(ids))]
    events = {
        lead: group[["occurred_at", "activity_type"]].to_dict("records")
        for lead, group in acts.groupby("lead_id")
    }
    rows[EVENTS_COLUMN] = [events.get(lead, []) for lead in rows["lead_id"]]
    return rows


def assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The pyfunc's rows equal the scorer's for the same leads (reasons included)."""
    want = expected.set_index("lead_id").loc[got["lead_id"]].reset_index()
    reasons = [c for c in got.columns if c.startswith("reason_")]
    assert len(reasons) == 18
    for col in (*COMPARED, *reasons):
        a, b = got[col], want[col]
        if col.endswith("_points") or col.startswith("p_") or a.dtype.kind == "f":
            np.testing.assert_allclose(
                a.to_numpy(float), b.to_numpy(float), rtol=1e-12, err_msg=col
            )
        else:
            left = a.astype(object).where(a.notna(), None).tolist()
            right = b.astype(object).where(b.notna(), None).tolist()
            assert left == right, col


def test_lead_rows_score_as_in_the_batch_scorer(trained, model, scores):
    rows = lead_rows(trained, scores)
    assert (rows[EVENTS_COLUMN].map(len) > 5).any()
    got = model.predict(rows, params={"as_of": "2026-11-01"})
    assert list(got["lead_id"]) == list(rows["lead_id"])  # one row per input row, in order
    assert (got["as_of"] == "2026-11-01").all()
    assert_same_scores(got, scores)
    outputs = [c.name for c in model.metadata.get_output_schema().inputs]
    assert list(got.columns) == outputs


def test_aggregates_instead_of_events_give_the_same_scores(trained, model, scores):
    rows = lead_rows(trained, scores)
    data = load_lead_data(trained)
    spec = model.unwrap_python_model().bundle.spec
    snaps, _ = scoring_snapshots(
        data.leads[data.leads["lead_id"].isin(set(rows["lead_id"]))], AS_OF
    )
    aggregates = build_features(snaps, data.activities, spec)[spec.activity_columns]
    aggregates.insert(0, "lead_id", snaps["lead_id"].to_numpy())
    by_aggregates = rows.drop(columns=EVENTS_COLUMN).merge(aggregates, on="lead_id")
    got = model.predict(by_aggregates, params={"as_of": "2026-11-01"})
    assert_same_scores(got, scores)


def test_missing_optional_columns_are_missing_values(trained, model, scores):
    rows = lead_rows(trained, scores).head(20)
    bare = rows[["lead_id", "created_at"]]
    out = model.predict(bare, params={"as_of": "2026-11-01"})
    assert out["p_won"].between(0, 1).all() and len(out) == 20
    assert out["expected_value"].notna().all()  # the average won deal without an amount
    without_industry = model.predict(rows.drop(columns="industry"), params={"as_of": "2026-11-01"})
    blank = model.predict(rows.assign(industry=None), params={"as_of": "2026-11-01"})
    pd.testing.assert_frame_equal(without_industry, blank)
    mlflow = mlflow_module()
    with pytest.raises(mlflow.exceptions.MlflowException, match="lead_id"):
        model.predict(rows.drop(columns="lead_id"))
    with pytest.raises(Exception, match="created after as_of"):
        model.predict(rows, params={"as_of": "2020-01-01"})


def test_as_of_defaults_to_now_and_counts_only_earlier_events(trained, model, scores):
    rows = lead_rows(trained, scores).head(10)
    now = model.predict(rows)
    stamp = pd.Timestamp(now["as_of"].iloc[0])
    assert abs(stamp - pd.Timestamp.now(tz="UTC").tz_localize(None)) < pd.Timedelta(minutes=5)
    later = rows.assign(
        events=[[*ev, {"occurred_at": "2026-11-02 09:00:00", "activity_type": "demo_request"}]
                for ev in rows[EVENTS_COLUMN]]
    )  # fmt: skip
    at = model.predict(later, params={"as_of": "2026-11-01"})
    assert_same_scores(at, scores)  # the event after as_of does not count


def test_input_example_and_requirements_are_logged(model):
    example = model.input_example
    assert EVENTS_COLUMN in example and "lead_id" in example and len(example) == 5
    assert not any(c.startswith("act__") for c in example.columns)
    inputs = {c.name: c.required for c in model.metadata.get_input_schema().inputs}
    assert inputs["lead_id"] and inputs["created_at"]
    assert not inputs["industry"] and not inputs[EVENTS_COLUMN]


def fresh_python(folder: Path) -> Path:
    """A virtual environment without pip whose only packages are the main one's, read through
    a plain path line (so leadscore's editable install, itself a .pth, is not picked up)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "main-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true"}


def test_exported_model_loads_and_scores_where_leadscore_is_not_installed(
    trained, model, scores, tmp_path
):
    python = fresh_python(tmp_path / "venv")
    env = clean_env()
    probe = subprocess.run(
        [str(python), "-c", "import mlflow, lightgbm, pandas; import leadscore"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode != 0 and "No module named 'leadscore'" in probe.stderr
    rows = lead_rows(trained, scores).head(50)
    rows.to_pickle(tmp_path / "rows.pkl")
    script = textwrap.dedent(
        f"""
        import sys, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({str(trained.mlflow.export_dir)!r})
        out = model.predict(pd.read_pickle("rows.pkl"), params={{"as_of": "2026-11-01"}})
        out.to_pickle("out.pkl")
        import leadscore
        print(leadscore.__file__)
        """
    )
    run = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    loaded_from = Path(run.stdout.strip().splitlines()[-1])
    assert trained.mlflow.export_dir.resolve() in loaded_from.resolve().parents
    assert PACKAGE_DIR not in loaded_from.parents
    got = pd.read_pickle(tmp_path / "out.pkl")
    pd.testing.assert_frame_equal(got, model.predict(rows, params={"as_of": "2026-11-01"}))
    assert_same_scores(got, scores)
    requirements = (trained.mlflow.export_dir / "requirements.txt").read_text().split()
    names = {r.split("==")[0] for r in requirements}
    assert {"mlflow", "lightgbm", "pandas", "shap", "pydantic"} <= names
    assert not names & {"pytest", "ruff", "leadscore"}


def test_model_input_rows_use_the_users_column_names(trained):
    data = load_lead_data(trained)
    bundle = load_bundle(
        f"models:/{trained.mlflow.model_name}@{CHAMPION}", trained.mlflow.tracking_uri
    )
    rows = model_input_rows(data.leads.head(3), data.activities, trained, bundle.spec, AS_OF)
    raw = read_table(trained.data.leads).head(3)
    assert list(rows["lead_id"]) == list(raw["lead_id"])
    assert set(rows.columns) <= set(raw.columns) | {EVENTS_COLUMN}
    events = [e for lead in rows[EVENTS_COLUMN] for e in lead]
    assert events and set(events[0]) == {"occurred_at", "activity_type"}
    assert all(pd.Timestamp(e["occurred_at"]) < AS_OF for e in events)


def test_models_logged_before_still_load_for_scoring(model, tmp_path):
    """A model pickled as the old wrapper (raw features in, probabilities out) still loads."""
    mlflow = mlflow_module()
    bundle = model.unwrap_python_model().bundle
    old = registry.LeadScorePyfunc(bundle)
    mlflow.pyfunc.save_model(str(tmp_path / "old"), python_model=old, pip_requirements=[])
    assert load_bundle(str(tmp_path / "old")).reference == bundle.reference
