"""MLflow tracking of a training run: params, tags, metrics, dataset inputs, files and the model.

Training hands over one frozen `TrainingRecord`; `log_training_run` turns it into one MLflow run
and registers the model with the alias `challenger`. mlflow is imported lazily (`registry`).

The model is logged from code (`log_model`, see `registry`): lead rows in the user's own columns
in (`leadscore.scoring.serve`), the leadscore package as its code and leadscore's runtime
dependencies as its requirements, so it loads in a fresh environment built from them.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, requires
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore import __version__
from leadscore.config import Settings
from leadscore.data.features import FeatureSpec
from leadscore.data.model_input import EVENTS_COLUMN
from leadscore.errors import RegistryError
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.registry import (
    BUNDLE_ARTIFACT,
    CHALLENGER,
    MODEL_ARTIFACT,
    PACKAGE_DIR,
    PYFUNC_CODE,
    RUN_TYPE_TAG,
    SETTINGS_ARTIFACT,
    TRAIN,
    client,
    ensure_experiment,
    mlflow_module,
    set_alias,
    write_bundle,
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
    tuning: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)  # target -> trials
    # the model's input example: a few lead rows as a caller sends them
    # (`data.model_input.model_input_rows`), scored at `example_as_of` (ISO date/time text)
    example_leads: pd.DataFrame | None = field(default=None, repr=False)
    example_as_of: str | None = None


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


def input_schema(settings: Settings, spec: FeatureSpec):
    """The model's input columns under the user's names: the id, and the creation time when the
    model uses the lead's age, are required; the deal amount, every attribute, `events` and the
    activity aggregate columns are optional (missing is a missing value, or no activity).

    Every column is MLflow's `AnyType`: the data contract parses the values (text or numbers,
    text or datetimes, as a CSV or a Parquet file has them), where MLflow's strict types would
    refuse an integer column typed double, or a datetime column typed string.
    """
    mlflow_module()
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    cols = settings.columns
    required = [cols.lead_id, *([cols.created_at] if spec.has_time else [])]
    optional = [*([cols.amount] if cols.amount else []), *spec.categorical, *spec.numeric]
    if spec.has_activities:
        optional += [EVENTS_COLUMN, *spec.activity_columns]
    names = list(dict.fromkeys([*required, *optional]))
    return Schema([ColSpec(AnyType(), name, required=name in required) for name in names])


def output_schema(bundle: LeadScoreModel, top_reasons: int):
    """The columns the model returns per lead, in order (`scoring.serve.score_lead_rows`)."""
    mlflow_module()
    from mlflow.types import ColSpec, DataType, Schema

    text, number = DataType.string, DataType.double
    cols = [("lead_id", text), *((f"p_{t}", number) for t in bundle.targets)]
    cols += [("score", DataType.long), ("grade", text)]
    cols += [("fit_score", number), ("engagement_score", number)]
    for side in ("pos", "neg"):
        for k in range(1, top_reasons + 1):
            name = f"reason_{side}_{k}"
            cols += [(name, text), (f"{name}_code", text), (f"{name}_points", number)]
    cols += [("expected_value", number), ("dormant", DataType.boolean)]
    cols += [("explore", DataType.boolean), ("as_of", text)]
    return Schema([ColSpec(kind, name, required=False) for name, kind in cols])


def model_signature(settings: Settings, bundle: LeadScoreModel):
    """Inputs, outputs and the `as_of` param (a date or time as text; default: now, UTC)."""
    mlflow_module()
    from mlflow.models import ModelSignature
    from mlflow.types import DataType, ParamSchema, ParamSpec

    return ModelSignature(
        inputs=input_schema(settings, bundle.spec),
        outputs=output_schema(bundle, settings.score.top_reasons),
        params=ParamSchema([ParamSpec("as_of", DataType.string, None)]),
    )


def pip_requirements() -> list[str]:
    """leadscore's runtime dependencies (not its extras), pinned to the installed versions; the
    model carries leadscore itself as code."""
    try:
        declared = requires("leadscore") or []
    except PackageNotFoundError as exc:
        raise RegistryError(
            "leadscore is not installed (pip install -e .): its dependencies, the logged "
            "model's requirements, are read from its installed metadata"
        ) from exc
    pins = []
    for req in declared:
        if "extra" in req.partition(";")[2]:  # an extra's dependency (dev, tune)
            continue
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req).group(0)
        pins.append(f"{name}=={installed_version(name)}")
    return pins


def package_copy(folder: Path) -> Path:
    """A copy of the leadscore package without caches, to log as the model's code."""
    target = folder / PACKAGE_DIR.name
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    return target


def log_model(settings: Settings, record: TrainingRecord):
    """Log the model from code (`registry.PYFUNC_CODE`) with the bundle and the config as its
    artifacts, leadscore as its code, its signature and input example, and register it."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    example = None
    if record.example_leads is not None and len(record.example_leads):
        rows = record.example_leads.head(EXAMPLE_ROWS).reset_index(drop=True)
        example = (rows, {"as_of": record.example_as_of}) if record.example_as_of else rows
    with tempfile.TemporaryDirectory(prefix="leadscore-model-") as tmp:
        folder = Path(tmp)
        bundle = write_bundle(record.bundle, folder / "bundle.pkl")
        config = folder / "settings.json"
        config.write_text(settings.model_dump_json(indent=2), encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(PYFUNC_CODE),
            artifacts={BUNDLE_ARTIFACT: str(bundle), SETTINGS_ARTIFACT: str(config)},
            code_paths=[str(package_copy(folder))],
            signature=model_signature(settings, record.bundle),
            input_example=example,
            registered_model_name=settings.mlflow.model_name,
            pip_requirements=pip_requirements(),
            metadata={"leadscore_version": __version__, "events_column": EVENTS_COLUMN},
        )


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
    info = log_model(settings, record)
    version = info.registered_model_version
    version = None if version is None else str(version)
    note = training_note(settings, record, mlflow.get_run(run.info.run_id).info.run_name, version)
    mlflow.set_tag("mlflow.note.content", note)
    if version is not None:
        set_alias(settings, CHALLENGER, version)
        client(settings).update_model_version(settings.mlflow.model_name, version, description=note)
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
