"""The notebooks run top to bottom (nbclient) on a small sample funnel in a temporary folder.

Each notebook takes its inputs from environment variables (`LEADSCORE_WORKDIR`,
`LEADSCORE_CONFIG`, `LEADSCORE_SAMPLE_LEADS`), which the kernel inherits from this process. The
kernel is a kernelspec written to a temporary `JUPYTER_PATH` whose command is this interpreter
(`sys.executable`), so the notebooks run in the project's venv whatever `python` is on PATH.
Nothing is written into the repository: data, the MLflow store and the champion all live under
pytest's temporary directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from leadscore.config import config_as_yaml, load_config
from leadscore.data.sample import sample_settings, write_sample
from leadscore.modeling.train import run_training

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FUNNEL = NOTEBOOKS / "01-funnel-overview.ipynb"
REVIEW = NOTEBOOKS / "02-model-review.ipynb"
N_LEADS = 3_000
KERNEL = "leadscore-test-venv"
CELL_TIMEOUT = 300


def write_config(path: Path, data: Path, store: Path) -> None:
    """The sample's settings (data in `data`, a private MLflow store in `store`, a small
    single-threaded model) as a YAML config file at `path`."""
    settings = sample_settings(
        data,
        f"sqlite:///{store}/mlruns.db",
        data={"feedback": str(store / "feedback")},
        train={"model": {"n_estimators": 150, "learning_rate": 0.1, "n_jobs": 1}},
        mlflow={
            "model_name": "leadscore-notebooks",
            "experiment": "leadscore-notebooks",
            "export_dir": str(store / "champion"),
        },
    )
    path.write_text(config_as_yaml(settings), encoding="utf-8")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec running this interpreter, found through a temporary JUPYTER_PATH; the
    variables every notebook run shares are set for the module's duration."""
    share = tmp_path_factory.mktemp("jupyter")
    spec_dir = share / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "leadscore (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(share))
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("DO_NOT_TRACK", "true")
        mp.setenv("MPLBACKEND", "Agg")
        mp.delenv("LEADSCORE_MODEL_URI", raising=False)
        found = KernelSpecManager().get_kernel_spec(KERNEL)
        assert found.argv[0] == sys.executable
        yield KERNEL


def run_notebook(path: Path, workdir: Path, kernel_name: str) -> nbformat.NotebookNode:
    """Execute a notebook with `workdir` as its working folder; raise on the first error."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All printed and displayed text of a run, and the number of images it drew."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                images += "image/png" in out.data
                text.append(out.data.get("text/plain", ""))
                text.append(out.data.get("text/html", ""))
    return "\n".join(text), images


@pytest.mark.parametrize("path", [FUNNEL, REVIEW], ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    for cell in code:
        assert cell.outputs == [], f"{path.name}: a cell has outputs; clear them before committing"
        assert cell.execution_count is None, f"{path.name}: execution counts must be null"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_funnel_overview_generates_the_sample_and_runs(kernel, tmp_path, monkeypatch):
    """Notebook 01 on a config named sample.yaml whose data does not exist yet: it writes the
    sample funnel (3,000 leads) itself, relative to LEADSCORE_WORKDIR, then draws every view."""
    config = tmp_path / "configs" / "sample.yaml"
    config.parent.mkdir()
    write_config(config, Path("data/sample"), tmp_path / "store")
    monkeypatch.setenv("LEADSCORE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("LEADSCORE_CONFIG", "configs/sample.yaml")
    monkeypatch.setenv("LEADSCORE_SAMPLE_LEADS", str(N_LEADS))

    nb = run_notebook(FUNNEL, tmp_path / "configs", kernel)

    assert (tmp_path / "data" / "sample" / "leads.csv").is_file()
    assert (tmp_path / "data" / "sample" / "activities.csv").is_file()
    text, images = outputs(nb)
    assert f"writing the sample funnel ({N_LEADS:,} leads" in text
    assert f"{N_LEADS:,} leads" in text
    for section in ("lead -> meeting", "meeting -> won", "creation -> meeting", "lead_source"):
        assert section in text
    assert "lead -> won (share of leads ever won, unweighted)" in text
    assert "not converted (censored at export)" in text
    assert "(Kaplan-Meier, open leads censored)" in text
    assert "events in the 30 days before a first meeting" in text
    assert images >= 6


def renamed_sample(tmp_path: Path, segment: bool, activities: bool) -> Path:
    """The sample funnel with its source and size columns renamed (`lead_source` -> `channel`,
    `employees` -> `headcount`) and a config that maps them; `segment`/`activities`: whether the
    config sets `columns.segment` (to `channel`) and `data.activities`. Returns the config."""
    data = tmp_path / "crm"
    write_sample(data, n_leads=N_LEADS, seed=0)
    leads = pd.read_csv(data / "leads.csv")
    leads.rename(columns={"lead_source": "channel", "employees": "headcount"}).to_csv(
        data / "leads.csv", index=False
    )
    config = tmp_path / "acme.yaml"
    write_config(config, data, tmp_path / "store")
    settings = load_config(config)
    columns = settings.columns.model_copy(update={"segment": "channel" if segment else None})
    paths = settings.data.model_copy(
        # the accounts file keeps the sample's names (`employees`): left out here
        update={"activities": settings.data.activities if activities else None, "accounts": None}
    )
    settings = settings.model_copy(update={"columns": columns, "data": paths})
    config.write_text(config_as_yaml(settings), encoding="utf-8")
    return config


@pytest.mark.slow
def test_funnel_overview_follows_renamed_columns(kernel, tmp_path, monkeypatch):
    """Notebook 01 on a user's export whose columns have other names: the views follow the
    config's roles (segment `channel`, attribute `headcount` banded), no sample name shows."""
    config = renamed_sample(tmp_path, segment=True, activities=True)
    monkeypatch.setenv("LEADSCORE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("LEADSCORE_CONFIG", str(config))

    text, images = outputs(run_notebook(FUNNEL, tmp_path, kernel))

    assert "channel (segment)" in text
    assert "headcount (bands)" in text
    assert "lead_source" not in text and "employees" not in text
    assert "note:" not in text  # every view applies
    assert images >= 6


@pytest.mark.slow
def test_funnel_overview_says_which_views_do_not_apply(kernel, tmp_path, monkeypatch):
    """Without a segment or an activity table, notebook 01 still runs and says which views it
    left out and why, instead of dropping them silently."""
    config = renamed_sample(tmp_path, segment=False, activities=False)
    monkeypatch.setenv("LEADSCORE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("LEADSCORE_CONFIG", str(config))

    text, _ = outputs(run_notebook(FUNNEL, tmp_path, kernel))

    assert "note: no segment view: columns.segment is not set" in text
    assert "note: no segment mix over time: columns.segment is not set" in text
    assert "note: no activity table in this config" in text
    assert "channel" in text and "headcount (bands)" in text  # still attributes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A sample funnel, its config (absolute paths) and a promoted champion in a private store."""
    workdir = tmp_path_factory.mktemp("review")
    data, store = workdir / "data", workdir / "store"
    write_sample(data, n_leads=N_LEADS, seed=0)
    config = workdir / "review.yaml"
    write_config(config, data, store)
    settings = load_config(config)
    result = run_training(settings, promote=True)
    assert result.promotion is not None and result.promotion.promoted, (
        f"the sample model was not promoted: {result.promotion}"
    )
    return workdir, config, result


def result_capacity(config: Path) -> int:
    return load_config(config).evaluation.capacity


@pytest.mark.slow
def test_model_review_runs_on_the_champion(kernel, trained, monkeypatch):
    workdir, config, result = trained
    monkeypatch.setenv("LEADSCORE_WORKDIR", str(workdir))
    monkeypatch.setenv("LEADSCORE_CONFIG", str(config))

    nb = run_notebook(REVIEW, workdir, kernel)

    text, images = outputs(nb)
    assert f"version {result.model_version}" in text
    assert result.run_id in text
    assert "model minus the best baseline" in text
    assert "model's starting point (average prediction" in text
    for target in result.targets:
        m = result.metrics
        top10, top20 = m[f"{target}.captured_top10"], m[f"{target}.captured_top20"]
        held = f"top 10% of leads hold {top10:.1%} of conversions, top 20% {top20:.1%}"
        assert f"{target}: {held}" in text
        assert f"{target}: recomputed from the logged scores = logged metrics: True" in text
        assert f"{target}, best {result_capacity(config):,} leads a week" in text
    # calibration, gains (own + the run's logged plots), SHAP summary, dependence, segments
    assert images >= 5 + len(result.targets)
