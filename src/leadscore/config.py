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
# the role keys of `Columns`: their canonical names are taken in the data read
ROLE_KEYS: tuple[str, ...] = (
    "lead_id", "created_at", "account_id", "meeting_at", "won_at", "lost_at", "amount",
    "meeting_flag", "won_flag",
)  # fmt: skip
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
    accounts: Path | None = None  # optional: one row per account (needs columns.account_id)


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
    # shown, never features: lead columns that say who the lead is (company, contact name,
    # title, ...) and the column naming its owner (the sales rep or queue). They are carried
    # under their own names into scores.parquet/csv (right after lead_id, owner last), the
    # workbook and the HTML page; the leads file must have them. Default: none
    display: list[str] = Field(default_factory=list)
    owner: str | None = None

    @property
    def shown(self) -> list[str]:
        """The display columns, then the owner column: what the outputs carry after lead_id."""
        return [*self.display, *([self.owner] if self.owner else [])]

    @model_validator(mode="after")
    def _shown_are_not_roles_or_features(self) -> Columns:
        roles = {r: getattr(self, r) for r in ROLE_KEYS}
        features = {*(self.categorical or []), *(self.numeric or [])}
        if len(set(self.shown)) < len(self.shown):
            raise ValueError("display: a column is listed twice (display and owner together)")
        keyed = [("display", c) for c in self.display]
        keyed += [("owner", self.owner)] if self.owner else []
        for key, name in keyed:
            if name in roles or name in roles.values():
                raise ValueError(f"{key}: {name!r} is a role column; it is shown already")
            if name in features:
                raise ValueError(
                    f"{key}: {name!r} is also an attribute (categorical/numeric); shown columns "
                    "are never features"
                )
        return self


class ActivityColumns(_Strict):
    """User column names of the activity event log."""

    lead_id: str = "lead_id"
    occurred_at: str = "occurred_at"
    type: str = "activity_type"
    value: str | None = None


class AccountColumns(_Strict):
    """User column names of the accounts table (`data.accounts`): the id and attribute roles.

    Attributes (categorical, numeric; inferred when both are null) are account features and join
    onto each of the account's leads as `account__<column>`, unless the leads file has a column
    of that name (the lead's own value stands). Display columns are shown, never features.
    """

    account_id: str = "account_id"
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    display: list[str] = Field(default_factory=list)


class AccountModel(_Strict):
    """Account-based scoring: an account-level model per target (see README, "Accounts")."""

    # fewer training accounts or positive account snapshots than this per target: no account
    # model, the account's probability is the roll-up of its leads' (`rollup`)
    min_accounts: int = Field(200, ge=1)
    min_positives: int = Field(30, ge=1)
    # lead columns saying the person's role in the buying group (job level, function): counted
    # per value among an account's open leads, and reported as covered or missing
    roles: list[str] = Field(default_factory=list)
    # the fallback and baseline: "noisy_or" 1 - prod(1 - p_lead), or "max" of p_lead
    rollup: Literal["noisy_or", "max"] = "noisy_or"
    max_role_values: int = Field(8, gt=0)  # per role column, the most frequent values counted
    # ship the account model only when it is not worse than the roll-up (`rollup`) of the lead
    # model on the same validation accounts (the lead gate's tolerances); else the roll-up
    require_beats_rollup: bool = True


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
    # LightGBM monotone constraints (+1) on every activity count: more events of a type never
    # lower a lead's probability. Default on; measured cost on the sample ROC AUC -0.002, meeting
    # PR AUC about -5% (docs/benchmarks.md)
    monotone_activity: bool = True

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
    # "auto": per candidate, its own probabilities ("none"), a level-only "shift" of its
    # log-odds or Platt ("sigmoid"), whichever scores best forward-chained over the folds
    # (modeling/selection.py)
    calibration: Literal["auto", "isotonic", "sigmoid", "shift", "none"] = "auto"
    n_jobs: int = 2


class Tune(_Strict):
    """Optuna search of LightGBM's capacity on the time-ordered folds (needs the `tune` extra)."""

    trials: int = Field(0, ge=0)  # per target; 0: no search, the `train.model` settings
    timeout_s: float = Field(600.0, gt=0)  # per target: no new trial starts after this


class Train(_Strict):
    """Training run settings."""

    seed: int = 42
    min_positives: int = Field(40, ge=1)
    min_negatives: int = Field(40, ge=1)
    model: Model = Field(default_factory=Model)
    # model selection on time-ordered folds (modeling/selection.py, README "How the model is
    # trained"): the candidate families (linear: regularised logistic regression; blend: a
    # weighted sum of the linear model's and LightGBM's log-odds)
    families: tuple[Literal["logreg_spline", "lightgbm", "blend"], ...] = Field(
        ("logreg_spline", "lightgbm", "blend"), min_length=1
    )
    cv_folds: int = Field(3, ge=2, le=10)  # expanding-window folds over the training period
    cv_min_train_share: float = Field(0.5, gt=0, lt=1)  # oldest leads only ever trained on
    # inverse regularisation strengths tried on the folds (1.0: the logreg baseline's)
    linear_C: tuple[float, ...] = Field((0.03, 0.1, 0.3, 1.0), min_length=1)
    linear_knots: tuple[int, ...] = Field((0,), min_length=1)  # 0: numbers linear (baseline)
    # a more complex family must beat a simpler one by this many standard errors of the paired
    # out-of-fold log-loss difference (grouped by lead); within it the simpler one is kept
    selection_tolerance: float = Field(1.0, ge=0)
    # where the calibrator (and a blend's weights) is fitted: "newest", the newest held-out
    # period (tracks a base rate that moves over time); "all", every out-of-fold row
    calibration_level: Literal["newest", "all"] = "newest"
    tune: Tune = Field(default_factory=Tune)


class Promotion(_Strict):
    """The gate a challenger passes before it becomes champion."""

    min_roc_auc: float = 0.6
    min_pr_auc_lift: float = 1.0
    # how much worse than the champion the challenger may be in `metric` (0: it must be better)
    max_metric_drop: float = Field(0.0, ge=0)
    metric: Literal["pr_auc", "roc_auc", "log_loss"] = "pr_auc"
    # the challenger against its own baselines on the same validation rows
    max_roc_auc_below_baseline: float = Field(0.005, ge=0)
    max_log_loss_above_baseline: float = Field(0.002, ge=0)
    # lead-level bootstrap of the gain over the champion (0: no intervals)
    bootstrap_rounds: int = Field(200, ge=0, le=10_000)
    # coverage of the gain's interval
    confidence: float = Field(0.95, gt=0.5, lt=1)
    # the headline target's gain must be beyond noise: its interval's lower bound above
    # -max_metric_drop (other targets: the upper bound); false: the point gains decide
    require_significant_gain: bool = True

    @model_validator(mode="after")
    def _rounds(self) -> Promotion:
        if self.require_significant_gain and self.bootstrap_rounds < 50:
            raise ValueError(
                "promotion.require_significant_gain needs promotion.bootstrap_rounds >= 50"
            )
        return self


class Grades(_Strict):
    """A-D grades on the calibrated headline probability, measured on time-ordered validation.

    By default the cut-offs put `shares` of the validation leads (weighted like every validation
    metric) in A, B and C, D being the rest; `cutoffs` sets the probabilities instead (a lead is
    in A at or above `cutoffs.A`, ...). A retrain keeps the champion's cut-offs, so a grade keeps
    its meaning across model versions, unless `keep_cutoffs` is false.
    """

    shares: dict[str, float] = Field(default_factory=lambda: {"A": 0.1, "B": 0.2, "C": 0.3})
    cutoffs: dict[str, float] | None = None
    keep_cutoffs: bool = True

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"A", "B", "C"}:
            raise ValueError("grades.shares needs exactly the keys A, B and C (D is the rest)")
        if any(s <= 0 for s in v.values()) or sum(v.values()) >= 1:
            raise ValueError("grades.shares must be positive and leave a share for D (sum < 1)")
        return v

    @field_validator("cutoffs")
    @classmethod
    def _cutoffs(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if set(v) != {"A", "B", "C"}:
            raise ValueError("grades.cutoffs needs exactly the keys A, B and C (D is the rest)")
        if not 1 > v["A"] > v["B"] > v["C"] > 0:
            raise ValueError("grades.cutoffs must be probabilities with 1 > A > B > C > 0")
        return v


class Score(_Strict):
    """Weekly scoring settings."""

    headline_target: Literal["meeting", "won"] = "won"
    grades: Grades = Field(default_factory=lambda: Grades())
    explore_share: float = Field(0.05, ge=0, le=1)
    chunk_size: int = Field(100_000, gt=0)  # leads predicted and explained at a time
    part_size: int = Field(100_000, gt=0)  # open leads (and their aggregates) in memory at a time
    psi_threshold: float = Field(0.2, gt=0)
    top_reasons: int = Field(3, ge=1, le=10)
    report_top_n: int = Field(200, gt=0)
    # trend: "up"/"down" only when the headline probability moved by at least this share of
    # last run's value AND this many percentage points, else "steady". 0.5 pts is five steps of
    # the one-decimal percentages the reports show (and ~1/5 of a typical win rate of 2-3%);
    # 20% keeps a high-P lead's drift from 30% to 29.4% "steady" (see README, weekly job)
    trend_min_relative: float = Field(0.2, ge=0)
    trend_min_points: float = Field(0.5, ge=0)
    # freshness: warn when the as-of date is more than this many days after the newest
    # timestamp in the leads and events (data_through); refuse instead (exit 1) when set
    max_data_lag_days: int = Field(3, ge=0)
    refuse_stale_data: bool = False
    # the currency of deal amounts (e.g. EUR): expected value is shown as "Expected value (EUR)"
    # in the reports and recorded in manifest.json; the numbers are not converted. Default: none
    currency: str | None = Field(None, min_length=1, max_length=12)
    # score history: each run also keeps its scores.parquet and manifest.json in
    # `<history>/as_of=YYYY-MM-DD/` (default: a `history` folder inside the run's --out), for
    # trends and backtests; a rerun for the same as-of date replaces its entry. Only the
    # `history_keep` newest as-of dates are kept (104: two years of weekly runs; 0: no history)
    history: Path | None = None
    history_keep: int = Field(104, ge=0)
    # where the leads are scored: "local" (this machine, bounded memory) or "spark" (a Spark
    # session, see the `spark` section; needs `pip install 'leadscore[spark]'` and Java 17+)
    engine: Literal["local", "spark"] = "local"


class SparkSettings(_Strict):
    """The Spark session of `score.engine: spark` (`leadscore score --engine spark`)."""

    master: str = Field("local[*]", min_length=1)  # e.g. local[2], yarn, spark://host:7077
    app_name: str = Field("leadscore-score", min_length=1)
    # open leads per Spark group scored by one Python call (as score.part_size for local)
    part_size: int = Field(50_000, gt=0)
    # any Spark setting passed through as is, e.g. {"spark.executor.memory": "8g"} (local
    # masters: spark.driver.memory is 4g unless set here, the executors run in the driver's JVM)
    conf: dict[str, str] = Field(default_factory=dict)
    # Spark output: scores_parts/ (Parquet partitioned by grade) in the run folder unless set
    # (e.g. an s3:// or dbfs:/ path); scores.parquet and scores.csv are written beside the reports
    parts_dir: str | None = None


class Evaluation(_Strict):
    """How validation is measured beyond the ranking metrics."""

    # leads the sales team can work per week (default 200: about five reps at 40 new leads a
    # week): metrics `<target>.precision_at_capacity` / `.recall_at_capacity` take the best
    # this many validation leads of each snapshot week (modeling/evaluate.capacity_metrics)
    capacity: int = Field(200, gt=0)


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
    account_columns: AccountColumns = Field(default_factory=AccountColumns)
    accounts: AccountModel = Field(default_factory=AccountModel)
    labels: Labels = Field(default_factory=Labels)
    snapshots: Snapshots = Field(default_factory=Snapshots)
    features: Features = Field(default_factory=Features)
    split: Split = Field(default_factory=Split)
    train: Train = Field(default_factory=Train)
    promotion: Promotion = Field(default_factory=Promotion)
    score: Score = Field(default_factory=Score)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    validation: Validation = Field(default_factory=Validation)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    spark: SparkSettings = Field(default_factory=SparkSettings)
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
        if self.data.accounts is not None and self.columns.account_id is None:
            raise ValueError("columns.account_id is needed when data.accounts is given")
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


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    """A mapping whose keys are unique: YAML would let a repeated key silently replace the
    first one (a second `score:` section wipes the first), so a repeat is refused by line."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} on line {line} repeats the key on line {seen[key]}; "
                "merge the two into one",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


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
