"""The Spark engine (local mode) gives the local engine's results on the sample: the same lead
ids, probabilities (to 1e-9), scores, grades, reasons, trend and counts; contract problems
fail the run as they do locally. Skipped, saying why, without pyspark or Java."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import leadscore.spark as spark_room
from leadscore.cli import app
from leadscore.config import SparkSettings
from leadscore.data.io import read_table, write_csv
from leadscore.errors import ContractError
from leadscore.modeling.train import run_training
from leadscore.scoring.run import run_scoring
from leadscore.spark import spark_missing, spark_scorer

MISSING = spark_missing()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=f"Spark engine unavailable: {MISSING}"),
]

AS_OF = pd.Timestamp("2026-11-01")
NEXT_WEEK = AS_OF + pd.Timedelta(days=7)
SPARK = {
    "master": "local[2]",
    "part_size": 500,
    "conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"},
}


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the module (starting one takes ~10 s); the engine reuses it."""
    session = spark_room.engine.spark_session(SparkSettings(**SPARK))  # needs pyspark
    yield session
    session.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, settings_in):
    store = tmp_path_factory.mktemp("spark-store")
    settings = settings_in(store, train={"min_positives": 10, "min_negatives": 10}, spark=SPARK)
    run_training(settings, promote=True)
    return settings


def scores(folder) -> pd.DataFrame:
    table = pq.read_table(folder / "scores.parquet").to_pandas()
    return table.sort_values("lead_id").reset_index(drop=True)


def assert_same_scores(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(local.columns) == list(spark.columns)
    assert local["lead_id"].tolist() == spark["lead_id"].tolist()
    probs = [c for c in local.columns if c.startswith("p_")]
    for col in probs:
        np.testing.assert_allclose(spark[col], local[col], rtol=0, atol=1e-9)
    for col in local.columns:
        if col in probs or col == "reasons":
            continue
        pd.testing.assert_series_equal(spark[col], local[col], check_names=True)
    assert [str(r) for r in spark["reasons"]] == [str(r) for r in local["reasons"]]


def test_spark_scores_like_local_including_trend_and_reasons(trained, spark, tmp_path):
    local, on_spark = tmp_path / "local", tmp_path / "spark"
    run_scoring(trained, AS_OF, local)
    run_scoring(trained, NEXT_WEEK, local)
    run_scoring(trained, AS_OF, on_spark, scorer=spark_scorer())
    config = tmp_path / "project.yaml"  # the second week through the command line
    config.write_text(yaml.safe_dump(trained.model_dump(mode="json", exclude={"source_path"})))
    week = f"{NEXT_WEEK:%Y-%m-%d}"
    args = ["score", "-c", str(config), "--as-of", week, "--out", str(on_spark)]
    result = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert result.exit_code == 0, result.output

    now_local, now_spark = scores(local), scores(on_spark)
    assert_same_scores(now_local, now_spark)
    assert now_local["trend"].isin(["up", "down", "steady"]).all()
    assert (now_spark["trend"] != "steady").any()  # a trend that can differ, not all one value
    assert now_spark["reason_pos_1"].notna().any()
    effects = [
        pq.read_table(f / "contributions.parquet").to_pandas().sort_values("lead_id")
        for f in (local, on_spark)
    ]
    pd.testing.assert_frame_equal(
        effects[0].reset_index(drop=True), effects[1].reset_index(drop=True)
    )
    manifests = [json.loads((f / "manifest.json").read_text()) for f in (local, on_spark)]
    assert manifests[0]["counts"] == manifests[1]["counts"]
    assert manifests[0]["drift_warnings"] == manifests[1]["drift_warnings"]
    parts = pq.read_table(on_spark / "scores_parts").to_pandas()
    assert len(parts) == len(now_spark) * 2  # one partition per as-of date
    assert (on_spark / "report.html").is_file() and (on_spark / "report.xlsx").is_file()


def test_spark_reports_contract_problems_like_local(trained, spark, tmp_path):
    leads = read_table(trained.data.leads)
    bad = pd.concat([leads, leads.head(1)])  # one id twice
    path = tmp_path / "leads.csv"
    write_csv(bad, path)
    with pytest.raises(ContractError, match="duplicate lead id") as local:
        run_scoring(trained, AS_OF, tmp_path / "local", leads_path=path)
    with pytest.raises(ContractError, match="duplicate lead id") as on_spark:
        run_scoring(trained, AS_OF, tmp_path / "spark", leads_path=path, scorer=spark_scorer())
    assert {p.lead_id for p in on_spark.value.problems} == {p.lead_id for p in local.value.problems}
