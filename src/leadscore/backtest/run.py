"""The backtest run: scored cohorts against the outcomes known now, written as `backtest.json`,
`backtest.html` and plots, and logged as an MLflow run linked to the model that scored.

Outcomes come from the configured data with the sales feedback store applied
(`modeling.inputs.current_data`; with `labels.export_date` set, as they stood on that date).
A cohort and target that cannot be backtested (the scores lack the target, the config has no
dated outcome for it, none of its leads is in the data, the data ends before its as-of date) is
listed under `skipped` with the reason; when nothing at all can be backtested the run stops with
a `BacktestError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leadscore.backtest.card import cohort_card, cohort_notes
from leadscore.backtest.html import grade_chart_png, write_backtest_html
from leadscore.backtest.outcomes import (
    PROB_PREFIX,
    ScoredCohort,
    cohort_outcomes,
    outcome_times,
    read_cohorts,
)
from leadscore.config import TARGETS, Settings
from leadscore.data.contract import LeadData
from leadscore.data.io import atomic_path, write_text
from leadscore.errors import BacktestError, RegistryError
from leadscore.modeling.evaluate import plot_calibration
from leadscore.modeling.grades import GRADES
from leadscore.modeling.inputs import current_data
from leadscore.modeling.registry import BACKTEST, ensure_experiment, load_bundle, mlflow_module

log = logging.getLogger(__name__)

BACKTEST_JSON = "backtest.json"
BACKTEST_HTML = "backtest.html"
PLOTS_DIR = "plots"
RUN_TYPE = BACKTEST
CARD_METRICS = ("rate", "expected_rate", "roc_auc", "pr_auc", "ece", "observed_share")


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest wrote: one card per cohort and target, the skipped ones with a reason."""

    out_dir: Path
    cards: tuple[dict, ...] = field(repr=False)
    skipped: tuple[dict, ...] = ()
    paths: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None


# --- which cohorts and targets can be backtested ---------------------------------------------


def _skip(cohort: ScoredCohort, target: str, reason: str) -> dict:
    log.warning(f"{cohort.folder} ({cohort.as_of:%Y-%m-%d}) {target}: not backtested: {reason}")
    return {
        "as_of": f"{cohort.as_of:%Y-%m-%d}",
        "target": target,
        "scores": str(cohort.folder),
        "reason": reason,
    }


def skip_reason(
    cohort: ScoredCohort, target: str, settings: Settings, events: pd.Series | None, until
) -> str | None:
    """Why `target` of `cohort` cannot be backtested, or None when it can."""
    if target not in cohort.targets:
        return (
            f"the scores have no {PROB_PREFIX}{target} column (the model that scored them "
            f"predicts {', '.join(cohort.targets) or 'no target'})"
        )
    if target not in settings.targets:
        return f"the config defines no {target} outcome (columns.{target}_at)"
    if events is None:
        return f"the data gives the {target} outcome without a date: its window cannot be checked"
    if not cohort.scores["lead_id"].isin(events.index).any():
        return (
            f"none of the {len(cohort.scores):,} scored leads is in the data "
            "(another data set than the one scored?)"
        )
    if until <= cohort.as_of:
        return (
            f"the data runs to {until:%Y-%m-%d}, not after the as-of date: no outcome is known yet"
        )
    return None


def model_trained_through(settings: Settings, model: dict[str, str]) -> pd.Timestamp | None:
    """The export date of the data the scoring model was trained on (from the registry or
    the exported folder the manifest names); None when the model cannot be found."""
    uri = None
    if model.get("name") and model.get("version"):
        uri = f"models:/{model['name']}/{model['version']}"
    elif model.get("uri") and Path(model["uri"]).is_dir():
        uri = model["uri"]
    if uri is None:
        return None
    try:
        bundle = load_bundle(uri, settings.mlflow.tracking_uri)
    except RegistryError as exc:
        log.warning(f"model of the scores not found ({exc}); not checked for overlap")
        return None
    stamp = bundle.metadata.get("export_date")
    return pd.Timestamp(stamp) if stamp else None


def in_sample_note(trained_through: pd.Timestamp | None, as_of: pd.Timestamp) -> tuple[str, ...]:
    if trained_through is None or trained_through <= as_of:
        return ()
    return (
        f"in-sample: the model was trained on data up to {trained_through:%Y-%m-%d}, after "
        "these leads were scored, so it has seen some of these outcomes; expect real results "
        "to be weaker. Train as of the scoring date (labels.export_date) for a fair backtest",
    )


# --- the run ---------------------------------------------------------------------------------


def backtest_cohorts(
    settings: Settings,
    cohorts: Sequence[ScoredCohort],
    data: LeadData,
    trained_through: Callable[[dict[str, str]], pd.Timestamp | None] = lambda model: None,
) -> tuple[list[dict], list[dict], list]:
    """A card per cohort and target that can be backtested, the skipped ones, and the outcomes
    behind each card (for the plots). `trained_through(model)` tells when the data the scoring
    model learned from ends (`model_trained_through`; default: unknown)."""
    until = data.export_date
    if until is None:
        raise BacktestError("the data has no timestamps: outcomes cannot be dated")
    grades = GRADES
    events = {t: outcome_times(data, t) for t in TARGETS}
    trained: dict[tuple, pd.Timestamp | None] = {}
    cards, skipped, behind = [], [], []
    for cohort in cohorts:
        key = tuple(sorted(cohort.model.items()))
        for target in TARGETS:
            if target not in cohort.targets and target not in settings.targets:
                continue
            reason = skip_reason(cohort, target, settings, events[target], until)
            if reason is not None:
                skipped.append(_skip(cohort, target, reason))
                continue
            if key not in trained:
                trained[key] = trained_through(cohort.model)
            window = settings.labels.window_days(target)
            outcomes = cohort_outcomes(cohort, events[target], target, window, until)
            notes = cohort_notes(outcomes) + in_sample_note(trained[key], cohort.as_of)
            card = cohort_card(outcomes, grades, notes)
            card["model"]["trained_through"] = (
                None if trained[key] is None else f"{trained[key]:%Y-%m-%d}"
            )
            cards.append(card)
            behind.append(outcomes)
    return cards, skipped, behind


def chart_paths(out_dir: Path, card: dict) -> dict[str, Path]:
    """Where a card's grade chart and reliability plot are written."""
    stem = f"{card['as_of']}_{card['target']}"
    return {kind: out_dir / PLOTS_DIR / f"{stem}_{kind}.png" for kind in ("grades", "calibration")}


def write_charts(cards: list[dict], behind: list, out_dir: Path) -> list[dict[str, bytes]]:
    """Per card the grade chart and the reliability plot, written under `plots/` (PNG bytes
    returned for the HTML page)."""
    charts = []
    for card, outcomes in zip(cards, behind, strict=True):
        paths = chart_paths(out_dir, card)
        grades_png = grade_chart_png(card)
        with atomic_path(paths["grades"]) as tmp:
            tmp.write_bytes(grades_png)
        frame = outcomes.frame
        with atomic_path(paths["calibration"]) as tmp:
            plot_calibration(
                frame["converted"].to_numpy(float),
                {"scores": frame["p"].to_numpy(float)},
                tmp,
                title=f"({card['target']}, scored {card['as_of']})",
            )
        charts.append({"grades": grades_png, "calibration": paths["calibration"].read_bytes()})
    return charts


def run_backtest(settings: Settings, score_dirs: Sequence[Path], out_dir: Path) -> BacktestResult:
    """Backtest the scores in `score_dirs` (scoring output or history folders) against the
    outcomes known now; write `backtest.json`, `backtest.html` and plots into `out_dir`, and log
    an MLflow run (`leadscore.run_type=backtest`) linked to the model that scored."""
    out_dir = Path(out_dir)
    cohorts = read_cohorts(score_dirs)
    log.info(
        f"{len(cohorts)} scored cohort(s): "
        + ", ".join(f"{c.as_of:%Y-%m-%d} ({len(c.scores):,} leads)" for c in cohorts)
    )
    data, _ = current_data(settings)
    cards, skipped, behind = backtest_cohorts(
        settings, cohorts, data, lambda model: model_trained_through(settings, model)
    )
    if not cards:
        reasons = "\n".join(f"  - {s['scores']} {s['target']}: {s['reason']}" for s in skipped)
        raise BacktestError(f"nothing to backtest:\n{reasons}")
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = write_charts(cards, behind, out_dir)
    document = {"cohorts": cards, "skipped": skipped}
    paths = {
        "json": write_text(out_dir / BACKTEST_JSON, json.dumps(document, indent=2) + "\n"),
        "html": write_backtest_html(cards, charts, skipped, out_dir / BACKTEST_HTML),
    }
    run_id = log_backtest_run(settings, cards, out_dir)
    return BacktestResult(out_dir, tuple(cards), tuple(skipped), paths, run_id)


# --- MLflow ----------------------------------------------------------------------------------


def backtest_metrics(cards: Sequence[dict]) -> dict[str, float]:
    """`<target>.<as_of>.<metric>` and `<target>.<as_of>.grade_<G>.rate` for each card."""
    out: dict[str, float] = {}
    for card in cards:
        prefix = f"{card['target']}.{card['as_of']}"
        for key in CARD_METRICS:
            if card[key] is not None:
                out[f"{prefix}.{key}"] = float(card[key])
        for grade, row in card["grades"].items():
            for key in ("rate", "expected_rate", "lift"):
                if row[key] is not None:
                    out[f"{prefix}.grade_{grade}.{key}"] = float(row[key])
    return out


def _joined(cards: Sequence[dict], key: str) -> str:
    values = sorted({str(c["model"].get(key) or "") for c in cards} - {""})
    return ",".join(values)


def log_backtest_run(settings: Settings, cards: Sequence[dict], out_dir: Path) -> str:
    """One MLflow run: tags linking it to the model version(s) that scored, a metric per cohort,
    target and grade, and the written files; the model version gets the run's id as a tag."""
    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    experiment_id = ensure_experiment(settings, BACKTEST)
    dates = sorted({c["as_of"] for c in cards})
    name = f"backtest {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.set_tags(
            {
                "leadscore.run_type": RUN_TYPE,
                "as_of_first": dates[0],
                "as_of_last": dates[-1],
                "targets": ",".join(sorted({c["target"] for c in cards})),
                "matured": str(all(c["matured"] for c in cards)).lower(),
                "model_name": _joined(cards, "name"),
                "model_version": _joined(cards, "version"),
                "model_run_id": _joined(cards, "run_id"),
            }
        )
        mlflow.log_metrics(backtest_metrics(cards))
        for name in (BACKTEST_JSON, BACKTEST_HTML):
            mlflow.log_artifact(str(out_dir / name))
        for card in cards:
            for path in chart_paths(out_dir, card).values():
                mlflow.log_artifact(str(path), PLOTS_DIR)
        run_id = run.info.run_id
    tag_model_versions(settings, cards, run_id)
    log.info(f"MLflow backtest run {run_id}")
    return run_id


def tag_model_versions(settings: Settings, cards: Sequence[dict], run_id: str) -> None:
    """Tag each registered model version behind the cards with this backtest run's id."""
    from mlflow.exceptions import MlflowException

    client = mlflow_module(settings.mlflow.tracking_uri).MlflowClient()
    versions = {(c["model"].get("name"), c["model"].get("version")) for c in cards}
    for name, version in sorted(v for v in versions if all(v)):
        try:
            client.set_model_version_tag(name, version, "leadscore.backtest_run_id", run_id)
        except MlflowException as exc:
            log.warning(f"model {name} version {version} not in this registry: not tagged ({exc})")
