"""Training: one calibrated LightGBM model per target, baselines and evaluation on the same split.

Pure steps (split, fit, calibrate, evaluate) take frames and return models and numbers;
`run_training` reads the data, runs them, logs the run to MLflow and prints a summary, and
`run_promotion` decides whether the registry's challenger replaces the champion.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from leadscore.config import Settings
from leadscore.data.contract import LeadData, input_digests, load_lead_data
from leadscore.data.features import FeatureSpec, build_features
from leadscore.data.snapshots import LABEL_PREFIX, Examples, build_examples, scoring_snapshots
from leadscore.errors import TrainingError
from leadscore.modeling.baselines import LogisticBaseline, PointsScore
from leadscore.modeling.drift import reference_profile
from leadscore.modeling.evaluate import (
    binary_metrics,
    flat_metrics,
    json_ready,
    plot_shap_summary,
    segment_metrics,
    shap_contributions,
    write_plots,
)
from leadscore.modeling.model import Calibrator, LeadScoreModel, TargetModel, make_pipeline
from leadscore.modeling.split import STRATIFIED_RANDOM, TargetSplit, split_target

if TYPE_CHECKING:
    from leadscore.modeling.registry import PromotionDecision

MODEL = "lightgbm"
REFERENCE_MAX_ROWS = 200_000
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC"),
    ("pr_auc", "PR"),
    ("log_loss", "logloss"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("lift_top10", "lift10"),
    ("captured_top20", "cap20"),
)


@dataclass
class TargetResult:
    """Everything trained and measured for one target."""

    target: str
    split: TargetSplit
    model: TargetModel
    baselines: dict[str, object]
    metrics: dict[str, dict[str, float]]
    segments: dict[str, dict[str, float]]
    counts: dict[str, int]
    validation_scores: dict[str, np.ndarray] = field(repr=False, default_factory=dict)


@dataclass
class TrainingResult:
    """What a training run produced: the bundle, flat metrics, counts and registry references."""

    bundle: LeadScoreModel
    metrics: dict[str, float]
    counts: dict[str, int]
    split_method: str
    targets: dict[str, TargetResult] = field(repr=False, default_factory=dict)
    run_id: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    promotion: PromotionDecision | None = None


# --- pure steps ------------------------------------------------------------------------------


def label_array(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The target's labels as 0.0/1.0 (rows must have a known label)."""
    return frame[LABEL_PREFIX + target].to_numpy(float)


def class_counts(y: np.ndarray) -> tuple[int, int]:
    """(positives, negatives)."""
    positives = int(np.sum(y == 1))
    return positives, int(len(y) - positives)


def check_minimum_data(target: str, split: TargetSplit, frame: pd.DataFrame, settings: Settings):
    """Refuse a target with too few training positives or negatives, or an empty held-out class.

    Raises `TrainingError` naming the target and the counts.
    """
    train = settings.train
    pos, neg = class_counts(label_array(frame.loc[split.train], target))
    if pos < train.min_positives or neg < train.min_negatives:
        raise TrainingError(
            f"target '{target}': too little training data: {pos:,} positives and {neg:,} "
            f"negatives (need at least {train.min_positives:,} and {train.min_negatives:,}; "
            "see train.min_positives / train.min_negatives)"
        )
    for side in ("calibration", "validation"):
        s_pos, s_neg = class_counts(label_array(frame.loc[getattr(split, side)], target))
        if s_pos == 0 or s_neg == 0:
            raise TrainingError(
                f"target '{target}': the {side} slice has {s_pos:,} positives and {s_neg:,} "
                "negatives; both classes are needed (more data, or a larger split share)"
            )


def fit_target_model(
    target: str,
    spec: FeatureSpec,
    fit_rows: pd.DataFrame,
    calibration_rows: pd.DataFrame,
    settings: Settings,
) -> TargetModel:
    """Fit the LightGBM pipeline on `fit_rows` (weighted), early-stopped on `calibration_rows`,
    then calibrate its raw margin on the same held-out rows.
    """
    m = settings.train.model
    pipeline = make_pipeline(spec, m, settings.train.seed, settings.features.max_categories)
    prep, lgbm = pipeline.named_steps["prep"], pipeline.named_steps["lgbm"]
    X_fit, X_cal = fit_rows[spec.columns], calibration_rows[spec.columns]
    y_fit, y_cal = label_array(fit_rows, target), label_array(calibration_rows, target)
    w_fit, w_cal = fit_rows["weight"].to_numpy(float), calibration_rows["weight"].to_numpy(float)
    prep.fit(X_fit)
    lgbm.fit(
        prep.transform(X_fit),
        y_fit,
        sample_weight=w_fit,
        eval_X=(prep.transform(X_cal),),
        eval_y=(y_cal,),
        eval_sample_weight=[w_cal],
        callbacks=[lgb.early_stopping(m.early_stopping_rounds, verbose=False)],
    )
    margin = pipeline.predict_proba(X_cal, raw_score=True)
    calibrator = Calibrator(method=m.calibration).fit(margin, y_cal, sample_weight=w_cal)
    w_all = np.concatenate([w_fit, w_cal])
    y_all = np.concatenate([y_fit, y_cal])
    base_rate = float(np.sum(w_all * y_all) / np.sum(w_all))
    best = lgbm.best_iteration_ or m.n_estimators
    metadata = {
        "best_iteration": int(best),
        "calibration_method": calibrator.method_,
        "fit_rows": len(fit_rows),
        "calibration_rows": len(calibration_rows),
    }
    return TargetModel(target, pipeline, calibrator, base_rate, metadata)


def fit_baselines(
    target: str,
    spec: FeatureSpec,
    fit_rows: pd.DataFrame,
    calibration_rows: pd.DataFrame,
    settings: Settings,
) -> dict[str, object]:
    """Logistic regression (on all training rows) and the points sheet (points learnt on the fit
    rows, mapped to probabilities on the calibration rows)."""
    numeric = [c for c in spec.columns if c not in spec.categorical]
    train_rows = pd.concat([fit_rows, calibration_rows])
    logreg = LogisticBaseline(
        spec.categorical, numeric, max_categories=settings.features.max_categories
    ).fit(
        train_rows[spec.columns],
        label_array(train_rows, target),
        sample_weight=train_rows["weight"].to_numpy(float),
    )
    points = PointsScore(
        spec.categorical, numeric, calibration=settings.train.model.calibration
    ).fit(
        fit_rows[spec.columns],
        label_array(fit_rows, target),
        sample_weight=fit_rows["weight"].to_numpy(float),
        calibration_set=(
            calibration_rows[spec.columns],
            label_array(calibration_rows, target),
            calibration_rows["weight"].to_numpy(float),
        ),
    )
    return {"logreg": logreg, "points": points}


def validation_scores(
    model: TargetModel, baselines: dict[str, object], rows: pd.DataFrame, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """Probabilities of the model and each baseline on `rows`."""
    X = rows[spec.columns]
    scores = {MODEL: model.predict_proba(X)}
    scores.update({name: est.predict_proba(X)[:, 1] for name, est in baselines.items()})
    return scores


def train_target(
    examples: Examples, target: str, settings: Settings, split: TargetSplit | None = None
) -> TargetResult:
    """Split, check, fit the model and the baselines, and evaluate them on validation rows."""
    frame, spec = examples.frame, examples.spec
    if split is None:
        split = split_target(
            frame,
            target,
            settings.split.validation_share,
            settings.split.calibration_share,
            settings.has_time,
            settings.train.seed,
        )
    check_minimum_data(target, split, frame, settings)
    fit_rows, cal_rows = frame.loc[split.fit], frame.loc[split.calibration]
    model = fit_target_model(target, spec, fit_rows, cal_rows, settings)
    model.metadata.update(split_metadata(split))
    baselines = fit_baselines(target, spec, fit_rows, cal_rows, settings)
    val_rows = frame.loc[split.validation]
    y_val = label_array(val_rows, target)
    scores = validation_scores(model, baselines, val_rows, spec)
    w_val = val_rows["weight"].to_numpy(float)
    metrics = {name: binary_metrics(y_val, p, w_val) for name, p in scores.items()}
    segments = {}
    seg_col = settings.columns.segment
    if seg_col and seg_col in val_rows:
        segments = segment_metrics(y_val, scores[MODEL], val_rows[seg_col], w=w_val)
    counts = split.counts()
    for side in ("fit", "calibration", "validation"):
        y = label_array(frame.loc[getattr(split, side)], target)
        counts[f"{side}_positives"] = class_counts(y)[0]
    counts["train_positives"] = counts["fit_positives"] + counts["calibration_positives"]
    counts["train_leads"] = int(frame.loc[split.train, "lead_id"].nunique())
    counts["validation_leads"] = int(val_rows["lead_id"].nunique())
    return TargetResult(target, split, model, baselines, metrics, segments, counts, scores)


def split_metadata(split: TargetSplit) -> dict:
    """What a bundle records about its split (used to evaluate it again on the same period)."""

    def stamp(t):
        return None if t is None else pd.Timestamp(t).isoformat()

    return {
        "split": split.method,
        "validation_cutoff": stamp(split.validation_cutoff),
        "calibration_cutoff": stamp(split.calibration_cutoff),
    }


def flat_target_metrics(result: TargetResult) -> dict[str, float]:
    """`<target>.<metric>`, `<target>.<baseline>.<metric>`, `<target>.segment.<v>.<metric>`."""
    out = flat_metrics(result.target, result.metrics[MODEL], segments=result.segments)
    for name in result.baselines:
        out.update(flat_metrics(result.target, result.metrics[name], model=name))
    return out


def with_feedback(data: LeadData, feedback: pd.DataFrame | None) -> tuple[LeadData, dict]:
    """The data with sales feedback written onto the leads' outcomes (`feedback.apply_feedback`:
    feedback wins over the CRM), and what it changed; unchanged without feedback."""
    import dataclasses

    if feedback is None or len(feedback) == 0:
        return data, {}
    from leadscore.feedback.store import apply_feedback

    leads, counts = apply_feedback(data.leads, feedback)
    return dataclasses.replace(data, leads=leads), dataclasses.asdict(counts)


def current_data(settings: Settings) -> tuple[LeadData, dict]:
    """The configured data with the feedback store (`data.feedback`) applied, when it has any."""
    from leadscore.feedback.store import read_store

    return with_feedback(load_lead_data(settings), read_store(settings.data.feedback))


def reference_rows(data: LeadData, settings: Settings, spec: FeatureSpec) -> pd.DataFrame:
    """The leads a scorer would have seen at the export date: one snapshot per open lead.

    Without timestamps (or when no lead is open then) every lead, as it stands.
    """
    leads = data.leads
    if settings.has_time and data.export_date is not None:
        snaps, _ = scoring_snapshots(leads, data.export_date)
        if len(snaps) == 0:
            snaps = leads.assign(snapshot_at=data.export_date)
    else:
        snaps = leads.assign(snapshot_at=pd.NaT)
    if len(snaps) > REFERENCE_MAX_ROWS:
        keep = np.random.default_rng(0).choice(len(snaps), REFERENCE_MAX_ROWS, replace=False)
        snaps = snaps.iloc[np.sort(keep)].reset_index(drop=True)
    return build_features(snaps, data.activities, spec)


def reference_for(bundle: LeadScoreModel, data: LeadData, settings: Settings) -> dict:
    """Drift reference and score scale: the open leads at the export date, as the weekly scorer
    would have seen them. A lead's 0–100 score is then the share of those leads with a lower
    headline probability, and a first scoring at the export date shows no drift."""
    features = reference_rows(data, settings, bundle.spec)
    probs = bundle.targets[bundle.headline_target].predict_proba(features)
    amounts = None
    leads = data.leads
    if "amount" in leads and "won_at" in leads:
        amounts = leads.loc[leads["won_at"].notna(), "amount"]
    return reference_profile(features, bundle.spec.categorical, probs, amounts)


# --- console helpers -------------------------------------------------------------------------


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _step(console: Console, text: str) -> Iterator[None]:
    """A spinner on a terminal, a plain line otherwise; the elapsed time at the end."""
    start = time.perf_counter()
    if console.is_terminal:
        with console.status(text):
            yield
    else:
        yield
    console.print(f"{text} [dim]({time.perf_counter() - start:.1f}s)[/]")


def _fmt(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def summary_table(results: dict[str, TargetResult]) -> Table:
    """Model vs baselines per target, on the validation rows."""
    table = Table(
        title="validation (ROC/PR AUC, lift in top 10%, share captured in top 20%)",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("target", no_wrap=True)
    table.add_column("model", no_wrap=True)
    for _, title in SUMMARY_METRICS:
        table.add_column(title, justify="right")
    for target, result in results.items():
        for i, (name, metrics) in enumerate(result.metrics.items()):
            table.add_row(
                target if i == 0 else "",
                name,
                *[_fmt(metrics[key]) for key, _ in SUMMARY_METRICS],
            )
    return table


# --- orchestration ---------------------------------------------------------------------------


def flat_counts(results: dict[str, TargetResult], examples: Examples, data: LeadData) -> dict:
    """Row counts for the run's params: leads, examples, and each target's split sides."""
    out = {
        "counts.leads": len(data.leads),
        "counts.activities": 0 if data.activities is None else len(data.activities),
        "counts.examples": len(examples.frame),
    }
    for target, n in examples.same_day_outcomes.items():
        out[f"counts.{target}.outcomes_on_creation_date"] = n
    for target, result in results.items():
        out.update({f"counts.{target}.{k}": v for k, v in result.counts.items()})
    return out


def training_datasets(examples: Examples, results: dict[str, TargetResult], data: LeadData):
    """Each target's training and validation rows as MLflow dataset inputs, tagged with the
    input files' sha256 (lineage)."""
    from leadscore.data.io import frame_digest
    from leadscore.modeling.registry import DatasetInput

    digests = input_digests(data)
    lineage = {f"{name}.sha256": digest for name, digest in digests.items()}
    source = data.sources.get("leads", "leads")
    spec = examples.spec
    out = []
    for target, result in results.items():
        cols = ["lead_id", "snapshot_at", "created_at", "weight", LABEL_PREFIX + target]
        cols += spec.columns
        for context, index in (
            ("training", result.split.train),
            ("validation", result.split.validation),
        ):
            frame = examples.frame.loc[index, cols]
            positives = int(frame[LABEL_PREFIX + target].sum())
            tags = {"target": target, "rows": str(len(frame)), "positives": str(positives)}
            out.append(
                DatasetInput(
                    frame=frame,
                    name=f"{target}-{context}",
                    context=context,
                    digest=frame_digest(frame),
                    source=str(source),
                    tags={**tags, **lineage},
                )
            )
    return out, digests


def write_artifacts(
    out_dir: Path,
    settings: Settings,
    results: dict[str, TargetResult],
    metrics: dict[str, float],
    examples: Examples,
) -> list[Path]:
    """config.yaml, metrics.json, the feature spec, the points sheets and all plots."""
    import json

    from leadscore.config import config_as_yaml
    from leadscore.data.io import write_text

    paths = [
        write_text(out_dir / "config.yaml", config_as_yaml(settings)),
        write_text(out_dir / "metrics.json", json.dumps(json_ready(metrics), indent=2) + "\n"),
        write_text(
            out_dir / "feature_spec.json", json.dumps(examples.spec.to_dict(), indent=2) + "\n"
        ),
    ]
    plots = out_dir / "plots"
    for target, result in results.items():
        points = result.baselines.get("points")
        if points is not None:
            sheet = out_dir / "baselines" / f"{target}_points_sheet.csv"
            sheet.parent.mkdir(parents=True, exist_ok=True)
            write_text(sheet, points.points_table().to_csv(index=False))
            paths.append(sheet)
        val_rows = examples.frame.loc[result.split.validation]
        y = label_array(val_rows, target)
        w = val_rows["weight"].to_numpy(float)
        paths += write_plots(target, y, result.validation_scores, plots, w)
        contrib, transformed = shap_contributions(
            result.model, val_rows[examples.spec.columns], seed=settings.train.seed
        )
        paths.append(
            plot_shap_summary(
                contrib, transformed, plots / f"{target}_shap.png", f"({target})", seed=0
            )
        )
    return paths


def run_training(
    settings: Settings,
    promote: bool = False,
    metrics_out: Path | None = None,
    feedback: pd.DataFrame | None = None,
    *,
    console: Console | None = None,
    artifacts_out: Path | None = None,
) -> TrainingResult:
    """Train every target, compare with the baselines, log and register the model in MLflow.

    `feedback` is the sales feedback history (`feedback.read_store`); it corrects the leads'
    outcomes before examples are built. The new model version gets the alias `challenger`; with
    `promote=True` the promotion gate runs next. `metrics_out` also receives `metrics.json`;
    `artifacts_out`, when given, keeps a copy of every logged file (config, metrics, plots,
    points sheets). Raises `TrainingError` when a target has too little data.
    """
    import json
    import shutil

    from leadscore import __version__
    from leadscore.data.io import write_text
    from leadscore.modeling.registry import flatten, log_training_run

    out = _console(console)
    with _step(out, "reading data"):
        data, feedback_counts = with_feedback(load_lead_data(settings), feedback)
    if feedback_counts:
        out.print(
            f"sales feedback: {feedback_counts['applied']:,} outcome(s) applied "
            f"({feedback_counts['added']:,} added, {feedback_counts['overridden']:,} overridden)"
        )
    with _step(out, "building point-in-time examples"):
        examples = build_examples(data, settings)
    out.print(f"{len(data.leads):,} leads -> {len(examples.frame):,} examples")
    if examples.date_only:
        same_day = ", ".join(f"{t} {n:,}" for t, n in examples.same_day_outcomes.items())
        out.print(
            "date-only timestamps (every creation time at midnight): outcomes on the creation "
            f"date, labels of the lead's creation snapshot: {same_day or 'none'}"
        )
    split_method = "time" if settings.has_time else STRATIFIED_RANDOM
    if split_method == STRATIFIED_RANDOM:
        out.print(
            "[yellow]no creation timestamps:[/] validation is a stratified random split by lead "
            "(seeded), not a time-ordered one; expect it to be optimistic"
        )
    results: dict[str, TargetResult] = {}
    for target in settings.targets:
        with _step(out, f"training '{target}' (LightGBM + baselines)"):
            results[target] = train_target(examples, target, settings)
        c = results[target].counts
        out.print(
            f"  {target}: {c['train_rows']:,} training rows ({c['train_positives']:,} positive), "
            f"{c['validation_rows']:,} validation rows ({c['validation_positives']:,} positive)"
            + f", best iteration {results[target].model.metadata['best_iteration']}"
        )
    bundle = LeadScoreModel(
        spec=examples.spec,
        targets={t: r.model for t, r in results.items()},
        headline_target=settings.headline_target,
        metadata={
            "leadscore_version": __version__,
            "split": split_method,
            "export_date": None if data.export_date is None else str(data.export_date),
            "seed": settings.train.seed,
        },
    )
    with _step(out, "profiling the reference data"):
        bundle.reference = reference_for(bundle, data, settings)
    metrics: dict[str, float] = {}
    for result in results.values():
        metrics.update(flat_target_metrics(result))
    counts = flat_counts(results, examples, data)
    counts.update({f"counts.feedback.{k}": v for k, v in feedback_counts.items()})
    with tempfile.TemporaryDirectory(prefix="leadscore-train-") as tmp:
        art = Path(tmp)
        with _step(out, "evaluating and plotting"):
            write_artifacts(art, settings, results, metrics, examples)
        datasets, digests = training_datasets(examples, results, data)
        params = flatten(settings.model_dump(mode="json"), "config.")
        params.update({k: str(v) for k, v in counts.items()})
        tags = {
            "split": split_method,
            "targets": ",".join(settings.targets),
            "leadscore.version": __version__,
            **{f"input.{name}.sha256": d for name, d in digests.items()},
        }
        with _step(out, "logging the run and registering the model in MLflow"):
            record = log_training_run(
                settings,
                bundle,
                metrics=metrics,
                params=params,
                tags=tags,
                artifacts_dir=art,
                datasets=datasets,
                example_features=examples.frame.loc[
                    results[settings.targets[0]].split.validation, examples.spec.columns
                ],
            )
        if artifacts_out is not None:
            shutil.copytree(art, artifacts_out, dirs_exist_ok=True)
    if metrics_out is not None:
        write_text(metrics_out, json.dumps(json_ready(metrics), indent=2) + "\n")
    out.print(summary_table(results))
    out.print(
        f"run {record.run_id}: model '{settings.mlflow.model_name}' version "
        f"{record.model_version} is the challenger (split: {split_method})"
    )
    result = TrainingResult(
        bundle=bundle,
        metrics=metrics,
        counts=counts,
        split_method=split_method,
        targets=results,
        run_id=record.run_id,
        model_version=record.model_version,
        model_uri=record.model_uri,
    )
    if promote:
        result.promotion = promote_challenger(settings, console=out, data=data, examples=examples)
    return result


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
    cutoff = bundle.targets[target].metadata.get("validation_cutoff")
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


def promotion_table(decision) -> Table:
    """The gate's figures, per target."""
    table = Table(title="promotion gate (challenger's validation rows)", box=box.SIMPLE_HEAD)
    for col in ("target", "metric", "chall.", "champ.", "ROC", "PR", "base"):
        table.add_column(col, justify="left" if col in ("target", "metric") else "right")
    table.add_column("pass")
    for g in decision.gates:
        table.add_row(
            g.target,
            g.metric,
            _fmt(g.challenger),
            "-" if g.champion is None else _fmt(g.champion),
            _fmt(g.roc_auc),
            _fmt(g.pr_auc),
            _fmt(g.base_rate),
            "yes" if g.passed else "[red]no[/]",
        )
    return table


def promote_challenger(
    settings: Settings,
    console: Console | None = None,
    data: LeadData | None = None,
    examples: Examples | None = None,
):
    """Move `champion` to the challenger if it passes the gate; export it when it does.

    Both models are evaluated on the challenger's validation rows rebuilt from the current data
    (with the feedback store applied, unless `data` is given).
    The decision and its figures become tags on the challenger's run and model version.
    """
    import dataclasses

    from leadscore.errors import RegistryError
    from leadscore.modeling.registry import (
        CHALLENGER,
        CHAMPION,
        PromotionDecision,
        alias_version,
        export_model,
        load_bundle,
        promotion_decision,
        set_alias,
        tag_version,
        version_uri,
    )

    out = _console(console)
    challenger = alias_version(settings, CHALLENGER)
    if challenger is None:
        raise RegistryError(
            f"model '{settings.mlflow.model_name}' has no '{CHALLENGER}' version: train first"
        )
    champion = alias_version(settings, CHAMPION)
    if champion is not None and str(champion.version) == str(challenger.version):
        out.print(f"version {challenger.version} is already the champion; nothing to do")
        return PromotionDecision(
            False,
            str(challenger.version),
            str(champion.version),
            reasons=("the challenger is already the champion",),
        )
    uri = settings.mlflow.tracking_uri
    chall = load_bundle(version_uri(settings, challenger.version), uri)
    champ = None if champion is None else load_bundle(version_uri(settings, champion.version), uri)
    with _step(out, "rebuilding validation examples for the promotion gate"):
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
    decision = promotion_decision(
        chall_metrics,
        None if champ is None else champ_metrics,
        settings.promotion,
        str(challenger.version),
        None if champion is None else str(champion.version),
    )
    if decision.promoted:
        set_alias(settings, CHAMPION, str(challenger.version))
        with _step(out, f"exporting the champion to {settings.mlflow.export_dir}"):
            exported = export_model(settings, str(challenger.version))
        decision = dataclasses.replace(decision, exported_to=exported)
    tag_version(settings, str(challenger.version), challenger.run_id, decision.tags())
    out.print(promotion_table(decision))
    if decision.promoted:
        previous = f"replacing version {champion.version}" if champion else "first champion"
        out.print(f"[green]promoted[/]: version {challenger.version} is the champion ({previous})")
    else:
        out.print(f"[red]not promoted[/]: version {challenger.version} stays the challenger")
        for reason in decision.reasons:
            out.print(f"  - {reason}")
    return decision


def run_promotion(settings: Settings, *, console: Console | None = None):
    """Run the promotion gate on the registry's current challenger (`PromotionDecision`)."""
    return promote_challenger(settings, console=console)
