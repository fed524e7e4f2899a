"""MLflow: the logged model, the run's record, registry aliases, the promotion gate and export.

The whole `LeadScoreModel` bundle travels inside one MLflow pyfunc model (`LeadScorePyfunc`,
pickled with the model); its `predict` takes the raw feature frame and returns `p_<target>`
probabilities. Versions are registered under `settings.mlflow.model_name`; the newest gets the
alias `challenger`, and `champion` moves only through the promotion gate. Stages are not used.

mlflow is imported inside functions, after `MLFLOW_DISABLE_TELEMETRY` defaults to true (a user
who sets it to false keeps telemetry on), and the tracking URI is set per call, never at import.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from leadscore.config import Promotion, Settings
from leadscore.errors import RegistryError
from leadscore.modeling.model import LeadScoreModel

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
EXPORT_INFO = "leadscore_model.json"
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False}
DIGEST_CHARS = 32  # MLflow stores dataset digests in 36 characters
EXAMPLE_ROWS = 5
SCHEMA_SAMPLE_ROWS = 1_000


# --- mlflow access ---------------------------------------------------------------------------


def mlflow_module(tracking_uri: str | None = None):
    """Import mlflow with telemetry off unless the user turned it on; set the tracking URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow


def client(settings: Settings):
    """An MlflowClient on the configured tracking store (also set as the current one)."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    return mlflow.MlflowClient(tracking_uri=settings.mlflow.tracking_uri)


def artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment keeps artifacts: `mlartifacts/` beside a SQLite store.

    Other stores (a tracking server, a file store) choose for themselves (None).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(unquote(tracking_uri.removeprefix("sqlite:///")))
    return (db.parent.resolve() / "mlartifacts").as_uri()


def ensure_experiment(settings: Settings) -> str:
    """Id of the configured experiment, created (with its artifact root) when missing."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    name = settings.mlflow.experiment
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(
        name, artifact_location=artifact_root(settings.mlflow.tracking_uri)
    )


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


# --- the pyfunc model ------------------------------------------------------------------------


def predict_frame(bundle: LeadScoreModel, features: pd.DataFrame) -> pd.DataFrame:
    """`p_<target>` probabilities for a raw feature frame (text categories, numbers)."""
    if not isinstance(features, pd.DataFrame):
        features = pd.DataFrame(features)
    missing = [c for c in bundle.spec.columns if c not in features.columns]
    if missing:
        raise RegistryError(f"input is missing feature column(s): {missing}")
    return bundle.predict_proba(features)


def _make_pyfunc_class() -> type:
    mlflow = mlflow_module()

    class LeadScorePyfunc(mlflow.pyfunc.PythonModel):
        """MLflow wrapper around a whole `LeadScoreModel` bundle.

        `model_input` is typed as a DataFrame: MLflow infers no schema from that hint and
        validates inputs against the model's explicit signature instead.
        """

        def __init__(self, bundle: LeadScoreModel):
            self.bundle = bundle

        def predict(
            self, context, model_input: pd.DataFrame, params: dict | None = None
        ) -> pd.DataFrame:
            """Probabilities `p_<target>` for each row of the raw feature frame."""
            return predict_frame(self.bundle, model_input)

    LeadScorePyfunc.__module__ = __name__
    LeadScorePyfunc.__qualname__ = "LeadScorePyfunc"
    return LeadScorePyfunc


def __getattr__(name: str):
    """`LeadScorePyfunc` is built on first use, so importing this module never imports mlflow.

    It is then a module attribute like any other, so pickles refer to it by name.
    """
    if name == "LeadScorePyfunc":
        cls = _make_pyfunc_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def raw_features(features: pd.DataFrame, bundle: LeadScoreModel) -> pd.DataFrame:
    """Feature frame as a caller sends it: categories as text (None for missing), float64."""
    spec = bundle.spec
    out = {}
    for col in spec.columns:
        if col in spec.categorical:
            text = features[col].astype("string")
            out[col] = text.astype(object).where(text.notna(), None)
        else:
            out[col] = pd.to_numeric(features[col], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=features.index)


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
    from importlib.metadata import version

    names = ("mlflow", "cloudpickle", "lightgbm", "scikit-learn", "pandas", "numpy")
    return [f"{name}=={version(name)}" for name in names]


# --- logging a training run ------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInput:
    """A frame logged as an MLflow dataset input (name, digest, row count, schema)."""

    frame: pd.DataFrame
    name: str
    context: str
    digest: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True)
class RunRecord:
    """Where a training run landed in MLflow."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_version: str | None


def log_training_run(
    settings: Settings,
    bundle: LeadScoreModel,
    *,
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    tags: Mapping[str, str],
    artifacts_dir: Path,
    datasets: list[DatasetInput],
    example_features: pd.DataFrame,
    run_name: str | None = None,
) -> RunRecord:
    """One MLflow run: params, tags, finite metrics, dataset inputs, the files in
    `artifacts_dir`, and the model, registered with the alias `challenger`."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    experiment_id = ensure_experiment(settings)
    all_tags = dict(tags)
    commit = git_commit()
    if commit:
        all_tags.update({"git_commit": commit, "mlflow.source.git.commit": commit})
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(all_tags)
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        for ds in datasets:
            mlflow.log_input(dataset_of(ds), context=ds.context, tags=ds.tags or None)
        mlflow.log_artifacts(str(artifacts_dir))
        signature, example = signature_and_example(bundle, example_features)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=__getattr__("LeadScorePyfunc")(bundle),
            signature=signature,
            input_example=example,
            registered_model_name=settings.mlflow.model_name,
            pip_requirements=pip_requirements(),
        )
        version = info.registered_model_version
        version = None if version is None else str(version)
        if version is not None:
            set_alias(settings, CHALLENGER, version)
        return RunRecord(run.info.run_id, experiment_id, info.model_uri, version)


# --- registry --------------------------------------------------------------------------------


def set_alias(settings: Settings, alias: str, version: str) -> None:
    """Point `alias` of the configured model at `version`."""
    client(settings).set_registered_model_alias(settings.mlflow.model_name, alias, str(version))


def alias_version(settings: Settings, alias: str):
    """The model version behind `alias`, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client(settings).get_model_version_by_alias(settings.mlflow.model_name, alias)
    except MlflowException:
        return None


def tag_version(settings: Settings, version: str, run_id: str | None, tags: Mapping[str, str]):
    """Set tags on a model version and on the run that produced it."""
    c = client(settings)
    for key, value in tags.items():
        c.set_model_version_tag(settings.mlflow.model_name, str(version), key, str(value))
        if run_id:
            c.set_tag(run_id, key, str(value))


def version_uri(settings: Settings, version: str) -> str:
    return f"models:/{settings.mlflow.model_name}/{version}"


def load_bundle(uri: str, tracking_uri: str | None = None) -> LeadScoreModel:
    """The `LeadScoreModel` inside an MLflow model: `models:/NAME@champion`, `models:/NAME/3`,
    `runs:/...`, or a local model directory (such as the exported champion)."""
    mlflow = mlflow_module(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"cannot load model '{uri}': {exc}") from exc
    bundle = getattr(loaded.unwrap_python_model(), "bundle", None)
    if not isinstance(bundle, LeadScoreModel):
        raise RegistryError(f"'{uri}' is not a leadscore model")
    return bundle


@dataclass(frozen=True)
class ModelReference:
    """Which model a URI points at: registered name, version and the run that trained it."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    aliases: tuple[str, ...] = ()


def _parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> (name, version, alias)."""
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, None, alias
    name, _, version = rest.partition("/")
    return name, version or None, None


def model_info(uri: str, tracking_uri: str | None = None) -> ModelReference:
    """Name, version and run id of a model URI (a registry URI, or an exported directory)."""
    mlflow = mlflow_module(tracking_uri)
    from mlflow.exceptions import MlflowException

    if uri.startswith("models:/"):
        name, version, alias = _parse_models_uri(uri)
        c = mlflow.MlflowClient()
        try:
            mv = (
                c.get_model_version_by_alias(name, alias)
                if alias
                else c.get_model_version(name, version)
            )
        except MlflowException as exc:
            raise RegistryError(f"no model version at '{uri}': {exc}") from exc
        return ModelReference(uri, mv.name, str(mv.version), mv.run_id, tuple(mv.aliases or ()))
    path = Path(urlparse(uri).path if uri.startswith("file:") else uri)
    info_file = path / EXPORT_INFO
    if info_file.is_file():
        raw = json.loads(info_file.read_text(encoding="utf-8"))
        return ModelReference(
            uri,
            raw.get("name"),
            raw.get("version"),
            raw.get("run_id"),
            tuple(raw.get("aliases", ())),
        )
    try:
        info = mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"cannot read model '{uri}': {exc}") from exc
    return ModelReference(uri, None, None, info.run_id)


def export_model(settings: Settings, version: str, export_dir: Path | None = None) -> Path:
    """Copy a registered version to a plain MLflow model directory, atomically.

    The new copy is downloaded into a temporary folder beside the target; only when it is
    complete does it replace the old one (which is kept until then).
    """
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    target = Path(export_dir or settings.mlflow.export_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    old: Path | None = None
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=version_uri(settings, version), dst_path=str(tmp)
            )
        )
        if local.resolve() != tmp.resolve():  # the model landed in a subfolder: lift it up
            staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
            os.rmdir(staged)
            os.replace(local, staged)
            shutil.rmtree(tmp)
            tmp = staged
        mv = client(settings).get_model_version(settings.mlflow.model_name, str(version))
        info = {
            "name": settings.mlflow.model_name,
            "version": str(version),
            "run_id": mv.run_id,
            "aliases": [CHAMPION],
            "source": version_uri(settings, version),
        }
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


# --- the promotion gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class TargetGate:
    """The gate's figures for one target, on the challenger's validation rows."""

    target: str
    metric: str
    challenger: float
    champion: float | None
    roc_auc: float
    pr_auc: float
    base_rate: float
    rows: int
    passed: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger became champion, and why."""

    promoted: bool
    challenger_version: str | None
    champion_version: str | None
    gates: tuple[TargetGate, ...] = ()
    reasons: tuple[str, ...] = ()
    exported_to: Path | None = None

    def tags(self) -> dict[str, str]:
        """The decision and its figures as MLflow tags."""
        out = {
            "promotion.decision": "promoted" if self.promoted else "refused",
            "promotion.champion_version": self.champion_version or "",
        }
        if self.reasons:
            out["promotion.reasons"] = "; ".join(self.reasons)[:4900]
        for g in self.gates:
            prefix = f"promotion.{g.target}"
            out[f"{prefix}.{g.metric}.challenger"] = f"{g.challenger:.6f}"
            if g.champion is not None:
                out[f"{prefix}.{g.metric}.champion"] = f"{g.champion:.6f}"
            out[f"{prefix}.roc_auc"] = f"{g.roc_auc:.6f}"
            out[f"{prefix}.pr_auc"] = f"{g.pr_auc:.6f}"
            out[f"{prefix}.base_rate"] = f"{g.base_rate:.6f}"
            out[f"{prefix}.passed"] = str(g.passed).lower()
        return out


def gate_target(
    target: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    promotion: Promotion,
) -> TargetGate:
    """Check one target: minimum ROC AUC, PR AUC against the base rate, and no drop in the
    configured metric of more than `max_metric_drop` against the champion (same rows)."""
    metric = promotion.metric
    reasons = []
    roc, pr, base = challenger["roc_auc"], challenger["pr_auc"], challenger["base_rate"]
    if not roc >= promotion.min_roc_auc:
        reasons.append(f"{target}: ROC AUC {roc:.4f} < minimum {promotion.min_roc_auc:.4f}")
    floor = promotion.min_pr_auc_lift * base
    if not pr >= floor:
        reasons.append(
            f"{target}: PR AUC {pr:.4f} < {promotion.min_pr_auc_lift:g} x base rate {base:.4f}"
        )
    champ_value = None
    if champion is not None:
        champ_value = float(champion[metric])
        value = float(challenger[metric])
        drop = champ_value - value if HIGHER_IS_BETTER[metric] else value - champ_value
        if not drop <= promotion.max_metric_drop:
            reasons.append(
                f"{target}: {metric} {value:.4f} is worse than the champion's {champ_value:.4f} "
                f"(by {drop:.4f}; allowed {promotion.max_metric_drop:g})"
            )
    return TargetGate(
        target,
        metric,
        float(challenger[metric]),
        champ_value,
        float(roc),
        float(pr),
        float(base),
        int(challenger.get("n", 0)),
        not reasons,
        tuple(reasons),
    )


def promotion_decision(
    challenger: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    promotion: Promotion,
    challenger_version: str | None,
    champion_version: str | None,
) -> PromotionDecision:
    """Promote only when every target passes its gate (a first model: the minimums only)."""
    gates = tuple(
        gate_target(
            target,
            metrics,
            None if champion is None else champion.get(target),
            promotion,
        )
        for target, metrics in challenger.items()
    )
    reasons = tuple(r for g in gates for r in g.reasons)
    return PromotionDecision(not reasons, challenger_version, champion_version, gates, reasons)
