"""Typed settings: one YAML file in `configs/` maps a user's columns onto leadscore's roles.

The config is loaded once (`load_config`) and passed down as a `Settings` object; an unknown key,
a wrong type or a missing required key is a `ConfigError` naming the key and the file.
Date-valued keys take a YAML date (`2026-01-01`, unquoted) or a string.
Relative paths in the file are taken relative to the working directory the command runs in.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from leadscore.errors import ConfigError

TARGETS: tuple[str, ...] = ("meeting", "won")
DEFAULT_CONFIG = Path("configs/sample.yaml")


def _date_text(value: Any) -> str | None:
    """A date-valued key as ISO text: YAML reads `2026-01-01` as a date, `'2026-01-01'` as text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.datetime.fromisoformat(text).isoformat(sep=" ").removesuffix(" 00:00:00")
        except ValueError:
            pass
        try:  # also 2026-1-1
            return dt.datetime.strptime(text, "%Y-%m-%d").date().isoformat()
        except ValueError:
            pass
    raise ValueError(f"not a date (YYYY-MM-DD): {value!r}")


DateText = Annotated[str | None, BeforeValidator(_date_text)]
"""A date-valued key: a YAML date or datetime, or a string; kept as ISO text."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataPaths(_Strict):
    """Where the input tables live (CSV or Parquet, chosen by extension)."""

    leads: Path
    activities: Path | None = None
    outcomes: Path | None = None
    feedback: Path = Path("data/feedback")


class Columns(_Strict):
    """User column names for each role of the leads (and outcomes) table."""

    lead_id: str = "lead_id"
    created_at: str | None = "created_at"
    account_id: str | None = None
    meeting_at: str | None = "meeting_at"
    won_at: str | None = "won_at"
    lost_at: str | None = None
    amount: str | None = None
    meeting_flag: str | None = None
    won_flag: str | None = None
    segment: str | None = None
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    missing_values: list[str] = Field(default_factory=list)


class ActivityColumns(_Strict):
    """User column names of the activity event log."""

    lead_id: str = "lead_id"
    occurred_at: str = "occurred_at"
    type: str = "activity_type"
    value: str | None = None


class Labels(_Strict):
    """How outcomes become labels at a snapshot date."""

    meeting_window_days: int = Field(90, gt=0)
    won_window_days: int = Field(180, gt=0)
    export_date: DateText = None
    require_full_window: bool = True

    def window_days(self, target: str) -> int:
        return self.meeting_window_days if target == "meeting" else self.won_window_days


class Snapshots(_Strict):
    """Point-in-time examples: weekly snapshots of open leads, bounded in number."""

    interval_days: int = Field(7, gt=0)
    max_age_days: int = Field(182, ge=0)
    max_per_lead: int = Field(6, gt=0)
    max_examples: int = Field(3_000_000, gt=0)
    seed: int = 0


class Features(_Strict):
    """Activity aggregates computed at each snapshot."""

    windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    max_activity_types: int = Field(30, gt=0)
    max_categories: int = Field(50, gt=1)

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, v: list[int]) -> list[int]:
        if not v or any(w <= 0 for w in v):
            raise ValueError("windows_days must be a non-empty list of positive day counts")
        return sorted(set(v))


class Split(_Strict):
    """Time-ordered validation: the newest share of the time range is held out."""

    validation_share: float = Field(0.2, gt=0, lt=1)
    calibration_share: float = Field(0.2, gt=0, lt=1)


class Model(_Strict):
    """LightGBM capacity and training controls (capacity is chosen with scoring speed in mind)."""

    n_estimators: int = Field(400, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(15, gt=1)
    max_depth: int = Field(6, ge=-1)
    min_child_samples: int = Field(50, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(40, gt=0)
    calibration: Literal["auto", "isotonic", "sigmoid"] = "auto"
    n_jobs: int = 2


class Train(_Strict):
    """Training run settings."""

    seed: int = 42
    min_positives: int = Field(40, ge=1)
    min_negatives: int = Field(40, ge=1)
    model: Model = Field(default_factory=Model)


class Promotion(_Strict):
    """The gate a challenger passes before it becomes champion."""

    min_roc_auc: float = 0.6
    min_pr_auc_lift: float = 1.0
    max_metric_drop: float = 0.0
    metric: Literal["pr_auc", "roc_auc", "log_loss"] = "pr_auc"


class Score(_Strict):
    """Weekly scoring settings."""

    headline_target: Literal["meeting", "won"] = "won"
    grade_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"A": 75.0, "B": 50.0, "C": 25.0}
    )
    explore_share: float = Field(0.05, ge=0, le=1)
    chunk_size: int = Field(100_000, gt=0)  # leads predicted and explained at a time
    part_size: int = Field(100_000, gt=0)  # open leads (and their aggregates) in memory at a time
    psi_threshold: float = Field(0.2, gt=0)
    top_reasons: int = Field(3, ge=1, le=10)
    report_top_n: int = Field(200, gt=0)

    @field_validator("grade_thresholds")
    @classmethod
    def _grades(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"A", "B", "C"}:
            raise ValueError("grade_thresholds needs exactly the keys A, B and C (D is the rest)")
        if not v["A"] > v["B"] > v["C"]:
            raise ValueError("grade_thresholds must satisfy A > B > C")
        return v


class Validation(_Strict):
    """What to do with rows that break the contract."""

    drop_invalid_rows: bool = False


class MLflowSettings(_Strict):
    """Tracking store and registry; a local SQLite file unless told otherwise."""

    tracking_uri: str = "sqlite:///mlruns.db"
    model_name: str = "leadscore"
    experiment: str = "leadscore"
    export_dir: Path = Path("models/champion")


class Settings(_Strict):
    """The whole, validated configuration of one leadscore project."""

    data: DataPaths
    columns: Columns = Field(default_factory=Columns)
    activity_columns: ActivityColumns = Field(default_factory=ActivityColumns)
    labels: Labels = Field(default_factory=Labels)
    snapshots: Snapshots = Field(default_factory=Snapshots)
    features: Features = Field(default_factory=Features)
    split: Split = Field(default_factory=Split)
    train: Train = Field(default_factory=Train)
    promotion: Promotion = Field(default_factory=Promotion)
    score: Score = Field(default_factory=Score)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    validation: Validation = Field(default_factory=Validation)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _some_target(self) -> Settings:
        if not self.targets:
            raise ValueError(
                "columns: at least one outcome is needed "
                "(meeting_at/won_at or meeting_flag/won_flag)"
            )
        if self.data.activities is not None and self.columns.created_at is None:
            raise ValueError("columns.created_at is needed when data.activities is given")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """Targets this data can train, in a fixed order."""
        c = self.columns
        have = {
            "meeting": bool(c.meeting_at or c.meeting_flag),
            "won": bool(c.won_at or c.won_flag),
        }
        return tuple(t for t in TARGETS if have[t])

    @property
    def has_time(self) -> bool:
        """False for data without creation timestamps (one snapshot per lead, random split)."""
        return self.columns.created_at is not None

    @property
    def headline_target(self) -> str:
        """The target that reasons explain; falls back to the only target there is."""
        t = self.score.headline_target
        return t if t in self.targets else self.targets[-1]


def _format_error(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "missing required key"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a date-like scalar that is no date (`2026-13-45`) stays
    text, so the key it belongs to reports it instead of the whole file failing on a bare error."""


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def load_config(path: str | Path = DEFAULT_CONFIG) -> Settings:
    """Read and validate a YAML config; raise `ConfigError` naming the file and the keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return settings_from_dict(raw, path)


def settings_from_dict(raw: dict, path: str | Path = "<config>") -> Settings:
    """Validate a plain mapping as `Settings` (used by `load_config` and by tests)."""
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, Path(path))) from exc
    return settings.model_copy(update={"source_path": Path(path)})


def config_as_yaml(settings: Settings) -> str:
    """The resolved config, as logged with each run."""
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
