"""The account model: per target, trained on account snapshots with the lead modeling machinery.

`train_accounts` builds the account examples (`accounts.snapshots`), checks there are enough
accounts and positive snapshots (`accounts.min_accounts`, `accounts.min_positives`), and trains
each target with `modeling.fit.train_target` (the same time-ordered split, model selection,
calibration and baselines as the leads). On the same validation rows it measures the roll-ups of
the lead model (max P and 1 - prod(1 - P) over the open leads, from the lead model evaluated
without those leads), so the metrics show what the account model adds:
`accounts.<target>.roc_auc`, `accounts.<target>.rollup_max.roc_auc`,
`accounts.<target>.rollup_noisy_or.roc_auc`, ...

Too few accounts: a refusal with the numbers is logged and the bundle stores the roll-up
(`basis == "rollup"`): scoring then writes the roll-up of the leads' probabilities and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.accounts.snapshots import (
    AccountFeatureSpec,
    account_features,
    account_labels,
    account_snapshot_times,
    account_spec,
    open_lead_rows,
    partial_aggregates,
    role_feature,
    rollups,
)
from leadscore.config import Settings
from leadscore.data.contract import LeadData
from leadscore.data.features import FeatureSpec, build_features, hold_age
from leadscore.data.schema import LABEL_PREFIX
from leadscore.data.snapshots import Examples
from leadscore.errors import TrainingError
from leadscore.modeling.evaluate import binary_metrics, flat_metrics
from leadscore.modeling.fit import MODEL, TargetResult, label_array, train_target
from leadscore.modeling.grades import GradeScheme, measure_grades
from leadscore.modeling.model import TargetModel

log = logging.getLogger(__name__)

BASIS_MODEL, BASIS_ROLLUP = "model", "rollup"
ROLLUP_NAMES = ("rollup_noisy_or", "rollup_max")
SCORE_QUANTILES = 1001
TYPICAL_ROLE_SHARE = 0.3  # a role value is typical when this share of converting accounts has it


@dataclass
class AccountModel:
    """What account scoring needs; stored in the lead bundle (`LeadScoreModel.accounts`)."""

    basis: str  # "model" or "rollup"
    spec: AccountFeatureSpec
    headline_target: str
    rollup: str = "noisy_or"
    targets: dict[str, TargetModel] = field(default_factory=dict)
    grades: GradeScheme | None = None
    score_quantiles: tuple[float, ...] = ()
    typical_roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    refusal: str | None = None  # why there is no account model (basis "rollup")
    attributes: pd.DataFrame | None = None  # account_id -> attributes and display columns
    display: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountExamples:
    """Account snapshots as `Examples` (`lead_id` holds the account id), and the roll-ups of the
    lead model's probabilities per snapshot (`rollup_noisy_or_<target>`, `rollup_max_<target>`)."""

    examples: Examples
    rollups: pd.DataFrame
    n_accounts: int


def _attributes(data: LeadData) -> pd.DataFrame | None:
    table = data.accounts
    return None if table is None else table.frame.set_index("account_id")


def account_rows(
    snaps: pd.DataFrame,
    data: LeadData,
    settings: Settings,
    lead_spec: FeatureSpec,
    lead_models: dict[str, TargetModel],
    headline: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, partial aggregates) of the account snapshots `snaps` (`account_id`,
    `snapshot_at`), in their order: each from the account's leads open then, as they stood."""
    spec = account_spec(lead_spec, data.accounts, data.leads, settings)
    rows = open_lead_rows(snaps, data.leads)
    features = build_features(rows, data.activities, lead_spec)
    held, _ = hold_age(features, settings.snapshots.max_age_days if lead_spec.has_time else None)
    probs = pd.DataFrame(
        {f"p_{t}": m.predict_proba(held[lead_spec.columns]) for t, m in lead_models.items()}
    )
    roles = rows.reindex(columns=[c for c, _ in spec.roles])
    partials = partial_aggregates(rows["snap_row"], features, probs, roles, spec, headline)
    partials = partials.reindex(np.arange(len(snaps)))
    attrs = _attributes(data)
    aligned = None if attrs is None else attrs.reindex(snaps["account_id"].to_numpy())
    feats = account_features(partials, aligned, spec)
    feats.index = snaps.index
    partials.index = snaps.index
    return feats, partials


def build_account_examples(
    data: LeadData,
    settings: Settings,
    lead_spec: FeatureSpec,
    lead_models: dict[str, TargetModel],
    headline: str,
) -> AccountExamples:
    """Account snapshots with their labels, features and the lead models' roll-ups."""
    snaps = account_snapshot_times(data.leads, settings, data.export_date)
    labels = account_labels(snaps, data.leads, settings, data.export_date)
    feats, partials = account_rows(snaps, data, settings, lead_spec, lead_models, headline)
    spec = account_spec(lead_spec, data.accounts, data.leads, settings)
    roll = {}
    for target in lead_models:
        noisy_or, top = rollups(partials, target)
        roll[f"rollup_noisy_or_{target}"] = np.nan_to_num(noisy_or)
        roll[f"rollup_max_{target}"] = np.nan_to_num(top)
    keys = snaps.rename(columns={"account_id": "lead_id"})
    frame = pd.concat([keys, labels, feats], axis=1)
    targets = tuple(labels.columns.str.removeprefix(LABEL_PREFIX))
    examples = Examples(frame, spec, targets, data.export_date)
    n_accounts = int(snaps["account_id"].nunique())
    return AccountExamples(examples, pd.DataFrame(roll, index=snaps.index), n_accounts)


def refusal(examples: Examples, settings: Settings) -> str | None:
    """Why the account model is not trained (too few accounts or positives), with the numbers;
    None when there is enough."""
    need = settings.accounts
    frame = examples.frame
    for target in examples.targets:
        rows = frame[frame[LABEL_PREFIX + target].notna()]
        n_accounts = int(rows["lead_id"].nunique())
        positives = int(rows[LABEL_PREFIX + target].sum())
        if n_accounts < need.min_accounts or positives < need.min_positives:
            return (
                f"account model refused for '{target}': {n_accounts:,} accounts with a known "
                f"label and {positives:,} positive account snapshots (need at least "
                f"{need.min_accounts:,} and {need.min_positives:,}: accounts.min_accounts, "
                "accounts.min_positives)"
            )
    return None


def weighted_quantiles(p: np.ndarray, w: np.ndarray, n: int = SCORE_QUANTILES) -> tuple:
    """`n` quantiles of `p` weighted by `w` (the 0-100 score's scale)."""
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order])
    cum = cum / cum[-1]
    at = np.searchsorted(cum, np.linspace(0, 1, n), side="left").clip(0, len(p) - 1)
    return tuple(float(v) for v in p[order][at])


def typical_roles(examples: Examples, spec: AccountFeatureSpec, target: str) -> dict:
    """Role values present in at least `TYPICAL_ROLE_SHARE` of the positive account snapshots."""
    frame = examples.frame
    positive = frame[frame[LABEL_PREFIX + target] == 1]
    out: dict[str, tuple[str, ...]] = {}
    for col, values in spec.roles:
        keep = []
        for v in values:
            name = role_feature(col, v)
            if len(positive) and (positive[name] > 0).mean() >= TYPICAL_ROLE_SHARE:
                keep.append(v)
        out[col] = tuple(keep)
    return out


def rollup_metrics(
    result: TargetResult, account_examples: AccountExamples
) -> dict[str, dict[str, float]]:
    """The account model, its baselines and the lead model's roll-ups on the validation rows."""
    target = result.target
    rows = account_examples.examples.frame.loc[result.split.validation]
    y, w = label_array(rows, target), rows["weight"].to_numpy(float)
    out = dict(result.metrics)
    for name in ROLLUP_NAMES:
        p = account_examples.rollups.loc[result.split.validation, f"{name}_{target}"]
        out[name] = binary_metrics(y, p.to_numpy(float), w)
    return out


def flat_account_metrics(target: str, metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """`accounts.<target>.<metric>` and `accounts.<target>.<baseline>.<metric>`."""
    out = {}
    for name, values in metrics.items():
        flat = flat_metrics(target, values, model=None if name == MODEL else name)
        out.update({f"accounts.{k}": v for k, v in flat.items()})
    return out


def rollup_model(
    spec: AccountFeatureSpec,
    settings: Settings,
    headline: str,
    reason: str,
    attributes: pd.DataFrame | None,
    display: tuple[str, ...],
    metrics: dict[str, float] | None = None,
) -> AccountModel:
    """The fallback: no account model, the roll-up of the leads' probabilities (`metrics`: the
    account model's and the roll-ups' validation figures, when one was trained and refused)."""
    log.warning(
        "%s; accounts are scored by the roll-up of their leads (%s)",
        reason,
        settings.accounts.rollup,
    )
    return AccountModel(
        basis=BASIS_ROLLUP,
        spec=spec,
        headline_target=headline,
        rollup=settings.accounts.rollup,
        refusal=reason,
        attributes=attributes,
        display=display,
        metrics=dict(metrics or {}),
    )


def worse_than_rollup(
    target: str, measured: dict[str, dict[str, float]], settings: Settings
) -> str | None:
    """Why the account model of `target` is worse than the configured roll-up of the lead model
    on the same validation rows (beyond the lead gate's tolerances), or None: an account model
    that ranks or predicts worse than the roll-up it is measured against is not shipped."""
    model, rollup = measured[MODEL], measured[f"rollup_{settings.accounts.rollup}"]
    gate = settings.promotion
    if model["roc_auc"] < rollup["roc_auc"] - gate.max_roc_auc_below_baseline:
        return (
            f"account model refused for '{target}': ROC AUC {model['roc_auc']:.4f} is below the "
            f"lead roll-up's {rollup['roc_auc']:.4f} on the same validation accounts"
        )
    if model["log_loss"] > rollup["log_loss"] + gate.max_log_loss_above_baseline:
        return (
            f"account model refused for '{target}': log loss {model['log_loss']:.4f} is above "
            f"the lead roll-up's {rollup['log_loss']:.4f} on the same validation accounts"
        )
    return None


def train_accounts(
    data: LeadData,
    settings: Settings,
    lead_spec: FeatureSpec,
    results: dict[str, TargetResult],
    headline: str,
) -> AccountModel | None:
    """The account model for every target (or the roll-up fallback); None without account ids.

    The lead probabilities behind the best lead and the roll-up baselines come from each
    target's evaluation model (fitted without the validation leads).
    """
    if "account_id" not in data.leads or data.leads["account_id"].notna().sum() == 0:
        return None
    if not settings.has_time or data.export_date is None:
        log.warning("account model needs creation times; accounts are not scored")
        return None
    evaluation = {t: r.selection.evaluation for t, r in results.items() if r.selection}
    built = build_account_examples(data, settings, lead_spec, evaluation, headline)
    examples, spec = built.examples, built.examples.spec
    attrs = _attributes(data)
    display = data.accounts.display if data.accounts is not None else ()
    log.info(
        "%s accounts -> %s account snapshots", f"{built.n_accounts:,}", f"{len(examples.frame):,}"
    )
    why = refusal(examples, settings)
    if why is not None:
        return rollup_model(spec, settings, headline, why, attrs, display)
    trained: dict[str, TargetResult] = {}
    for target in examples.targets:
        try:
            trained[target] = train_target(examples, target, settings)
        except TrainingError as exc:
            return rollup_model(
                spec, settings, headline, f"account model refused: {exc}", attrs, display
            )
    metrics: dict[str, float] = {}
    worse: list[str] = []
    for target, result in trained.items():
        measured = rollup_metrics(result, built)
        metrics.update(flat_account_metrics(target, measured))
        why = worse_than_rollup(target, measured, settings)
        if why is not None and settings.accounts.require_beats_rollup:
            worse.append(why)
        m = measured
        log.info(
            "  accounts %s: ROC AUC %.3f, PR AUC %.3f, log loss %.4f; lead roll-ups: "
            "noisy-or ROC AUC %.3f PR AUC %.3f, max ROC AUC %.3f PR AUC %.3f",
            target,
            m[MODEL]["roc_auc"],
            m[MODEL]["pr_auc"],
            m[MODEL]["log_loss"],
            m["rollup_noisy_or"]["roc_auc"],
            m["rollup_noisy_or"]["pr_auc"],
            m["rollup_max"]["roc_auc"],
            m["rollup_max"]["pr_auc"],
        )
    if worse:
        return rollup_model(spec, settings, headline, "; ".join(worse), attrs, display, metrics)
    head = trained[headline]
    rows = examples.frame.loc[head.split.validation]
    y, w = label_array(rows, headline), rows["weight"].to_numpy(float)
    p = np.asarray(head.validation_scores[MODEL], float)
    grades = measure_grades(headline, y, p, w, shares=settings.score.grades.shares)
    metrics.update({f"accounts.{k}": v for k, v in grades.metrics().items()})
    return AccountModel(
        basis=BASIS_MODEL,
        spec=spec,
        headline_target=headline,
        rollup=settings.accounts.rollup,
        targets={t: r.model for t, r in trained.items()},
        grades=grades,
        score_quantiles=weighted_quantiles(p, w),
        typical_roles=typical_roles(examples, spec, headline),
        attributes=attrs,
        display=display,
        metrics=metrics,
    )
