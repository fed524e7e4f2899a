"""Scoring on Spark (`score.engine: spark`): the same per-part scoring as the local engine, with
Spark reading the leads and events, joining them by lead id and scoring the parts on its
workers. pyspark is optional (`pip install 'leadscore[spark]'`) and needs Java 17 or newer:
importing this room never fails without them; `spark_scorer` says what to install."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from leadscore.errors import UsageError

try:  # the optional dependency: the base install has no pyspark
    from leadscore.spark.engine import score_with_spark
except ModuleNotFoundError as exc:  # only pyspark (or its py4j) missing is expected
    if (exc.name or "").split(".")[0] not in ("pyspark", "py4j"):
        raise
    score_with_spark = None

INSTALL_SPARK = "pip install 'leadscore[spark]'"
INSTALL_JAVA = "Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless)"


def spark_missing() -> str | None:
    """What the Spark engine lacks on this machine (pyspark, Java), None when nothing."""
    if score_with_spark is None:
        return f"pyspark is not installed: {INSTALL_SPARK} (it needs {INSTALL_JAVA})"
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (home and (Path(home) / "bin" / "java").is_file()):
        return f"java is not on the PATH: Spark needs {INSTALL_JAVA}"
    return None


def spark_scorer():
    """The Spark engine as a scorer for `run_scoring`; `UsageError` (exit 2) naming what to
    install when pyspark or Java is missing."""
    missing = spark_missing()
    if missing is not None:
        raise UsageError(f"--engine spark: {missing}")
    return score_with_spark
