"""The logged model's parts that need no trained model: its requirements, the import order that
keeps modeling below scoring, the `as_of` param, and events folded like the scorer folds them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.config import settings_from_dict
from leadscore.data.features import FeatureSpec, activity_stats, encode_events, to_seconds
from leadscore.errors import ContractError, InputError
from leadscore.modeling.registry import PACKAGE_DIR, PYFUNC_CODE
from leadscore.modeling.tracking import pip_requirements
from leadscore.scoring.serve import aggregate_stats, as_of_time, event_stats

SPEC = FeatureSpec(
    categorical=("industry",),
    numeric=(),
    activity_types=("demo", "web"),
    windows_days=(7, 30),
    has_time=True,
    has_activities=True,
)
SETTINGS = settings_from_dict({"data": {"leads": "leads.csv"}})


def test_requirements_are_leadscores_runtime_dependencies_pinned():
    reqs = pip_requirements()
    names = {r.split("==")[0] for r in reqs}
    assert all("==" in r for r in reqs)
    assert {"mlflow", "lightgbm", "pandas", "scikit-learn", "shap", "pydantic"} <= names
    assert not names & {"pytest", "ruff", "optuna", "leadscore"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_modeling_never_imports_scoring_and_logs_its_code_file_by_path():
    for path in (PACKAGE_DIR / "modeling").glob("*.py"):
        assert not any(m.startswith("leadscore.scoring") for m in imported_modules(path)), path
    assert PYFUNC_CODE.is_file()
    assert "leadscore.scoring.serve" in imported_modules(PYFUNC_CODE)


def test_as_of_is_a_date_or_time_in_utc_and_defaults_to_now():
    assert as_of_time({"as_of": "2026-11-01"}) == pd.Timestamp("2026-11-01")
    assert as_of_time({"as_of": "2026-11-01T10:00:00+02:00"}) == pd.Timestamp("2026-11-01 08:00")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    assert abs(as_of_time(None) - now) < pd.Timedelta(minutes=1)
    assert abs(as_of_time({"as_of": None}) - now) < pd.Timedelta(minutes=1)
    with pytest.raises(InputError, match="as_of"):
        as_of_time({"as_of": "next tuesday"})


def test_events_fold_into_the_scorers_aggregates():
    as_of = pd.Timestamp("2026-11-01")
    t = int(to_seconds(pd.DatetimeIndex([as_of]))[0])
    events = pd.Series(
        [
            [
                {"occurred_at": "2026-10-30 10:00:00", "activity_type": "demo"},
                {"occurred_at": "2026-10-01 10:00:00", "activity_type": "web"},
                {"occurred_at": "2026-10-31 23:00:00", "activity_type": "email"},  # another type
                {"occurred_at": "2026-11-02 10:00:00", "activity_type": "demo"},  # after as_of
            ],
            [],
            None,
        ]
    )
    ids = pd.Series(["a", "b", "c"])
    got = event_stats(events, ids, SETTINGS, SPEC, t)
    flat = pd.DataFrame(
        [{"lead_id": lead, **e} for lead, evs in zip(ids, events, strict=True) for e in evs or []]
    ).assign(occurred_at=lambda f: pd.to_datetime(f["occurred_at"]))
    index = pd.Index(ids)
    lead, kind, seconds = encode_events(flat, index, SPEC)
    want = activity_stats(np.arange(3), np.full(3, t), lead, kind, seconds, SPEC)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.last_seconds, want.last_seconds)
    assert got.counts[0, -1, -1] == 3  # all types, all time: the later event left out
    bad = pd.Series([[{"occurred_at": "soon", "activity_type": "demo"}]])
    with pytest.raises(ContractError, match="row 1"):
        event_stats(bad, ids.head(1), SETTINGS, SPEC, t)


def test_aggregate_columns_become_the_same_aggregates():
    t = int(to_seconds(pd.DatetimeIndex([pd.Timestamp("2026-11-01")]))[0])
    frame = pd.DataFrame(
        {
            "act__demo__7d": [2, None],
            "act__all__total": ["5", None],
            "days_since_last_activity": [1.5, None],
        }
    )
    stats = aggregate_stats(frame, SPEC, t)
    assert stats.counts[0, 0, 0] == 2 and stats.counts[0, -1, -1] == 5
    assert stats.counts[1].sum() == 0 and stats.counts[0, 1].sum() == 0
    assert stats.last_seconds.tolist() == [t - 129_600, -1]
