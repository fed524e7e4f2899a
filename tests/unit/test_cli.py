"""Command line exit codes: 0 success, 1 bad data or a refused step, 2 bad config or usage."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadscore import cli
from leadscore.errors import ConfigError, ContractError, DataFileError, ScoringError, TrainingError


@pytest.mark.parametrize("as_of", ["someday", "2026-13-45", ""])
def test_a_bad_as_of_date_is_a_usage_error(tmp_path, as_of):
    result = CliRunner().invoke(
        cli.app,
        ["score", "-c", str(tmp_path / "none.yaml"), "--as-of", as_of, "--out", str(tmp_path)],
    )
    assert result.exit_code == 2, result.output
    assert "--as-of" in result.output


def test_a_missing_config_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli.app, ["validate", "-c", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2, result.output
    assert "config file not found" in result.output


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (cli.UsageError("x"), 2),
        (ContractError([]), 1),
        (DataFileError("x"), 1),
        (ScoringError("x"), 1),
        (TrainingError("x"), 1),
        (KeyError("x"), None),  # not a known error: a bug, shown with its traceback
    ],
)
def test_one_table_maps_errors_to_exit_codes(error, code):
    assert cli.exit_code(error) == code
