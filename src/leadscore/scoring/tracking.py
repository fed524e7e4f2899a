"""The scoring run and the registry: the model that scores, and the MLflow run of each scoring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.features import slug
from leadscore.errors import RegistryError, ScoringError
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.registry import (
    RUN_TYPE_TAG,
    SCORE,
    ensure_experiment,
    load_bundle,
    mlflow_module,
    model_info,
)
from leadscore.modeling.tracking import file_dataset, flatten


@dataclass(frozen=True)
class ModelRef:
    """Which model produced the scores."""

    name: str
    version: str
    run_id: str
    uri: str


@dataclass(frozen=True)
class ScoringRecord:
    """What the MLflow scoring run records: counts, the score distribution and drift."""

    n_scored: int
    n_skipped: int
    n_explore: int
    grade_counts: Mapping[str, int]
    score_hist: np.ndarray
    drift: pd.DataFrame
    drift_warning: bool
    manifest: Path | None = None
    n_dormant: int = 0
    data_through: str | None = None  # the newest timestamp in the input (YYYY-MM-DD ...)
    stale_data: bool = False  # the as-of date is too far after it
    # the files read, by role: {"leads": {"path": ..., "sha256": ...}, ...} (as in the manifest)
    inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    started_ms: int | None = None  # when the scoring began (epoch milliseconds)


def load_scoring_model(settings: Settings, uri: str) -> tuple[LeadScoreModel, ModelRef]:
    """The model bundle at `uri` and what to call it in the outputs; a clear error if missing."""
    try:
        info = model_info(uri, settings.mlflow.tracking_uri)
        bundle = load_bundle(uri, settings.mlflow.tracking_uri)
    except RegistryError as exc:
        raise ScoringError(
            f"{exc}\n(train and promote a model first: leadscore train --config CFG --promote, "
            "or pass --model with a model URI or an exported model folder)"
        ) from exc
    name = info.name or Path(uri).name
    return bundle, ModelRef(name, info.version or "", info.run_id or "", uri)


def scoring_metrics(record: ScoringRecord) -> dict[str, float]:
    """Counts, score mean and median, share per grade and PSI per feature."""
    scores = np.repeat(np.arange(101), record.score_hist)
    metrics = {
        "n_scored": record.n_scored,
        "n_skipped": record.n_skipped,
        "n_explore": record.n_explore,
        "n_dormant": record.n_dormant,
        "score_mean": float(scores.mean()) if len(scores) else 0.0,
        "score_median": float(np.median(scores)) if len(scores) else 0.0,
    }
    metrics.update(
        {f"grade_{g}_share": c / max(record.n_scored, 1) for g, c in record.grade_counts.items()}
    )
    metrics.update({f"psi.{_metric_key(r.feature)}": r.psi for r in record.drift.itertuples()})
    return metrics


def scoring_run_name(ref: ModelRef, as_of: pd.Timestamp) -> str:
    """'score as of 2026-11-08 v3' (the model folder's name for a model outside the registry)."""
    model = f"v{ref.version}" if ref.version else ref.name
    return f"score as of {as_of:%Y-%m-%d} {model}"


def scoring_params(settings: Settings, ref: ModelRef, as_of: pd.Timestamp) -> dict[str, str]:
    """The run's params: as-of date, model URI and the whole config (`config.*`)."""
    params = flatten(settings.model_dump(mode="json"), "config.")
    params.update({"as_of": f"{as_of:%Y-%m-%d}", "model_uri": ref.uri})
    return params


def scoring_tags(ref: ModelRef, as_of: pd.Timestamp, record: ScoringRecord) -> dict[str, str]:
    """Run type, the model that scored (name, version, URI and its training run) and the
    data's state."""
    model = {"name": ref.name, "version": ref.version, "uri": ref.uri, "run_id": ref.run_id}
    return {
        RUN_TYPE_TAG: SCORE,
        "as_of": f"{as_of:%Y-%m-%d}",
        **{f"leadscore.model_{k}": v for k, v in model.items()},
        "model_name": ref.name,
        "model_version": ref.version,
        "model_run_id": ref.run_id,
        "drift_warning": str(record.drift_warning).lower(),
        "stale_data": str(record.stale_data).lower(),
        "data_through": record.data_through or "",
    }


def log_scoring_run(
    settings: Settings, ref: ModelRef, as_of: pd.Timestamp, record: ScoringRecord
) -> str:
    """One MLflow run per scoring, in the scoring experiment, from the scoring's start: its
    input files as dataset inputs (absolute URI and sha256), params, the model's tags, counts,
    score distribution, drift (PSI) and the manifest. Returns the run's id."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    experiment_id = ensure_experiment(settings, SCORE)
    created = mlflow.MlflowClient().create_run(
        experiment_id,
        start_time=record.started_ms,
        run_name=scoring_run_name(ref, as_of),
        tags=scoring_tags(ref, as_of, record),
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        mlflow.log_params(scoring_params(settings, ref, as_of))
        for name, found in record.inputs.items():
            dataset = file_dataset(name, found["path"], found["sha256"])
            tags = {"sha256": found["sha256"], "role": name}
            mlflow.log_input(dataset, context="scoring", tags=tags)
        mlflow.log_metrics(scoring_metrics(record))
        mlflow.log_dict(
            {"score": list(range(101)), "count": record.score_hist.tolist()},
            "score_distribution.json",
        )
        mlflow.log_text(record.drift.to_csv(index=False), "drift_psi.csv")
        if record.manifest is not None:
            mlflow.log_artifact(str(record.manifest))
        return run.info.run_id


def _metric_key(name: str) -> str:
    return slug(name)[:200]
