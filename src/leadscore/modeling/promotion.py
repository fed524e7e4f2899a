"""The promotion gate: does the registry's challenger replace the champion?

The challenger's figures are the honest validation metrics recorded at training (its evaluation
twin, fitted on the training rows only, and its baselines, on the same validation rows: the
shipped model itself was refitted on every labelled row, validation included). A champion that
records such figures is compared by them; an older bundle is measured on the challenger's
validation rows rebuilt from the current data. `gate_target` applies the configured minimums,
refuses a challenger worse than its own baselines and one that drops more than allowed against
the champion; `promote_challenger` moves the `champion` alias, exports the new champion and tags
the decision.
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
from leadscore.modeling.fit import MODEL, label_array
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
    below_baseline: bool = False


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
        below = [g.target for g in self.gates if g.below_baseline]
        out["promotion.worse_than_baseline"] = ",".join(below) if below else "none"
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


def baseline_reasons(
    target: str,
    challenger: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    promotion: Promotion,
) -> list[str]:
    """Why the challenger is worse than its own baselines on the same validation rows: ROC AUC
    more than `max_roc_auc_below_baseline` below the best baseline's, or log loss more than
    `max_log_loss_above_baseline` above the best baseline's (empty when it is not)."""
    reasons = []
    aucs = {n: float(m["roc_auc"]) for n, m in baselines.items() if "roc_auc" in m}
    losses = {n: float(m["log_loss"]) for n, m in baselines.items() if "log_loss" in m}
    if aucs:
        name = max(aucs, key=lambda n: aucs[n])
        gap = aucs[name] - float(challenger["roc_auc"])
        if gap > promotion.max_roc_auc_below_baseline:
            reasons.append(
                f"{target}: ROC AUC {challenger['roc_auc']:.4f} is {gap:.4f} below the "
                f"{name} baseline's {aucs[name]:.4f} on the same validation rows (allowed "
                f"{promotion.max_roc_auc_below_baseline:g})"
            )
    if losses:
        name = min(losses, key=lambda n: losses[n])
        gap = float(challenger["log_loss"]) - losses[name]
        if gap > promotion.max_log_loss_above_baseline:
            reasons.append(
                f"{target}: log loss {challenger['log_loss']:.4f} is {gap:.4f} above the "
                f"{name} baseline's {losses[name]:.4f} on the same validation rows (allowed "
                f"{promotion.max_log_loss_above_baseline:g})"
            )
    return reasons


def gate_target(
    target: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    promotion: Promotion,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> TargetGate:
    """Check one target: minimum ROC AUC, PR AUC against the base rate, no worse than its own
    baselines (`baseline_reasons`; `baselines` maps a baseline's name to its metrics on the
    same rows), and no drop in the configured metric of more than `max_metric_drop` against the
    champion."""
    metric = promotion.metric
    reasons = baseline_reasons(target, challenger, baselines or {}, promotion)
    below = bool(reasons)
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
        below,
    )


def promotion_decision(
    challenger: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    promotion: Promotion,
    challenger_version: str | None,
    champion_version: str | None,
    baselines: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> PromotionDecision:
    """Promote only when every target passes its gate (a first model: the minimums and the
    baselines only). `baselines` maps target -> baseline name -> metrics on the challenger's
    validation rows."""
    gates = tuple(
        gate_target(
            target,
            metrics,
            None if champion is None else champion.get(target),
            promotion,
            None if baselines is None else baselines.get(target),
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


def recorded_metrics(bundle: LeadScoreModel, target: str) -> dict[str, dict[str, float]] | None:
    """The honest validation metrics recorded at training (model under `MODEL`, baselines under
    their names), or None for a bundle that records none."""
    info = bundle.targets[target].metadata
    stored = None if info is None else info.validation_metrics
    return dict(stored) if stored and MODEL in stored else None


@dataclass(frozen=True)
class GateFigures:
    """Per target: the challenger's metrics, the champion's, and the challenger's baselines'."""

    challenger: dict[str, dict[str, float]]
    champion: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, dict[str, float]]]


def compare_on_challenger_rows(
    settings: Settings,
    chall: LeadScoreModel,
    champ: LeadScoreModel | None,
    data: LeadData | None,
    examples: Examples | None,
) -> GateFigures:
    """Each target's gate figures: recorded at training when the bundle records them (see the
    module docstring), else measured on the challenger's validation rows rebuilt from `data`
    (default: the current data)."""
    targets = list(chall.targets)
    needs_rows = any(recorded_metrics(chall, t) is None for t in targets) or (
        champ is not None
        and any(t in champ.targets and recorded_metrics(champ, t) is None for t in targets)
    )
    champ_examples = examples
    if needs_rows:
        with logged_step(log, "rebuilding validation examples for the promotion gate"):
            if data is None:
                data, _ = current_data(settings)
            if examples is None or examples.spec != chall.spec:
                examples = build_examples(data, settings, spec=chall.spec)
            champ_examples = examples
            if champ is not None and champ.spec != chall.spec:
                champ_examples = build_examples(data, settings, spec=champ.spec)
    figures = GateFigures({}, {}, {})
    for target in targets:
        stored = recorded_metrics(chall, target)
        rows = None
        if stored is not None:
            figures.challenger[target] = stored[MODEL]
            figures.baselines[target] = {k: v for k, v in stored.items() if k != MODEL}
        else:
            rows = promotion_rows(chall, examples, target, settings)
            figures.challenger[target] = gate_metrics(chall, examples, target, rows)
        if champ is None or target not in champ.targets:
            continue
        champ_stored = recorded_metrics(champ, target)
        if champ_stored is not None:
            figures.champion[target] = champ_stored[MODEL]
        else:
            if rows is None:
                rows = promotion_rows(chall, examples, target, settings)
            figures.champion[target] = gate_metrics(champ, champ_examples, target, rows)
    return figures


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

    The figures are those recorded at training, or, for a bundle that records none, measured on
    the challenger's validation rows rebuilt from the current data (with the feedback store
    applied, unless `data` is given).
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
    figures = compare_on_challenger_rows(settings, chall, champ, data, examples)
    decision = promotion_decision(
        figures.challenger,
        None if champ is None else figures.champion,
        settings.promotion,
        str(challenger.version),
        None if champion is None else str(champion.version),
        baselines=figures.baselines,
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
