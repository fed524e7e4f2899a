"""The Spark engine's config, its clear failure without pyspark or Java, and the marker rows its
reading steps hand back (no Spark session here: see tests/model/test_spark.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import leadscore.spark as spark_room
from leadscore import cli
from leadscore.config import settings_from_dict
from leadscore.errors import ConfigError, Problem, UsageError
from leadscore.spark.parts import (
    INFO,
    KIND,
    PROBLEM,
    marker_rows,
    problem_json,
    problem_of,
    spark_arrow,
    with_markers,
)

BASE = {"data": {"leads": "leads.csv"}}


def test_engine_and_spark_section_have_defaults_and_pass_spark_conf_through():
    settings = settings_from_dict(BASE)
    assert settings.score.engine == "local"
    assert settings.spark.master == "local[*]"
    conf = {"spark.executor.memory": "8g"}
    chosen = settings_from_dict(
        {**BASE, "score": {"engine": "spark"}, "spark": {"master": "yarn", "conf": conf}}
    )
    assert chosen.score.engine == "spark"
    assert chosen.spark.master == "yarn" and chosen.spark.conf == conf


@pytest.mark.parametrize(
    "raw",
    [
        {"score": {"engine": "dask"}},
        {"spark": {"master": ""}},
        {"spark": {"part_size": 0}},
        {"spark": {"masters": "local[2]"}},  # unknown keys are refused
    ],
)
def test_a_bad_engine_or_spark_setting_is_a_config_error(raw):
    with pytest.raises(ConfigError):
        settings_from_dict({**BASE, **raw})


def test_without_java_the_spark_engine_names_what_to_install(monkeypatch):
    monkeypatch.setattr(spark_room.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    if spark_room.score_with_spark is None:
        pytest.skip("pyspark is not installed (its message is tested below)")
    with pytest.raises(UsageError, match=r"java.*Java 17"):
        spark_room.spark_scorer()


def test_without_pyspark_the_spark_engine_names_the_extra(monkeypatch):
    monkeypatch.setattr(spark_room, "score_with_spark", None)
    with pytest.raises(UsageError, match=r"pip install 'leadscore\[spark\]'"):
        spark_room.spark_scorer()


def test_score_engine_spark_without_pyspark_exits_2(monkeypatch, tmp_path):
    monkeypatch.setattr(spark_room, "score_with_spark", None)
    config = tmp_path / "project.yaml"
    config.write_text("data:\n  leads: leads.csv\n", encoding="utf-8")
    args = ["score", "-c", str(config), "--as-of", "2026-11-01", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli.app, [*args, "--engine", "spark"])
    assert result.exit_code == 2, result.output
    assert "leadscore[spark]" in result.output


def test_marker_rows_carry_only_their_kind_and_info():
    schema = with_markers(pa.schema([("lead_id", pa.string()), ("at", pa.timestamp("ns"))]))
    assert schema.field("at").type == pa.timestamp("us")  # as Spark holds timestamps
    problem = Problem("leads.csv", "not a number", "amount", None, "abc", "L1")
    batch = marker_rows(schema, PROBLEM, [problem_json(problem)])
    assert batch.column(KIND).to_pylist() == [PROBLEM]
    assert batch.column("lead_id").null_count == 1
    assert problem_of(batch.column(INFO)[0].as_py()) == problem
    assert spark_arrow(schema).metadata is None
