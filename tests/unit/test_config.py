"""Config loading: date-valued keys take a YAML date or a string; bad values name key and file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadscore.config import config_as_yaml, load_config, settings_from_dict
from leadscore.errors import ConfigError


def _write(tmp_path: Path, export_date: str) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text(
        f"data:\n  leads: leads.csv\nlabels:\n  export_date: {export_date}\n", encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-01-01", "2026-01-01"),  # unquoted: YAML reads a date
        ("2026-01-01 10:30:00", "2026-01-01 10:30:00"),  # unquoted: YAML reads a datetime
        ("'2026-01-01'", "2026-01-01"),  # quoted: a string
        ("'2026-1-1'", "2026-01-01"),
        ("null", None),
    ],
)
def test_export_date_accepts_a_yaml_date_or_a_string(tmp_path, written, expected):
    settings = load_config(_write(tmp_path, written))
    got = settings.labels.export_date
    if expected is None:
        assert got is None
    else:
        assert pd.Timestamp(got) == pd.Timestamp(expected)
        # the logged config is plain YAML and loads back to the same settings
        again = tmp_path / "again.yaml"
        again.write_text(config_as_yaml(settings), encoding="utf-8")
        assert pd.Timestamp(load_config(again).labels.export_date) == pd.Timestamp(expected)


@pytest.mark.parametrize("written", ["2026-13-45", "'2026-02-30'", "'next monday'", "20"])
def test_a_bad_export_date_names_the_key_the_value_and_the_file(tmp_path, written):
    path = _write(tmp_path, written)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "labels.export_date" in message
    assert written.strip("'") in message


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        (
            "data:\n  leads: a.csv\nscore:\n  top_reasons: 2\nscore:\n  currency: EUR\n",
            "score",
            (3, 5),
        ),
        ("data:\n  leads: a.csv\n  leads: b.csv\n", "leads", (2, 3)),
    ],
)
def test_a_repeated_key_is_refused_naming_the_key_its_lines_and_the_file(
    tmp_path, text, key, lines
):
    path = tmp_path / "project.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert f"key '{key}' on line {lines[1]} repeats the key on line {lines[0]}" in message


def test_evaluation_capacity_defaults_and_must_be_positive():
    assert settings_from_dict({"data": {"leads": "x.csv"}}).evaluation.capacity == 200
    ours = settings_from_dict({"data": {"leads": "x.csv"}, "evaluation": {"capacity": 35}})
    assert ours.evaluation.capacity == 35
    with pytest.raises(ConfigError, match=r"evaluation\.capacity"):
        settings_from_dict({"data": {"leads": "x.csv"}, "evaluation": {"capacity": 0}})
    with pytest.raises(ConfigError, match=r"evaluation\.team"):
        settings_from_dict({"data": {"leads": "x.csv"}, "evaluation": {"team": 3}})
