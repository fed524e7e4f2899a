"""The promotion gate: does the registry's challenger replace the champion?

The challenger, the champion and the challenger's baselines are compared on the same rows: the
challenger's validation rows, with their labels as the challenger knew them (sales feedback
included). The challenger's and its baselines' probabilities there are those recorded at
training (its evaluation twin, fitted on the training rows only: the shipped model was refitted
on every labelled row), the per-row file `validation/<target>_scores.parquet` on its run. The
champion's come from its own evaluation twin (`gate/<target>_evaluation.pkl` on its run, fitted
before its validation period) on those rows rebuilt from the data; a champion trained before
that record is scored with its shipped model (which may have trained on some of the rows: that
favours the champion, and the notes say so). A lead-level bootstrap
(`compare`) gives the interval of the challenger's gain in the gate metric; the headline target
must gain beyond noise, no target may be worse beyond noise (`promotion.require_significant_gain`).
A challenger trained before the per-row files is judged by its recorded summary metrics, without
an interval. `promote_challenger` moves the `champion` alias, exports the new champion, and
writes the decision as tags, numeric `gate.*` metrics and a description on the challenger's run
and version; the champion it replaces is re-tagged `replaced`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Promotion, Settings
from leadscore.data.contract import LeadData
from leadscore.data.snapshots import Examples, build_examples
from leadscore.errors import RegistryError
from leadscore.modeling.compare import HIGHER_IS_BETTER, Gain, compare
from leadscore.modeling.evaluate import binary_metrics
from leadscore.modeling.fit import MODEL, VALIDATION_SCORES_DIR, label_array
from leadscore.modeling.inputs import current_data
from leadscore.modeling.model import LeadScoreModel, TargetModel
from leadscore.modeling.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    client,
    export_model,
    load_bundle,
    mlflow_module,
    set_alias,
    tag_version,
    version_uri,
)
from leadscore.modeling.split import split_target
from leadscore.modeling.timing import logged_step

log = logging.getLogger(__name__)

BASELINE_METRICS = ("roc_auc", "log_loss")  # the baseline checks' metrics (`baseline_reasons`)
GATE_DIR = "gate"  # run artifact folder of the evaluation twins
KEYS = ["lead_id", "snapshot_at"]
EVALUATION, SHIPPED = "evaluation", "shipped"  # which of the champion's models scored the rows
METRIC_NAMES = {"pr_auc": "PR AUC", "roc_auc": "ROC AUC", "log_loss": "log loss"}


@dataclass(frozen=True)
class TargetGate:
    """The gate's figures for one target, on the challenger's validation rows.

    `gain` is the challenger's gain over the champion in `metric` (positive: better, also for
    log loss) with its bootstrap interval; `baselines` the baselines' `metric` on the same rows;
    `notes` say what was compared, `reasons` why the target failed (empty: passed)."""

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
    gain: Gain | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger became champion, and why."""

    promoted: bool
    challenger_version: str | None
    champion_version: str | None
    gates: tuple[TargetGate, ...] = ()
    reasons: tuple[str, ...] = ()
    exported_to: Path | None = None

    def lines(self) -> tuple[str, ...]:
        """Why, in sentences: the refusal reasons, else what each target showed."""
        if self.reasons:
            return self.reasons
        notes = tuple(n for g in self.gates for n in g.notes)
        return notes or ("every target met the minimums and its baselines",)

    def tags(self) -> dict[str, str]:
        """The decision and its figures as MLflow tags (`promotion.reasons` on every decision)."""
        out = {
            "promotion.decision": "promoted" if self.promoted else "refused",
            "promotion.champion_version": self.champion_version or "",
            "promotion.reasons": "; ".join(self.lines())[:4900],
        }
        below = [g.target for g in self.gates if g.below_baseline]
        out["promotion.worse_than_baseline"] = ",".join(below) if below else "none"
        for g in self.gates:
            prefix = f"promotion.{g.target}"
            out[f"{prefix}.{g.metric}.challenger"] = f"{g.challenger:.6f}"
            if g.champion is not None:
                out[f"{prefix}.{g.metric}.champion"] = f"{g.champion:.6f}"
            out[f"{prefix}.passed"] = str(g.passed).lower()
        return out

    def metrics(self) -> dict[str, float]:
        """The gate's figures as numeric metrics (`gate.<target>.<metric>.challenger`,
        `.champion`, `.gain`, `.gain_low`, `.gain_high`, `.<baseline>`, ...), finite only."""
        out: dict[str, float] = {"gate.promoted": float(self.promoted)}
        for g in self.gates:
            prefix = f"gate.{g.target}"
            out[f"{prefix}.passed"] = float(g.passed)
            out[f"{prefix}.rows"] = float(g.rows)
            out[f"{prefix}.roc_auc"] = g.roc_auc
            out[f"{prefix}.pr_auc"] = g.pr_auc
            out[f"{prefix}.base_rate"] = g.base_rate
            out[f"{prefix}.{g.metric}.challenger"] = g.challenger
            if g.champion is not None:
                out[f"{prefix}.{g.metric}.champion"] = g.champion
            for name, value in g.baselines.items():
                out[f"{prefix}.{g.metric}.{name}"] = value
            if g.gain is not None:
                out[f"{prefix}.{g.metric}.gain"] = g.gain.gain
                out[f"{prefix}.{g.metric}.gain_low"] = g.gain.low
                out[f"{prefix}.{g.metric}.gain_high"] = g.gain.high
                if g.gain.leads:
                    out[f"{prefix}.leads"] = float(g.gain.leads)
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def description(self) -> str:
        """One plain paragraph: the decision, then what each target showed and why."""
        v, champ = self.challenger_version, self.champion_version
        if self.promoted:
            head = (
                f"Promoted: version {v} replaces version {champ} as champion."
                if champ
                else f"Promoted: version {v} is the first champion."
            )
        else:
            head = f"Not promoted: version {v} stays the challenger" + (
                f" and version {champ} the champion." if champ else "."
            )
        body = [n for g in self.gates for n in g.notes]
        if self.reasons:
            body.append("Refused because " + "; ".join(self.reasons) + ".")
        return " ".join([head, *(s if s.endswith(".") else s + "." for s in body)])


# --- the rules -------------------------------------------------------------------------------


def baseline_reasons(
    target: str,
    challenger: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    promotion: Promotion,
    baseline_gains: Mapping[tuple[str, str], Gain] | None = None,
) -> list[str]:
    """Why the challenger is worse than its own baselines on the same validation rows: ROC AUC
    more than `max_roc_auc_below_baseline` below the best baseline's, or log loss more than
    `max_log_loss_above_baseline` above the best baseline's (empty when it is not).

    With `baseline_gains` ((baseline, metric) -> the bootstrapped gain over that baseline on
    the same rows), a shortfall counts only when it is also beyond noise: the whole interval of
    the gain lies below zero (a few validation conversions cannot refuse a model on chance)."""
    gains = baseline_gains or {}

    def shortfall(name: str, metric: str, gap: float, allowed: float, text: str) -> str | None:
        """`text` when `gap` exceeds `allowed` beyond noise; a shortfall within noise is logged."""
        if not gap > allowed:
            return None
        gain = gains.get((name, metric))
        if gain is not None and gain.has_interval and gain.high >= 0:
            log.info(
                f"{target}: {metric} short of the {name} baseline within noise, {fmt_gain(gain)}"
            )
            return None
        return f"{text} on the same validation rows (allowed {allowed:g})"

    found = []
    aucs = {n: float(m["roc_auc"]) for n, m in baselines.items() if "roc_auc" in m}
    losses = {n: float(m["log_loss"]) for n, m in baselines.items() if "log_loss" in m}
    if aucs:
        name = max(aucs, key=lambda n: aucs[n])
        gap = aucs[name] - float(challenger["roc_auc"])
        found.append(
            shortfall(
                name,
                "roc_auc",
                gap,
                promotion.max_roc_auc_below_baseline,
                f"{target}: ROC AUC {challenger['roc_auc']:.4f} is {gap:.4f} below the "
                f"{name} baseline's {aucs[name]:.4f}",
            )
        )
    if losses:
        name = min(losses, key=lambda n: losses[n])
        gap = float(challenger["log_loss"]) - losses[name]
        found.append(
            shortfall(
                name,
                "log_loss",
                gap,
                promotion.max_log_loss_above_baseline,
                f"{target}: log loss {challenger['log_loss']:.4f} is {gap:.4f} above the "
                f"{name} baseline's {losses[name]:.4f}",
            )
        )
    reasons = [r for r in found if r is not None]
    return reasons


def fmt_gain(gain: Gain) -> str:
    """'+0.0047 (95% interval -0.0140 to +0.0230, 1,020 leads)', or without an interval."""
    if not gain.has_interval:
        return f"{gain.gain:+.4f} (no interval)"
    return (
        f"{gain.gain:+.4f} ({gain.confidence:.0%} interval {gain.low:+.4f} to {gain.high:+.4f}, "
        f"{gain.leads:,} leads)"
    )


def champion_reason(
    target: str, gain: Gain, promotion: Promotion, headline: bool, champion: str
) -> str | None:
    """Why the gain over the champion is not enough, or None when it is.

    With `require_significant_gain` and an interval: the headline target's lower bound must
    be above `-max_metric_drop` (with the default 0: better beyond noise); another target's
    upper bound must be (not worse beyond noise). Otherwise the point gain must be at least
    `-max_metric_drop`."""
    drop = promotion.max_metric_drop
    name = METRIC_NAMES[gain.metric]
    if promotion.require_significant_gain and gain.has_interval:
        if headline and not gain.low > -drop:
            need = "above 0" if drop == 0 else f"above {-drop:g}"
            return (
                f"{target}: {name} gain over {champion} {fmt_gain(gain)} is not beyond noise "
                f"(the interval's lower bound must be {need})"
            )
        if not headline and not gain.high > -drop:
            return (
                f"{target}: {name} gain over {champion} {fmt_gain(gain)} is worse than the "
                f"champion beyond noise (allowed drop {drop:g})"
            )
        return None
    if not gain.gain >= -drop:
        return (
            f"{target}: {name} {gain.challenger:.4f} is worse than the champion's "
            f"{gain.reference:.4f} (by {-gain.gain:.4f}; allowed {drop:g})"
        )
    return None


def gate_target(
    target: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    promotion: Promotion,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    gain: Gain | None = None,
    headline: bool = True,
    champion_name: str = "the champion",
    champion_note: str = "",
    baseline_gains: Mapping[tuple[str, str], Gain] | None = None,
) -> TargetGate:
    """Check one target: minimum ROC AUC, PR AUC against the base rate, no worse than its own
    baselines (`baseline_reasons`; `baselines` maps a baseline's name to its metrics on the
    same rows), and against the champion (`champion_reason`): by `gain`, the bootstrapped gain
    on the same rows, or, without one, by the point difference of the two metric mappings."""
    metric = promotion.metric
    baselines = baselines or {}
    reasons = baseline_reasons(target, challenger, baselines, promotion, baseline_gains)
    below = bool(reasons)
    roc, pr, base = challenger["roc_auc"], challenger["pr_auc"], challenger["base_rate"]
    if not roc >= promotion.min_roc_auc:
        reasons.append(f"{target}: ROC AUC {roc:.4f} < minimum {promotion.min_roc_auc:.4f}")
    floor = promotion.min_pr_auc_lift * base
    if not pr >= floor:
        reasons.append(
            f"{target}: PR AUC {pr:.4f} < {promotion.min_pr_auc_lift:g} x base rate {base:.4f}"
        )
    value = float(challenger[metric])
    if champion is not None and gain is None:
        champ = float(champion[metric])
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        gain = Gain(metric, value, champ, sign * (value - champ), math.nan, math.nan, 0, 0, 0, 0)
    if gain is not None:
        reason = champion_reason(target, gain, promotion, headline, champion_name)
        if reason:
            reasons.append(reason)
    others = {n: float(m[metric]) for n, m in baselines.items() if metric in m}
    name = METRIC_NAMES[metric]
    note = f"{target}: {name} {value:.4f}"
    if gain is not None:
        note += f" against {champion_name}'s {gain.reference:.4f}, gain {fmt_gain(gain)}"
        if gain.rows:
            note += f" on {gain.rows:,} validation rows"
        note += champion_note
    if others:
        note += " (baselines: " + ", ".join(f"{n} {v:.4f}" for n, v in others.items()) + ")"
    return TargetGate(
        target,
        metric,
        value,
        None if gain is None else gain.reference,
        float(roc),
        float(pr),
        float(base),
        int(challenger.get("n", 0)),
        not reasons,
        tuple(reasons),
        below,
        gain,
        others,
        (note,),
    )


def promotion_decision(
    challenger: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    promotion: Promotion,
    challenger_version: str | None,
    champion_version: str | None,
    baselines: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    gains: Mapping[str, Gain] | None = None,
    headline: str | None = None,
    champion_notes: Mapping[str, str] | None = None,
    baseline_gains: Mapping[str, Mapping[tuple[str, str], Gain]] | None = None,
) -> PromotionDecision:
    """Promote only when every target passes its gate (a first model: the minimums and the
    baselines only). `baselines` maps target -> baseline name -> metrics on the challenger's
    validation rows; `gains` target -> the bootstrapped gain over the champion on them;
    `headline` is the target that must gain beyond noise (default: the last target)."""
    headline = headline or list(challenger)[-1]
    name = f"version {champion_version}" if champion_version else "the champion"
    gates = tuple(
        gate_target(
            target,
            metrics,
            None if champion is None else champion.get(target),
            promotion,
            None if baselines is None else baselines.get(target),
            None if gains is None or champion is None else gains.get(target),
            headline=target == headline,
            champion_name=name,
            champion_note=(champion_notes or {}).get(target, ""),
            baseline_gains=(baseline_gains or {}).get(target),
        )
        for target, metrics in challenger.items()
    )
    reasons = tuple(r for g in gates for r in g.reasons)
    return PromotionDecision(not reasons, challenger_version, champion_version, gates, reasons)


# --- the rows both models are compared on ----------------------------------------------------


def prediction_column(name: str) -> str:
    """Column of a model's probabilities in a validation-rows frame (`fit.validation_frame`)."""
    return f"p_{name}"


def keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its join keys in one dtype: lead ids as text, snapshots as ns timestamps."""
    snapshot = pd.to_datetime(frame["snapshot_at"]).astype("datetime64[ns]")
    return frame.assign(lead_id=frame["lead_id"].astype("string"), snapshot_at=snapshot)


def write_evaluation_model(out_dir: Path, target: str, model: TargetModel) -> Path:
    """`gate/<target>_evaluation.pkl`: the evaluation twin (fitted before the validation
    period), with which a later gate scores this model on a challenger's rows."""
    path = Path(out_dir) / GATE_DIR / f"{target}_evaluation.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def run_file(settings: Settings, run_id: str | None, path: str) -> bytes | None:
    """The bytes of the artifact `path` of a run, or None when it has none."""
    if not run_id:
        return None
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="leadscore-gate-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=path,
                dst_path=tmp,
                tracking_uri=settings.mlflow.tracking_uri,
            )
            return Path(local).read_bytes()
        except (mlflow.exceptions.MlflowException, OSError):
            return None


def recorded_rows(settings: Settings, run_id: str | None, target: str) -> pd.DataFrame | None:
    """The per-row validation record of a training run, or None when it has none."""
    raw = run_file(settings, run_id, f"{VALIDATION_SCORES_DIR}/{target}_scores.parquet")
    return None if raw is None else keyed(pd.read_parquet(BytesIO(raw)))


def recorded_model(settings: Settings, run_id: str | None, target: str) -> TargetModel | None:
    """A training run's evaluation twin for `target`, or None when it recorded none (the file
    is this project's own, written by `write_evaluation_model`, as trusted as the model)."""
    raw = run_file(settings, run_id, f"{GATE_DIR}/{target}_evaluation.pkl")
    return None if raw is None else pickle.loads(raw)


def predictions_on_rows(
    model: TargetModel, columns: list[str], examples: Examples, keys: pd.DataFrame
) -> pd.Series:
    """`model` on the example rows matching `keys` (lead id, snapshot), indexed like `keys`;
    NaN where the examples lack the row."""
    frame = examples.frame
    found = keyed(frame[KEYS]).assign(_row=np.arange(len(frame)))
    merged = keyed(keys[KEYS]).reset_index().merge(found, on=KEYS, how="left").set_index("index")
    out = pd.Series(np.nan, index=keys.index)
    hit = merged["_row"].notna()
    if hit.any():
        rows = frame.iloc[merged.loc[hit, "_row"].astype(int).to_numpy()]
        out.loc[merged.index[hit]] = model.predict_proba(rows[list(columns)])
    return out


@dataclass(frozen=True)
class GateRows:
    """One target's comparison rows: keys, weight, label, `p_challenger`, the baselines'
    `p_<name>` and `p_champion` (absent without a champion); `champion_source` says which of
    the champion's models scored them, `missing` how many rows the data no longer holds."""

    target: str
    frame: pd.DataFrame
    champion_source: str = ""
    missing: int = 0


def metrics_of(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """`binary_metrics` of one probability column of the gate rows."""
    return binary_metrics(rows["label"], rows[column], rows["weight"].to_numpy(float))


def bootstrap_gain(
    rows: pd.DataFrame,
    target: str,
    settings: Settings,
    reference: str = "p_champion",
    metric: str | None = None,
) -> Gain:
    """The challenger's gain over the champion (or another `reference` column) on the gate
    rows in `metric` (default: the gate's), bootstrapped by lead (seeded with the training seed
    and the target's name)."""
    promo = settings.promotion
    return compare(
        metric or promo.metric,
        rows["label"].to_numpy(float),
        rows["p_challenger"].to_numpy(float),
        rows[reference].to_numpy(float),
        rows["weight"].to_numpy(float),
        rows["lead_id"],
        promo.bootstrap_rounds,
        promo.confidence,
        seed=[settings.train.seed, zlib.crc32(target.encode())],
    )


# --- the figures of a challenger trained before the per-row record ---------------------------


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
    """Per target: the challenger's metrics, the champion's, the challenger's baselines', and
    (compared on the same rows) the bootstrapped gain over the champion."""

    challenger: dict[str, dict[str, float]]
    champion: dict[str, dict[str, float]]
    baselines: dict[str, dict[str, dict[str, float]]]
    gains: dict[str, Gain] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    # target -> (baseline, metric) -> the bootstrapped gain over that baseline on the same rows
    baseline_gains: dict[str, dict[tuple[str, str], Gain]] = field(default_factory=dict)


def legacy_figures(
    settings: Settings,
    chall: LeadScoreModel,
    champ: LeadScoreModel | None,
    data: LeadData | None,
    examples: Examples | None,
) -> GateFigures:
    """Summary figures for a challenger without a per-row record: recorded at training when
    the bundle records them, else measured on its validation rows rebuilt from `data`."""
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


# --- the figures -----------------------------------------------------------------------------


def gate_rows(
    settings: Settings,
    chall: LeadScoreModel,
    champ: LeadScoreModel | None,
    chall_run: str | None,
    champ_run: str | None,
    data: LeadData | None,
    examples: Examples | None,
) -> dict[str, GateRows] | None:
    """Each target's comparison rows (see the module docstring), or None when the challenger's
    run has no per-row record."""
    out: dict[str, GateRows] = {}
    for target in chall.targets:
        rows = recorded_rows(settings, chall_run, target)
        if rows is None:
            return None
        rows = rows.rename(columns={prediction_column(MODEL): "p_challenger"})
        if champ is None or target not in champ.targets:
            out[target] = GateRows(target, rows)
            continue
        model = recorded_model(settings, champ_run, target)
        source = EVALUATION if model is not None else SHIPPED
        with logged_step(log, f"scoring the champion on the {target} gate rows"):
            if data is None:
                data, _ = current_data(settings)
            if examples is None or examples.spec != champ.spec:
                examples = build_examples(data, settings, spec=champ.spec)
            p = predictions_on_rows(
                model or champ.targets[target], champ.spec.columns, examples, rows
            )
        joined = rows.assign(p_champion=p.to_numpy())
        found = joined["p_champion"].notna().to_numpy()
        out[target] = GateRows(
            target, joined[found].reset_index(drop=True), source, int((~found).sum())
        )
    return out


def figures_from_rows(rows: Mapping[str, GateRows], settings: Settings) -> GateFigures:
    """Point figures of every model on the gate rows, and the bootstrapped gain."""
    figures = GateFigures({}, {}, {})
    for target, g in rows.items():
        frame = g.frame
        figures.challenger[target] = metrics_of(frame, "p_challenger")
        names = [c for c in frame.columns if c.startswith("p_")]
        baseline_columns = [c for c in names if c not in ("p_challenger", "p_champion")]
        figures.baselines[target] = {
            c.removeprefix("p_"): metrics_of(frame, c) for c in baseline_columns
        }
        figures.baseline_gains[target] = {
            (c.removeprefix("p_"), metric): bootstrap_gain(frame, target, settings, c, metric)
            for c in baseline_columns
            for metric in BASELINE_METRICS
        }
        if "p_champion" in frame:
            figures.champion[target] = metrics_of(frame, "p_champion")
            figures.gains[target] = bootstrap_gain(frame, target, settings)
            figures.sources[target] = g.champion_source
            figures.missing[target] = g.missing
    return figures


def champion_notes(figures: GateFigures) -> dict[str, str]:
    """Per target, what the reader must know about the champion's figures: scored by its
    shipped model, or on fewer rows than the challenger recorded."""
    out = {}
    for target, source in figures.sources.items():
        note = ""
        if source == SHIPPED:
            note += " (the champion's shipped model: it may have trained on some of these rows)"
        missing = figures.missing.get(target, 0)
        if missing:
            note += f" ({missing:,} recorded rows no longer in the data left out)"
        out[target] = note
    return out


def compare_on_challenger_rows(
    settings: Settings,
    chall: LeadScoreModel,
    champ: LeadScoreModel | None,
    data: LeadData | None,
    examples: Examples | None,
    chall_run: str | None = None,
    champ_run: str | None = None,
) -> GateFigures:
    """Each target's gate figures on the challenger's validation rows: from the per-row
    records of the runs (with the bootstrapped gain), else `legacy_figures`."""
    rows = gate_rows(settings, chall, champ, chall_run, champ_run, data, examples)
    if rows is None:
        log.info("the challenger's run has no per-row validation record: no intervals")
        return legacy_figures(settings, chall, champ, data, examples)
    with logged_step(log, "comparing on the same rows (lead-level bootstrap)"):
        return figures_from_rows(rows, settings)


# --- the gate --------------------------------------------------------------------------------


def log_decision(decision: PromotionDecision) -> None:
    """One line for the outcome, one per figure or reason."""
    if decision.promoted:
        previous = (
            f"replacing version {decision.champion_version}"
            if decision.champion_version
            else "first champion"
        )
        log.info("promoted: version %s is the champion (%s)", decision.challenger_version, previous)
    else:
        log.info("not promoted: version %s stays the challenger", decision.challenger_version)
    for gate in decision.gates:
        for note in gate.notes:
            log.info("  %s", note)
    for reason in decision.reasons:
        log.info("  - %s", reason)


def describe_version(settings: Settings, version: str, run_id: str | None, text: str) -> None:
    """`text` as the model version's description and its run's (the `mlflow.note.content` tag
    the MLflow UI shows)."""
    c = client(settings)
    c.update_model_version(settings.mlflow.model_name, str(version), description=text)
    if run_id:
        c.set_tag(run_id, "mlflow.note.content", text)


def log_run_metrics(settings: Settings, run_id: str, metrics: Mapping[str, float]) -> None:
    """Numeric metrics on a finished run (one batch)."""
    from mlflow.entities import Metric

    stamp = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    batch = [Metric(k, float(v), stamp, 0) for k, v in metrics.items()]
    client(settings).log_batch(run_id, metrics=batch)


def record_decision(settings: Settings, decision: PromotionDecision, challenger, champion) -> None:
    """Tags, `gate.*` metrics and the description on the challenger's run and version; when
    promoted, the replaced champion's version and run are re-tagged `replaced`."""
    version = str(challenger.version)
    tag_version(settings, version, challenger.run_id, decision.tags())
    if challenger.run_id:
        log_run_metrics(settings, challenger.run_id, decision.metrics())
    describe_version(settings, version, challenger.run_id, decision.description())
    if decision.promoted and champion is not None:
        tag_version(
            settings,
            str(champion.version),
            champion.run_id,
            {"promotion.decision": "replaced", "promotion.replaced_by": version},
        )
        before = (champion.description or "").strip()
        replaced = f"Replaced as champion by version {version}."
        describe_version(
            settings, str(champion.version), champion.run_id, f"{before} {replaced}".strip()
        )


def promote_challenger(
    settings: Settings,
    data: LeadData | None = None,
    examples: Examples | None = None,
) -> PromotionDecision:
    """Move `champion` to the challenger if it passes the gate; export it when it does.

    The challenger, the champion and the baselines are compared on the challenger's validation
    rows (module docstring); `data` (default: the current data, feedback applied) and
    `examples` serve when the champion must be scored on them. The decision and its figures are
    recorded on the challenger's run and model version (`record_decision`).
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
    figures = compare_on_challenger_rows(
        settings,
        chall,
        champ,
        data,
        examples,
        chall_run=challenger.run_id,
        champ_run=None if champion is None else champion.run_id,
    )
    decision = promotion_decision(
        figures.challenger,
        None if champ is None else figures.champion,
        settings.promotion,
        str(challenger.version),
        None if champion is None else str(champion.version),
        baselines=figures.baselines,
        gains=figures.gains,
        headline=settings.headline_target,
        champion_notes=champion_notes(figures),
        baseline_gains=figures.baseline_gains,
    )
    if decision.promoted:
        set_alias(settings, CHAMPION, str(challenger.version))
        with logged_step(log, f"exporting the champion to {settings.mlflow.export_dir}"):
            exported = export_model(settings, str(challenger.version))
        decision = dataclasses.replace(decision, exported_to=exported)
    record_decision(settings, decision, challenger, champion)
    log_decision(decision)
    return decision


def run_promotion(settings: Settings) -> PromotionDecision:
    """Run the promotion gate on the registry's current challenger."""
    return promote_challenger(settings)
