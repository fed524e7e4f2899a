"""The promotion gate: does the registry's challenger replace the champion?

Both models are measured on the challenger's validation rows, rebuilt from the current data;
`gate_target` applies the configured minimums and the allowed drop against the champion, and
`promote_challenger` moves the `champion` alias, exports the new champion and tags the decision.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.config import Promotion, Settings
from leadscore.data.contract import LeadData
from leadscore.data.snapshots import Examples, build_examples
from leadscore.errors import RegistryError
from leadscore.modeling.evaluate import binary_metrics
from leadscore.modeling.fit import label_array
from leadscore.modeling.inputs import current_data
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    export_model,
    load_bundle,
    set_alias,
    tag_version,
    version_uri,
)
from leadscore.modeling.split import split_target
from leadscore.modeling.timing import logged_step

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False}


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


# --- the rules -------------------------------------------------------------------------------


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


# --- the figures -----------------------------------------------------------------------------


def gate_metrics(
    bundle: LeadScoreModel, examples: Examples, target: str, rows: pd.Index
) -> dict[str, float]:
    """`binary_metrics` of one bundle's target model on the given example rows."""
    frame = examples.frame.loc[rows]
    p = bundle.targets[target].predict_proba(frame[bundle.spec.columns])
    return binary_metrics(label_array(frame, target), p, frame["weight"].to_numpy(float))


def promotion_rows(
    bundle: LeadScoreModel, examples: Examples, target: str, settings: Settings
) -> pd.Index:
    """The validation rows of `bundle` for `target`: the same period (its stored cutoff) in the
    current examples; without time, the same seeded random split."""
    info = bundle.targets[target].metadata
    cutoff = None if info is None else info.validation_cutoff
    split = split_target(
        examples.frame,
        target,
        settings.split.validation_share,
        settings.split.calibration_share,
        settings.has_time,
        settings.train.seed,
        validation_cutoff=None if cutoff is None else pd.Timestamp(cutoff),
    )
    return split.validation


def compare_on_challenger_rows(
    settings: Settings,
    chall: LeadScoreModel,
    champ: LeadScoreModel | None,
    data: LeadData | None,
    examples: Examples | None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Each target's gate metrics of the challenger and of the champion (when there is one), on
    the challenger's validation rows rebuilt from `data` (default: the current data)."""
    with logged_step(log, "rebuilding validation examples for the promotion gate"):
        if data is None:
            data, _ = current_data(settings)
        if examples is None or examples.spec != chall.spec:
            examples = build_examples(data, settings, spec=chall.spec)
        champ_examples = examples
        if champ is not None and champ.spec != chall.spec:
            champ_examples = build_examples(data, settings, spec=champ.spec)
    chall_metrics: dict[str, dict[str, float]] = {}
    champ_metrics: dict[str, dict[str, float]] = {}
    for target in chall.targets:
        rows = promotion_rows(chall, examples, target, settings)
        chall_metrics[target] = gate_metrics(chall, examples, target, rows)
        if champ is not None and target in champ.targets:
            champ_metrics[target] = gate_metrics(champ, champ_examples, target, rows)
    return chall_metrics, champ_metrics


# --- the gate --------------------------------------------------------------------------------


def log_decision(decision: PromotionDecision) -> None:
    """One line for the outcome, one per reason for a refusal."""
    if decision.promoted:
        previous = (
            f"replacing version {decision.champion_version}"
            if decision.champion_version
            else "first champion"
        )
        log.info("promoted: version %s is the champion (%s)", decision.challenger_version, previous)
        return
    log.info("not promoted: version %s stays the challenger", decision.challenger_version)
    for reason in decision.reasons:
        log.info("  - %s", reason)


def promote_challenger(
    settings: Settings,
    data: LeadData | None = None,
    examples: Examples | None = None,
) -> PromotionDecision:
    """Move `champion` to the challenger if it passes the gate; export it when it does.

    Both models are evaluated on the challenger's validation rows rebuilt from the current data
    (with the feedback store applied, unless `data` is given).
    The decision and its figures become tags on the challenger's run and model version.
    """
    challenger = alias_version(settings, CHALLENGER)
    if challenger is None:
        raise RegistryError(
            f"model '{settings.mlflow.model_name}' has no '{CHALLENGER}' version: train first"
        )
    champion = alias_version(settings, CHAMPION)
    if champion is not None and str(champion.version) == str(challenger.version):
        log.info("version %s is already the champion; nothing to do", challenger.version)
        return PromotionDecision(
            False,
            str(challenger.version),
            str(champion.version),
            reasons=("the challenger is already the champion",),
        )
    uri = settings.mlflow.tracking_uri
    chall = load_bundle(version_uri(settings, challenger.version), uri)
    champ = None if champion is None else load_bundle(version_uri(settings, champion.version), uri)
    chall_metrics, champ_metrics = compare_on_challenger_rows(
        settings, chall, champ, data, examples
    )
    decision = promotion_decision(
        chall_metrics,
        None if champ is None else champ_metrics,
        settings.promotion,
        str(challenger.version),
        None if champion is None else str(champion.version),
    )
    if decision.promoted:
        set_alias(settings, CHAMPION, str(challenger.version))
        with logged_step(log, f"exporting the champion to {settings.mlflow.export_dir}"):
            exported = export_model(settings, str(challenger.version))
        decision = dataclasses.replace(decision, exported_to=exported)
    tag_version(settings, str(challenger.version), challenger.run_id, decision.tags())
    log_decision(decision)
    return decision


def run_promotion(settings: Settings) -> PromotionDecision:
    """Run the promotion gate on the registry's current challenger."""
    return promote_challenger(settings)
