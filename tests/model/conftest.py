"""Fixtures for training and registry tests: a small synthetic funnel and settings for it.

Every MLflow store lives under pytest's temporary directory (`sqlite:///{tmp}/mlruns.db`,
artifacts beside it), so nothing is written into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.config import Settings
from leadscore.data.sample import merged, sample_settings, write_sample

N_LEADS = 3_000


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """leads.csv and activities.csv of a 3,000-lead synthetic funnel (seed 0)."""
    out = tmp_path_factory.mktemp("sample")
    write_sample(out, n_leads=N_LEADS, seed=0)
    return out


def make_settings(sample_dir: Path, store: Path, **sections) -> Settings:
    """The sample's settings with a small, single-threaded model and a private MLflow store;
    `sections` update the config one section at a time (e.g. `train={"min_positives": 10}`)."""
    test_sections = {
        "data": {"feedback": str(store / "feedback")},
        "train": {"model": {"n_estimators": 150, "learning_rate": 0.1, "n_jobs": 1}},
        "mlflow": {
            "experiment": "tests",
            "model_name": "leadscore-test",
            "export_dir": str(store / "champion"),
        },
    }
    return sample_settings(
        sample_dir, f"sqlite:///{store}/mlruns.db", **merged(test_sections, sections)
    )


@pytest.fixture(scope="session")
def settings_in(sample_dir):
    """Factory: `settings_in(store, **sections)`, settings on the sample funnel with an MLflow
    store in the folder `store`."""

    def factory(store: Path, **sections) -> Settings:
        return make_settings(sample_dir, store, **sections)

    return factory
