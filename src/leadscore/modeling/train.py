"""Training run: read the data, train every target, profile the reference, log it to MLflow.

The pure steps live in `fit` (one target) and the MLflow run in `tracking`; `run_training`
orders them, logs its progress through `logging` (it never prints) and, asked to, runs the
promotion gate (`promotion`) on the new challenger.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore import __version__
from leadscore.config import Settings, config_as_yaml
from leadscore.data.contract import LeadData, input_digests, load_lead_data
from leadscore.data.features import FeatureSpec, build_features
from leadscore.data.io import frame_digest, write_text
from leadscore.data.snapshots import LABEL_PREFIX, Examples, build_examples, scoring_snapshots
from leadscore.feedback.apply import FeedbackCounts
from leadscore.modeling.drift import Reference, reference_profile
from leadscore.modeling.evaluate import (
    json_ready,
    plot_shap_summary,
    shap_contributions,
    write_plots,
)
from leadscore.modeling.fit import TargetResult, flat_target_metrics, label_array, train_target
from leadscore.modeling.inputs import with_feedback
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.promotion import PromotionDecision, promote_challenger
from leadscore.modeling.split import STRATIFIED_RANDOM
from leadscore.modeling.timing import logged_step
from leadscore.modeling.tracking import DatasetInput, TrainingRecord, log_training_run

log = logging.getLogger(__name__)

REFERENCE_MAX_ROWS = 200_000


@dataclass(frozen=True)
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


# --- the reference profile -------------------------------------------------------------------


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


def reference_for(bundle: LeadScoreModel, data: LeadData, settings: Settings) -> Reference:
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


# --- what the run logs -----------------------------------------------------------------------


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


def training_datasets(
    examples: Examples,
    results: dict[str, TargetResult],
    data: LeadData,
    digests: dict[str, str],
) -> tuple[DatasetInput, ...]:
    """Each target's training and validation rows as MLflow dataset inputs, tagged with the
    input files' sha256 (`digests`: lineage)."""
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
    return tuple(out)


def write_artifacts(
    out_dir: Path,
    settings: Settings,
    results: dict[str, TargetResult],
    metrics: dict[str, float],
    examples: Examples,
) -> list[Path]:
    """config.yaml, metrics.json, the feature spec, the points sheets and all plots."""
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


# --- the run ---------------------------------------------------------------------------------


def read_training_data(
    settings: Settings, feedback: pd.DataFrame | None
) -> tuple[LeadData, FeedbackCounts | None]:
    """The configured data with `feedback` applied; logs what the feedback changed."""
    with logged_step(log, "reading data"):
        data, counts = with_feedback(load_lead_data(settings), feedback)
    if counts is not None:
        log.info(
            "sales feedback: %s outcome(s) applied (%s added, %s overridden)",
            f"{counts.applied:,}",
            f"{counts.added:,}",
            f"{counts.overridden:,}",
        )
    return data, counts


def training_examples(data: LeadData, settings: Settings) -> Examples:
    """Point-in-time examples; logs their number and how the validation rows are chosen."""
    with logged_step(log, "building point-in-time examples"):
        examples = build_examples(data, settings)
    log.info("%s leads -> %s examples", f"{len(data.leads):,}", f"{len(examples.frame):,}")
    if examples.date_only:
        same_day = ", ".join(f"{t} {n:,}" for t, n in examples.same_day_outcomes.items())
        log.info(
            "date-only timestamps (every creation time at midnight): outcomes on the creation "
            "date, labels of the lead's creation snapshot: %s",
            same_day or "none",
        )
    if not settings.has_time:
        log.warning(
            "no creation timestamps: validation is a stratified random split by lead "
            "(seeded), not a time-ordered one; expect it to be optimistic"
        )
    return examples


def train_targets(examples: Examples, settings: Settings) -> dict[str, TargetResult]:
    """`train_target` for every configured target, with a line of counts for each."""
    results: dict[str, TargetResult] = {}
    for target in settings.targets:
        with logged_step(log, f"training '{target}' (LightGBM + baselines)"):
            results[target] = train_target(examples, target, settings)
        c = results[target].counts
        log.info(
            "  %s: %s training rows (%s positive), %s validation rows (%s positive), "
            "best iteration %s",
            target,
            f"{c['train_rows']:,}",
            f"{c['train_positives']:,}",
            f"{c['validation_rows']:,}",
            f"{c['validation_positives']:,}",
            results[target].model.metadata.best_iteration,
        )
    return results


def run_training(
    settings: Settings,
    promote: bool = False,
    metrics_out: Path | None = None,
    feedback: pd.DataFrame | None = None,
    *,
    artifacts_out: Path | None = None,
) -> TrainingResult:
    """Train every target, compare with the baselines, log and register the model in MLflow.

    `feedback` is the sales feedback history (`feedback.read_store`); it corrects the leads'
    outcomes before examples are built. The new model version gets the alias `challenger`; with
    `promote=True` the promotion gate runs next. `metrics_out` also receives `metrics.json`;
    `artifacts_out`, when given, keeps a copy of every logged file (config, metrics, plots,
    points sheets). Raises `TrainingError` when a target has too little data.
    """
    data, feedback_counts = read_training_data(settings, feedback)
    examples = training_examples(data, settings)
    split_method = "time" if settings.has_time else STRATIFIED_RANDOM
    results = train_targets(examples, settings)
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
    with logged_step(log, "profiling the reference data"):
        bundle.reference = reference_for(bundle, data, settings)
    metrics: dict[str, float] = {}
    for result in results.values():
        metrics.update(flat_target_metrics(result))
    counts = flat_counts(results, examples, data)
    if feedback_counts is not None:
        feedback_fields = dataclasses.asdict(feedback_counts).items()
        counts.update({f"counts.feedback.{k}": v for k, v in feedback_fields})
    with tempfile.TemporaryDirectory(prefix="leadscore-train-") as tmp:
        art = Path(tmp)
        with logged_step(log, "evaluating and plotting"):
            write_artifacts(art, settings, results, metrics, examples)
        digests = input_digests(data)
        record = TrainingRecord(
            bundle=bundle,
            metrics=metrics,
            counts=counts,
            split_method=split_method,
            input_digests=digests,
            datasets=training_datasets(examples, results, data, digests),
            artifacts_dir=art,
            example_features=examples.frame.loc[
                results[settings.targets[0]].split.validation, examples.spec.columns
            ],
        )
        with logged_step(log, "logging the run and registering the model in MLflow"):
            run = log_training_run(settings, record)
        if artifacts_out is not None:
            shutil.copytree(art, artifacts_out, dirs_exist_ok=True)
    if metrics_out is not None:
        write_text(metrics_out, json.dumps(json_ready(metrics), indent=2) + "\n")
    log.info(
        "run %s: model '%s' version %s is the challenger (split: %s)",
        run.run_id,
        settings.mlflow.model_name,
        run.model_version,
        split_method,
    )
    promotion = None
    if promote:
        promotion = promote_challenger(settings, data=data, examples=examples)
    return TrainingResult(
        bundle=bundle,
        metrics=metrics,
        counts=counts,
        split_method=split_method,
        targets=results,
        run_id=run.run_id,
        model_version=run.model_version,
        model_uri=run.model_uri,
        promotion=promotion,
    )
