"""MLflow model registry: the logged model's files, loading, aliases, model info and export.

The whole `LeadScoreModel` bundle travels inside one MLflow pyfunc model, logged "from code"
(`tracking.log_model`): the model's code file is `PYFUNC_CODE` (`leadscore/scoring/
pyfunc_model.py`, which sets `leadscore.scoring.serve.LeadScorePyfunc` as the model), the bundle
(`BUNDLE_ARTIFACT`, pickled) and the training config (`SETTINGS_ARTIFACT`, JSON) are its
artifacts, and the leadscore package itself is copied in as its code (`code_paths`), so it loads
where leadscore is not installed. Modeling refers to the scoring room's file by path only (it is
never imported here: the import order is scoring -> modeling). Models logged before kept a
pickled `LeadScorePyfunc` of this module (raw feature frame in, `p_<target>` out); it still
loads. Versions are registered under `settings.mlflow.model_name`; the newest gets the
alias `challenger` (`tracking.log_training_run`), and `champion` moves only through the promotion
gate (`promotion`). Stages are not used.

mlflow is imported inside functions, after `MLFLOW_DISABLE_TELEMETRY` defaults to true (a user
who sets it to false keeps telemetry on), and the tracking URI is set per call, never at import.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from leadscore.config import Settings
from leadscore.errors import RegistryError
from leadscore.modeling.model import LeadScoreModel

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
EXPORT_INFO = "leadscore_model.json"
BUNDLE_ARTIFACT = "bundle"  # the pickled `LeadScoreModel`, an artifact of the logged model
SETTINGS_ARTIFACT = "settings"  # the training config as JSON (column roles, reason count, ...)
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the leadscore package, logged as code
PYFUNC_CODE = PACKAGE_DIR / "scoring" / "pyfunc_model.py"  # the model's code file (from code)


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


RUN_TYPE_TAG = "leadscore.run_type"
# the MLflow UI opens an experiment of this kind on its runs table (not its GenAI overview)
EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"
TRAIN, SCORE, BACKTEST = "train", "score", "backtest"  # run types; each its own experiment


def experiment_name(settings: Settings, run_type: str = TRAIN) -> str:
    """Training runs go to `mlflow.experiment`, the others to `<experiment>-<run type>`
    (`leadscore-score`, `leadscore-backtest`), so each experiment's table has one kind of run."""
    base = settings.mlflow.experiment
    return base if run_type == TRAIN else f"{base}-{run_type}"


def ensure_experiment(settings: Settings, run_type: str = TRAIN) -> str:
    """Id of the experiment of `run_type`'s runs, created (with its artifact root) when
    missing."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    name = experiment_name(settings, run_type)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(
        name,
        artifact_location=artifact_root(settings.mlflow.tracking_uri),
        tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT},
    )


# --- the pyfunc model ------------------------------------------------------------------------


def write_bundle(bundle: LeadScoreModel, path: Path) -> Path:
    """Pickle the bundle to `path` (the logged model's `BUNDLE_ARTIFACT`)."""
    with open(path, "wb") as fh:
        pickle.dump(bundle, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def read_bundle(path: str | Path) -> LeadScoreModel:
    """The bundle pickled by `write_bundle` (a model's own artifact: trusted like its code)."""
    with open(path, "rb") as fh:
        bundle = pickle.load(fh)
    if not isinstance(bundle, LeadScoreModel):
        raise RegistryError(f"{path}: not a leadscore model bundle")
    return bundle


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
        """The wrapper of models logged before the model was logged from code (kept so that
        their pickles load): raw feature frame in, `p_<target>` out.

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
    """The registry URI of one version of the configured model."""
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
