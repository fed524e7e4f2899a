"""MLflow tracking of a training run: params, tags, metrics, dataset inputs, files and the model.

Training hands over one frozen `TrainingRecord`; `log_training_run` turns it into one MLflow run
and registers the model with the alias `challenger`. mlflow is imported lazily (`registry`).
"""

from __future__ import annotations

import json
import math
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore import __version__
from leadscore.config import Settings
from leadscore.modeling import registry
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.registry import (
    CHALLENGER,
    MODEL_ARTIFACT,
    RUN_TYPE_TAG,
    TRAIN,
    ensure_experiment,
    mlflow_module,
    raw_features,
    set_alias,
)

DIGEST_CHARS = 32  # MLflow stores dataset digests in 36 characters
EXAMPLE_ROWS = 5
SCHEMA_SAMPLE_ROWS = 1_000


@dataclass(frozen=True)
class DatasetInput:
    """A frame logged as an MLflow dataset input (name, digest, row count, schema)."""

    frame: pd.DataFrame
    name: str
    context: str
    digest: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingRecord:
    """What a training run hands MLflow: the bundle, its numbers, its inputs and its files."""

    bundle: LeadScoreModel
    metrics: Mapping[str, float]
    counts: Mapping[str, int]
    split_method: str
    input_digests: Mapping[str, str]
    datasets: tuple[DatasetInput, ...]
    artifacts_dir: Path
    example_features: pd.DataFrame = field(repr=False)
    tuning: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)  # target -> trials


@dataclass(frozen=True)
class RunRecord:
    """Where a training run landed in MLflow."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_version: str | None


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the code's repository, or None outside a git checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit or None


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping to dotted keys with text values (lists as JSON), for MLflow params."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple | Mapping):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = "" if value is None else str(value)
    return out


def run_params(settings: Settings, record: TrainingRecord) -> dict[str, str]:
    """The run's params: the whole config (`config.*`) and the row counts (`counts.*`)."""
    params = flatten(settings.model_dump(mode="json"), "config.")
    params.update({k: str(v) for k, v in record.counts.items()})
    return params


def run_tags(settings: Settings, record: TrainingRecord) -> dict[str, str]:
    """The run's tags: split method, targets, each target's model family and calibrator
    (`<target>.family`, `<target>.calibration`), versions and the inputs' sha256 (lineage)."""
    tags = {
        "split": record.split_method,
        "targets": ",".join(settings.targets),
        "leadscore.version": __version__,
        **{f"input.{name}.sha256": d for name, d in record.input_digests.items()},
        **{f"{t}.family": m.family for t, m in record.bundle.targets.items()},
        **{f"{t}.calibration": m.calibrator.method_ for t, m in record.bundle.targets.items()},
    }
    commit = git_commit()
    if commit:
        tags.update({"git_commit": commit, "mlflow.source.git.commit": commit})
    return tags


def source_uri(path: str | Path) -> str:
    """An input's absolute location as a file URI (a URI given as such is kept)."""
    text = str(path)
    if "://" in text:
        return text
    return Path(text).expanduser().resolve().as_uri()


def file_dataset(name: str, path: str | Path, sha256: str):
    """An MLflow dataset of a file by reference only (its absolute URI and sha256, no rows
    read): for inputs streamed rather than held in memory."""
    mlflow_module()
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        source = resolve_dataset_source(source_uri(path))
    return MetaDataset(source, name=name, digest=sha256[:DIGEST_CHARS])


def dataset_of(ds: DatasetInput):
    """An MLflow pandas dataset: all rows counted, schema inferred from a sample of them
    (MLflow's inference looks at every value, minutes at a million rows)."""
    mlflow = mlflow_module()
    with warnings.catch_warnings():
        # a local path matches two equivalent local-artifact source types
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        dataset = mlflow.data.from_pandas(
            ds.frame, source=ds.source, name=ds.name, digest=ds.digest[:DIGEST_CHARS]
        )
    sample = ds.frame.head(SCHEMA_SAMPLE_ROWS)
    dataset.__dict__["schema"] = mlflow.models.infer_signature(sample).inputs  # cached_property
    return dataset


def signature_and_example(bundle: LeadScoreModel, features: pd.DataFrame):
    """Model signature and input example, built from raw features (never from categoricals:
    MLflow would type them as strings and LightGBM would then refuse the category mismatch).

    Every input column is optional: missing values are normal in lead data and the model
    handles them.
    """
    mlflow = mlflow_module()
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    example = raw_features(features.head(EXAMPLE_ROWS), bundle).reset_index(drop=True)
    output = bundle.predict_proba(example)
    inferred = mlflow.models.infer_signature(example, output)
    inputs = Schema([ColSpec(c.type, c.name, required=False) for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs), example


def pip_requirements() -> list[str]:
    """Pinned libraries the pickled bundle needs (the leadscore package itself must be
    installed where the model is loaded)."""
    names = ("mlflow", "cloudpickle", "lightgbm", "scikit-learn", "pandas", "numpy")
    return [f"{name}=={installed_version(name)}" for name in names]


def log_tuning_trials(mlflow, experiment_id: str, tuning: Mapping[str, tuple[dict, ...]]) -> None:
    """One nested run per `train.tune` trial, under the active training run: the trial's
    LightGBM params, its cross-validated log loss and number of trees."""
    for target, trials in tuning.items():
        for trial in trials:
            name = f"{target}-trial-{trial['number']}"
            with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
                mlflow.set_tags(
                    {RUN_TYPE_TAG: TRAIN, "target": target, "tuning.trial": str(trial["number"])}
                )
                mlflow.log_params(trial["params"])
                metrics = {"cv_log_loss": trial["cv_log_loss"], "seconds": trial["seconds"]}
                if trial.get("n_estimators") is not None:
                    metrics["n_estimators"] = float(trial["n_estimators"])
                mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})


@contextmanager
def training_run(settings: Settings) -> Iterator[str]:
    """An MLflow run (type `train`, in the training experiment) open for the whole training, so
    its start and end times span the work; an exception ends it FAILED. Yields its id."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    experiment_id = ensure_experiment(settings, TRAIN)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as run:
        mlflow.set_tag(RUN_TYPE_TAG, TRAIN)
        yield run.info.run_id


def set_run_name(name: str) -> None:
    """Rename the active run (no-op without one)."""
    mlflow = mlflow_module()
    if mlflow.active_run() is not None:
        mlflow.set_tag("mlflow.runName", name)


def log_training_run(settings: Settings, record: TrainingRecord) -> RunRecord:
    """Into the active run (`training_run`; one is opened when none is): params, tags, finite
    metrics, dataset inputs, the files in the record's `artifacts_dir`, `train.tune`'s trials as
    nested runs, and the model, registered with the alias `challenger`."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    if mlflow.active_run() is None:
        with training_run(settings):
            return log_training_run(settings, record)
    run = mlflow.active_run()
    experiment_id = run.info.experiment_id
    tags = run_tags(settings, record)
    mlflow.set_tags(tags)
    mlflow.log_params(run_params(settings, record))
    mlflow.log_metrics({k: float(v) for k, v in record.metrics.items() if math.isfinite(v)})
    for ds in record.datasets:
        mlflow.log_input(dataset_of(ds), context=ds.context, tags=ds.tags or None)
    mlflow.log_artifacts(str(record.artifacts_dir))
    log_tuning_trials(mlflow, experiment_id, record.tuning)
    signature, example = signature_and_example(record.bundle, record.example_features)
    info = mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=registry.LeadScorePyfunc(record.bundle),
        signature=signature,
        input_example=example,
        registered_model_name=settings.mlflow.model_name,
        pip_requirements=pip_requirements(),
    )
    version = info.registered_model_version
    version = None if version is None else str(version)
    note = training_note(settings, record, mlflow.get_run(run.info.run_id).info.run_name, version)
    mlflow.set_tag("mlflow.note.content", note)
    if version is not None:
        set_alias(settings, CHALLENGER, version)
        registry.client(settings).update_model_version(
            settings.mlflow.model_name, version, description=note
        )
    return RunRecord(run.info.run_id, experiment_id, info.model_uri, version)


def training_note(
    settings: Settings, record: TrainingRecord, run_name: str, version: str | None
) -> str:
    """The run's description until the promotion gate writes its own: what was trained on
    what, each target's family and validation figures, and where the model went."""
    parts = [f"Training run '{run_name}', validation split by {record.split_method}."]
    for target, model in record.bundle.targets.items():
        roc = record.metrics.get(f"{target}.roc_auc", math.nan)
        pr = record.metrics.get(f"{target}.pr_auc", math.nan)
        parts.append(f"{target}: {model.family}, ROC AUC {roc:.4f}, PR AUC {pr:.4f}.")
    if version is not None:
        parts.append(
            f"Registered as {settings.mlflow.model_name} version {version} (@{CHALLENGER}); "
            "the promotion gate has not judged it yet."
        )
    return " ".join(parts)
