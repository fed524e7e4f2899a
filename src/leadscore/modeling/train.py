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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore import __version__
from leadscore.config import Settings, config_as_yaml
from leadscore.data.contract import LeadData, input_digests, load_lead_data
from leadscore.data.features import FeatureSpec, build_features, hold_age
from leadscore.data.io import frame_digest, write_parquet, write_text
from leadscore.data.model_input import model_input_rows
from leadscore.data.snapshots import LABEL_PREFIX, Examples, build_examples, scoring_snapshots
from leadscore.feedback.apply import FeedbackCounts
from leadscore.modeling.drift import Reference, reference_profile
from leadscore.modeling.evaluate import (
    json_ready,
    plot_shap_summary,
    shap_contributions,
    write_plots,
)
from leadscore.modeling.fit import (
    MODEL,
    VALIDATION_SCORES_DIR,
    TargetResult,
    flat_target_metrics,
    label_array,
    train_target,
    validation_frame,
)
from leadscore.modeling.grades import BASIS_KEPT, BASIS_PROBABILITY, GradeScheme, measure_grades
from leadscore.modeling.inputs import with_feedback
from leadscore.modeling.model import AccountScorer, LeadScoreModel, TargetInfo
from leadscore.modeling.promotion import (
    PromotionDecision,
    promote_challenger,
    write_evaluation_model,
)
from leadscore.modeling.registry import CHAMPION, alias_version, load_bundle, version_uri
from leadscore.modeling.split import STRATIFIED_RANDOM
from leadscore.modeling.timing import logged_step
from leadscore.modeling.tracking import (
    DatasetInput,
    TrainingRecord,
    log_training_run,
    set_run_name,
    source_uri,
    training_run,
)

log = logging.getLogger(__name__)

REFERENCE_MAX_ROWS = 200_000
EXAMPLE_LEADS = 5  # lead rows logged as the model's input example
# trains the account model from the data, the lead feature spec, the lead targets' results and
# the headline target (`leadscore.accounts.model.train_accounts`, passed in by the CLI: the
# accounts room sits above modeling); None: no account scoring
AccountTrainer = Callable[
    [LeadData, Settings, FeatureSpec, dict[str, "TargetResult"], str], AccountScorer | None
]


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
    # as the scorer sees them: leads older than the training horizon at that age
    horizon = settings.snapshots.max_age_days if spec.has_time else None
    return hold_age(build_features(snaps, data.activities, spec), horizon)[0]


def example_leads(
    data: LeadData, settings: Settings, spec: FeatureSpec
) -> tuple[pd.DataFrame, str | None]:
    """The newest leads open at the export date as a caller of the logged model sends them
    (their events before it), and that date as the `as_of` param (None without creation times)."""
    when = data.export_date if settings.has_time else None
    leads = data.leads
    if when is not None:
        leads = scoring_snapshots(leads, when)[0].sort_values("created_at", ascending=False)
    rows = model_input_rows(leads.head(EXAMPLE_LEADS), data.activities, settings, spec, when)
    return rows, None if when is None else str(pd.Timestamp(when))


def reference_for(
    bundle: LeadScoreModel,
    data: LeadData,
    settings: Settings,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
) -> Reference:
    """Drift reference: the open leads at the export date, as the weekly scorer would have seen
    them (a first scoring at the export date shows no drift). The 0-100 score scale is `scale`
    (the headline probabilities and weights of the validation leads, see `score_scale`): a
    lead's score is the share of those leads with a lower headline probability."""
    features = reference_rows(data, settings, bundle.spec)
    probs = bundle.targets[bundle.headline_target].predict_proba(features)
    amounts = None
    leads = data.leads
    if "amount" in leads and "won_at" in leads:
        amounts = leads.loc[leads["won_at"].notna(), "amount"]
    return reference_profile(features, bundle.spec.categorical, probs, amounts, scale)


def headline_validation(
    examples: Examples, result: TargetResult
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, probabilities, weights) of the headline target's validation rows, from the
    model evaluated there (one that did not see them)."""
    rows = examples.frame.loc[result.split.validation]
    y = label_array(rows, result.target)
    return y, np.asarray(result.validation_scores[MODEL], float), rows["weight"].to_numpy(float)


def champion_grades(settings: Settings) -> GradeScheme | None:
    """The registry champion's grade scheme, when there is one (its cut-offs are kept)."""
    champion = alias_version(settings, CHAMPION)
    if champion is None:
        return None
    bundle = load_bundle(version_uri(settings, champion.version), settings.mlflow.tracking_uri)
    return bundle.grades


def grade_scheme(
    settings: Settings, target: str, y: np.ndarray, p: np.ndarray, w: np.ndarray
) -> GradeScheme:
    """A-D cut-offs measured on validation: the user's cut-offs, else the champion's (kept
    across retrains), else the configured shares of validation leads."""
    grades = settings.score.grades
    if grades.cutoffs is not None:
        cut = (grades.cutoffs["A"], grades.cutoffs["B"], grades.cutoffs["C"])
        return measure_grades(target, y, p, w, cutoffs=cut, basis=BASIS_PROBABILITY)
    kept = champion_grades(settings) if grades.keep_cutoffs else None
    if kept is not None and kept.target == target:
        return measure_grades(target, y, p, w, cutoffs=kept.cutoffs, basis=BASIS_KEPT)
    return measure_grades(target, y, p, w, shares=grades.shares)


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


def input_datasets(
    data: LeadData,
    digests: dict[str, str],
    feedback: pd.DataFrame | None,
    feedback_counts: FeedbackCounts | None,
    feedback_source: str | None,
    examples: Examples,
) -> tuple[DatasetInput, ...]:
    """The raw inputs (leads, activities, outcomes: each its own file and sha256), the sales
    feedback rows the run read (with how many it applied) and the built examples, as MLflow
    dataset inputs (context `source`)."""
    frames = {"leads": data.leads, "activities": data.activities, "outcomes": data.leads}
    out = []
    for name, path in data.sources.items():
        frame = frames.get(name)
        if frame is None:
            continue
        out.append(
            DatasetInput(
                frame=frame,
                name=name,
                context="source",
                digest=digests[name],
                source=source_uri(path),
                tags={"sha256": digests[name], "rows": str(len(frame)), "role": name},
            )
        )
    if feedback is not None and len(feedback):
        digest = frame_digest(feedback)
        applied = 0 if feedback_counts is None else feedback_counts.applied
        out.append(
            DatasetInput(
                frame=feedback,
                name="feedback",
                context="source",
                digest=digest,
                source=source_uri(feedback_source or "feedback"),
                tags={"sha256": digest, "rows": str(len(feedback)), "applied": str(applied)},
            )
        )
    digest = frame_digest(examples.frame)
    out.append(
        DatasetInput(
            frame=examples.frame,
            name="examples",
            context="examples",
            digest=digest,
            source=source_uri(data.sources.get("leads", "leads")),
            tags={
                "sha256": digest,
                "rows": str(len(examples.frame)),
                "leads": str(examples.frame["lead_id"].nunique()),
                "built_from": ",".join(d.name for d in out),
            },
        )
    )
    return tuple(out)


def training_datasets(
    examples: Examples,
    results: dict[str, TargetResult],
    data: LeadData,
    digests: dict[str, str],
) -> tuple[DatasetInput, ...]:
    """Each target's training and validation rows as MLflow dataset inputs, tagged with the
    input files' sha256 (`digests`: lineage) and the examples' digest."""
    lineage = {f"{name}.sha256": digest for name, digest in digests.items()}
    lineage["examples.sha256"] = frame_digest(examples.frame)
    source = source_uri(data.sources.get("leads", "leads"))
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
                    source=source,
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
    """config.yaml, metrics.json, the feature spec, the points sheets, all plots and each
    target's validation rows and scores (`validation/<target>_scores.parquet`)."""
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
        paths += [plot.path for plot in write_plots(target, y, result.validation_scores, plots, w)]
        scores_file = out_dir / VALIDATION_SCORES_DIR / f"{target}_scores.parquet"
        paths.append(write_parquet(validation_frame(examples.frame, result), scores_file))
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


def name_training_run(data: LeadData, feedback_counts: FeedbackCounts | None) -> None:
    """'train 2026-11-01 (20,000 leads, 583 feedback outcomes)': the export date, the leads and
    the feedback applied, as the active run's name."""
    date = "" if data.export_date is None else f" {pd.Timestamp(data.export_date):%Y-%m-%d}"
    extra = ""
    if feedback_counts is not None and feedback_counts.applied:
        extra = f", {feedback_counts.applied:,} feedback outcomes"
    set_run_name(f"train{date} ({len(data.leads):,} leads{extra})")


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
    """`train_target` for every configured target, with lines of counts and of the choice."""
    results: dict[str, TargetResult] = {}
    for target in settings.targets:
        with logged_step(log, f"training '{target}' (model selection + baselines)"):
            results[target] = train_target(examples, target, settings)
        c = results[target].counts
        log.info(
            "  %s: %s training rows (%s positive), %s validation rows (%s positive)",
            target,
            f"{c['train_rows']:,}",
            f"{c['train_positives']:,}",
            f"{c['validation_rows']:,}",
            f"{c['validation_positives']:,}",
        )
        log.info("  %s: %s", target, selection_line(results[target].model.metadata))
    return results


def selection_line(info: TargetInfo) -> str:
    """The chosen family, its trees, the candidates' out-of-fold log loss and the refit."""
    sel = info.selection or {}
    cv = ", ".join(f"{f} {c['oof_log_loss']:.4f}" for f, c in sel.get("candidates", {}).items())
    trees = f", {info.best_iteration} trees" if info.best_iteration else ""
    return (
        f"family {info.family}{trees} (out-of-fold log loss over {sel.get('folds', 0)} folds: "
        f"{cv}); shipped model refitted on all {info.fit_rows:,} labelled rows"
    )


def log_grades(scheme: GradeScheme) -> None:
    """What each grade meant on validation, in the log; a warning when not monotone."""
    how = {BASIS_KEPT: "kept from the champion", BASIS_PROBABILITY: "from the config"}
    log.info("grades on P(%s), cut-offs %s:", scheme.target, how.get(scheme.basis, "by share"))
    for r in scheme.rows:
        where = (
            f"P >= {r.min_probability:.2%}" if r.grade != "D" else f"P < {scheme.cutoffs[-1]:.2%}"
        )
        log.info(
            "  %s: %s, %.0f%% of validation leads, converted at %.2f%% (%.1fx), "
            "%.0f%% of conversions",
            r.grade,
            where,
            100 * r.share,
            100 * r.rate,
            r.lift,
            100 * r.share_of_conversions,
        )
    if not scheme.is_monotone():
        log.warning(
            "grades are not monotone in validation conversion (too little validation data, or "
            "cut-offs that no longer fit: see score.grades)"
        )


def run_training(
    settings: Settings,
    promote: bool = False,
    metrics_out: Path | None = None,
    feedback: pd.DataFrame | None = None,
    *,
    artifacts_out: Path | None = None,
    account_trainer: AccountTrainer | None = None,
) -> TrainingResult:
    """Train every target, compare with the baselines, log and register the model in MLflow.

    `feedback` is the sales feedback history (`feedback.read_store`); it corrects the leads'
    outcomes before examples are built. The new model version gets the alias `challenger`; with
    `promote=True` the promotion gate runs next. `metrics_out` also receives `metrics.json`;
    `artifacts_out`, when given, keeps a copy of every logged file (config, metrics, plots,
    points sheets). `account_trainer`, when given, trains the account model into the same
    bundle (`bundle.accounts`; its metrics `accounts.*` are logged with the run). Raises
    `TrainingError` when a target has too little data.
    """
    with training_run(settings):
        data, feedback_counts = read_training_data(settings, feedback)
        name_training_run(data, feedback_counts)
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
                # the oldest lead age the snapshots show the model: older leads are scored at it
                "max_age_days": settings.snapshots.max_age_days,
            },
        )
        y_val, p_val, w_val = headline_validation(examples, results[settings.headline_target])
        bundle.grades = grade_scheme(settings, settings.headline_target, y_val, p_val, w_val)
        log_grades(bundle.grades)
        with logged_step(log, "profiling the reference data"):
            bundle.reference = reference_for(bundle, data, settings, scale=(p_val, w_val))
        metrics: dict[str, float] = {}
        for result in results.values():
            metrics.update(flat_target_metrics(result))
        metrics.update(bundle.grades.metrics())
        if account_trainer is not None:
            with logged_step(log, "training the account model"):
                accounts = account_trainer(
                    data, settings, examples.spec, results, settings.headline_target
                )
            if accounts is not None:
                bundle.accounts = accounts
                bundle.metadata["accounts"] = accounts.basis
                metrics.update(accounts.metrics)
        counts = flat_counts(results, examples, data)
        if feedback_counts is not None:
            feedback_fields = dataclasses.asdict(feedback_counts).items()
            counts.update({f"counts.feedback.{k}": v for k, v in feedback_fields})
        with tempfile.TemporaryDirectory(prefix="leadscore-train-") as tmp:
            art = Path(tmp)
            with logged_step(log, "evaluating and plotting"):
                write_artifacts(art, settings, results, metrics, examples)
            for target, result in results.items():
                write_evaluation_model(art, target, result.selection.evaluation)
            digests = input_digests(data)
            example_rows, example_as_of = example_leads(data, settings, examples.spec)
            record = TrainingRecord(
                bundle=bundle,
                metrics=metrics,
                counts=counts,
                split_method=split_method,
                input_digests=digests,
                datasets=input_datasets(
                    data,
                    digests,
                    feedback,
                    feedback_counts,
                    str(settings.data.feedback) if settings.data.feedback else None,
                    examples,
                )
                + training_datasets(examples, results, data, digests),
                artifacts_dir=art,
                example_leads=example_rows,
                example_as_of=example_as_of,
                tuning={t: r.selection.trials for t, r in results.items() if r.selection.trials},
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
