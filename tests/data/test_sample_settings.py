"""`sample_settings` builds the settings of configs/sample.yaml without reading the file."""

from __future__ import annotations

from pathlib import Path

from leadscore.config import load_config
from leadscore.data.sample import sample_settings

SAMPLE_YAML = Path(__file__).resolve().parents[2] / "configs" / "sample.yaml"


def test_sample_settings_equal_configs_sample_yaml():
    from_file = load_config(SAMPLE_YAML)
    built = sample_settings(Path("data/sample"), "sqlite:///mlruns.db")
    assert built.model_dump() == from_file.model_dump()


def test_overrides_merge_into_nested_sections(tmp_path):
    s = sample_settings(
        tmp_path,
        f"sqlite:///{tmp_path}/mlruns.db",
        train={"model": {"n_jobs": 1}},
        data={"feedback": str(tmp_path / "feedback")},
    )
    assert s.data.leads == tmp_path / "leads.csv"
    assert s.data.activities == tmp_path / "activities.csv"
    assert s.data.feedback == tmp_path / "feedback"
    assert s.train.model.n_jobs == 1
    assert s.train.model.n_estimators == 400  # the rest of the section keeps its defaults
    assert s.columns.display == ["company_name", "contact_name"] and s.columns.owner == "owner"
    assert s.mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlruns.db"


def test_overrides_leave_the_embedded_config_alone(tmp_path):
    sample_settings(tmp_path, "sqlite:///x.db", columns={"display": ["x"]})
    assert sample_settings(tmp_path, "sqlite:///x.db").columns.display == [
        "company_name",
        "contact_name",
    ]
