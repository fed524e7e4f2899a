"""Weekly batch scoring: every open lead at the as-of date gets probabilities, a score, a grade,
its reasons and its trend; outputs are written atomically and a rerun is byte-identical.

Memory does not grow with the input: the leads and their events are streamed and spilled to disk
(`scoring.stream`), then scored part by part and chunk by chunk (`scoring.chunks`), which writes
`scores.parquet` and `scores.csv` one chunk at a time. This module runs the steps in order and
writes what sums up the run: the reports, `manifest.json` and the MLflow scoring run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from leadscore.accounts.score import (
    ScoredAccounts,
    account_hooks,
    finish_accounts,
    with_account_grades,
    write_accounts,
)
from leadscore.config import Settings
from leadscore.data.io import atomic_path, file_digest, write_text
from leadscore.errors import ScoringError, UsageError
from leadscore.modeling.drift import psi_table
from leadscore.modeling.grades import grade_lines
from leadscore.modeling.model import LeadScoreModel
from leadscore.reporting.html import write_report_html
from leadscore.reporting.summary import ReportContext, RunSummary
from leadscore.reporting.xlsx import write_report_xlsx
from leadscore.scoring.chunks import ChunkedRun, ScoredPart, score_in_chunks
from leadscore.scoring.freshness import STALE_DATA, check_freshness, timestamp_text
from leadscore.scoring.history import keep_in_history
from leadscore.scoring.inputs import spill_open_leads
from leadscore.scoring.predict import grade_score_thresholds, model_horizon
from leadscore.scoring.rescore import rescore_previous
from leadscore.scoring.stream import (
    LeadTally,
    lead_sources,
)
from leadscore.scoring.tracking import ModelRef, ScoringRecord, load_scoring_model, log_scoring_run
from leadscore.scoring.trend import (
    PreviousRun,
    keep_previous_run,
    read_previous_run,
    same_model,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REPORT_XLSX = "report.xlsx"
REPORT_HTML = "report.html"
REPORT_MAX_ROWS = 50_000  # the top rows kept for the reports
DRIFT_WARNINGS_SHOWN = 5
NO_ACTIVITY_DATA = (
    "no activity data: the model uses activity features but no activities file was "
    "given (--activities) or configured (data.activities), so every lead is scored as "
    "if it had no activity"
)
ACCOUNTS_LOCAL_ONLY = (
    "accounts are not scored by the Spark engine yet (no accounts.parquet, accounts.csv or "
    "account grades this run): score with --engine local for them"
)


@dataclass(frozen=True)
class ScoringResult:
    """What a scoring run wrote and counted."""

    out_dir: Path
    n_scored: int
    n_skipped: int
    n_explore: int
    grade_counts: dict[str, int]
    drift: pd.DataFrame
    drift_warnings: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # the run degraded (stale data, no activity data)
    n_dormant: int = 0  # older than the model's horizon: scored with their age held at it
    data_through: pd.Timestamp | None = None  # the newest timestamp in the leads and events
    horizon_days: int | None = None  # the oldest lead age the model was trained on


class _Laps:
    """Seconds per step, each measured from the end of the one before."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        self.seconds[name] = time.perf_counter() - self.start - sum(self.seconds.values())


@dataclass(frozen=True)
class ScoringJob:
    """What a scorer needs to read and score the open leads of one run."""

    settings: Settings
    bundle: LeadScoreModel
    ref: ModelRef
    as_of: pd.Timestamp
    out_dir: Path
    leads_path: Path | None
    acts_path: Path | None
    data_warnings: tuple[str, ...]  # found before reading (no activity data)
    lap: Callable[[str], None]  # marks the end of a timed step ("read_leads", "activities")
    # the accounts' attributes joined onto each chunk of leads; each scored chunk seen by the
    # account tally (the local engine only)
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    on_chunk: Callable[[pd.DataFrame, ScoredPart], None] | None = None

    def open_leads_read(self, tally: LeadTally, n_open: int) -> None:
        """Log what reading the leads found; no open lead is a `ScoringError`."""
        _log_open_leads(tally, n_open, self.as_of)
        if n_open == 0:
            raise ScoringError(f"no lead is open at {self.as_of:%Y-%m-%d}: nothing to score")
        self.lap("read_leads")

    def checked(self, tally: LeadTally) -> tuple[str, ...]:
        """The run's warnings once the input is read (stale data refused when configured)."""
        return check_freshness(tally.data_through, self.as_of, self.settings.score) + (
            self.data_warnings
        )

    def previous_run(self, work_dir: Path | None) -> PreviousRun | None:
        """The earlier run in the folder, kept as the previous one; rescored with this model
        when another scored it (`work_dir`: a temporary folder; None: cannot rescore, the
        trend says model_changed)."""
        keep_previous_run(self.out_dir, self.as_of)
        previous = read_previous_run(self.out_dir, self.as_of, self.bundle.headline_target)
        if previous is not None and work_dir is not None and not same_model(previous, self.ref):
            previous = rescore_previous(
                self.settings,
                self.bundle,
                self.ref,
                previous,
                self.leads_path,
                self.acts_path,
                work_dir,
            )
        return previous


@dataclass(frozen=True)
class ScoredLeads:
    """What a scorer hands back: the chunked run and what reading the input counted."""

    run: ChunkedRun
    tally: LeadTally
    n_open: int
    n_events: int  # activities of open leads before the as-of date
    activity_data: bool  # an event log was read
    warnings: tuple[str, ...]


LeadScorer = Callable[[ScoringJob, Callable[[int, int], None] | None], ScoredLeads]


def score_locally(job: ScoringJob, progress: Callable[[int, int], None] | None) -> ScoredLeads:
    """The local engine: leads and events spilled to disk by lead id, scored part by part."""
    settings, spec, tally = job.settings, job.bundle.spec, LeadTally()
    with tempfile.TemporaryDirectory(dir=job.out_dir, prefix=".spill-") as spill_dir:
        spilled = spill_open_leads(
            settings,
            spec,
            job.as_of,
            job.leads_path,
            job.acts_path,
            Path(spill_dir),
            tally,
            lambda n_open: job.open_leads_read(tally, n_open),
        )
        if spilled.events is not None:
            log.info(
                f"{spilled.n_events:,} activities of open leads before {job.as_of:%Y-%m-%d} kept"
            )
        job.lap("activities")
        warnings = job.checked(tally)
        previous = job.previous_run(Path(spill_dir))
        run = score_in_chunks(
            job.bundle,
            spilled.parts(settings, spec),
            spilled.n_open,
            settings,
            job.as_of,
            job.ref,
            previous,
            job.out_dir,
            REPORT_MAX_ROWS,
            progress,
            prepare=job.prepare,
            on_chunk=job.on_chunk,
        )
    return ScoredLeads(
        run, tally, spilled.n_open, spilled.n_events, spilled.events is not None, warnings
    )


def run_scoring(
    settings: Settings,
    as_of: pd.Timestamp,
    out_dir: Path,
    leads_path: Path | None = None,
    activities_path: Path | None = None,
    model_uri: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    scorer: LeadScorer | None = None,
) -> ScoringResult:
    """Score every lead open at `as_of` and write scores, reports, manifest and an MLflow run.

    `scorer` reads and scores the leads (default `score_locally`: this machine, bounded memory;
    the Spark engine is another). `progress(done, total)` is called after each chunk of leads
    scored (by the local scorer). Data older than
    `score.max_data_lag_days` before `as_of` is a warning, or a `ScoringError` before anything
    is written when `score.refuse_stale_data` is on.
    """
    laps = _Laps()
    started_ms = int(time.time() * 1000)
    scorer = scorer or score_locally
    as_of = pd.Timestamp(as_of)
    out_dir = Path(out_dir)
    _check_writable(out_dir)
    uri = model_uri or f"models:/{settings.mlflow.model_name}@champion"
    bundle, ref = load_scoring_model(settings, uri)
    spec = bundle.spec
    laps.lap("load_model")

    # the configured event log also serves a --leads file: events of other leads are not spilled
    acts_path = activities_path or settings.data.activities
    data_warnings = (NO_ACTIVITY_DATA,) if spec.has_activities and acts_path is None else ()
    for w in data_warnings:
        log.warning(w)
    account_tally, prepare = account_hooks(settings, bundle, out_dir)
    if scorer is not score_locally and account_tally is not None:
        if prepare is not None:
            raise UsageError(
                "this model reads account attributes joined onto each lead, which only the "
                "local engine does: score with --engine local"
            )
        data_warnings += (ACCOUNTS_LOCAL_ONLY,)
        log.warning(ACCOUNTS_LOCAL_ONLY)
        account_tally = None
    on_chunk = None
    if account_tally is not None:
        on_chunk = lambda part, scored: account_tally.add(part, scored.out, scored.shown)  # noqa: E731
    job = ScoringJob(
        settings,
        bundle,
        ref,
        as_of,
        out_dir,
        leads_path,
        acts_path,
        data_warnings,
        laps.lap,
        prepare,
        on_chunk,
    )
    try:
        scored = scorer(job, progress)
        run, tally, n_open, warnings = scored.run, scored.tally, scored.n_open, scored.warnings
        laps.lap("score_explain")
        accounts = None
        if account_tally is not None:
            accounts = finish_accounts(account_tally, bundle, settings)
    finally:
        if account_tally is not None:
            account_tally.close()  # its aggregates spilled in out_dir
    if accounts is not None:
        stamp = {"model_name": ref.name, "model_version": ref.version, "as_of": f"{as_of:%Y-%m-%d}"}
        run = replace(
            run,
            top=with_account_grades(run.top, account_tally, accounts),
            paths={**run.paths, **write_accounts(accounts, out_dir, stamp)},
        )
        laps.lap("accounts")
    horizon = model_horizon(bundle, settings)
    if run.n_dormant:
        log.info(
            f"{run.n_dormant:,} dormant lead(s): older than the model's {horizon:g}-day horizon, "
            f"scored as {horizon:g} days old"
        )

    drift = psi_table(run.drift_features, bundle.reference, run.drift_scores)
    drift_warnings = _drift_warnings(drift, settings.score.psi_threshold)
    context = report_context(settings, bundle, ref, as_of, tally.n_skipped, horizon)
    paths = {**_write_reports(run, n_open, warnings, out_dir, context, accounts), **run.paths}
    laps.lap("reports")
    result = ScoringResult(
        out_dir=out_dir,
        n_scored=n_open,
        n_skipped=tally.n_skipped,
        n_explore=run.n_explore,
        grade_counts=run.grade_counts,
        drift=drift,
        drift_warnings=drift_warnings,
        timings={k: round(v, 3) for k, v in laps.seconds.items()},
        paths=paths,
        warnings=warnings,
        n_dormant=run.n_dormant,
        data_through=tally.data_through,
        horizon_days=horizon,
    )
    inputs = _inputs(settings, leads_path, acts_path)
    manifest = _manifest(
        settings, inputs, ref, as_of, result, scored.n_events, scored.activity_data
    )
    if accounts is not None:  # account scoring: how many, on which basis, and why a roll-up
        manifest["accounts"] = {
            "scored": len(accounts.rows),
            "basis": accounts.basis,
            "note": accounts.note,
        }
    written = write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    result = replace(result, paths={**paths, "manifest": written})
    keep_in_history(out_dir, as_of, settings)
    record = ScoringRecord(
        n_scored=result.n_scored,
        n_skipped=result.n_skipped,
        n_explore=result.n_explore,
        n_dormant=result.n_dormant,
        grade_counts=result.grade_counts,
        score_hist=run.score_hist,
        drift=drift,
        drift_warning=bool(drift_warnings),
        manifest=written,
        data_through=timestamp_text(result.data_through),
        stale_data=any(w.startswith(STALE_DATA) for w in warnings),
        inputs=manifest["inputs"],
        started_ms=started_ms,
    )
    log_scoring_run(settings, ref, as_of, record)
    return result


def _log_open_leads(tally: LeadTally, n_open: int, as_of: pd.Timestamp) -> None:
    """What reading the leads found: feedback taken into account, rows left out, open leads."""
    if tally.n_feedback:
        log.info(f"sales feedback: {tally.n_feedback:,} outcome(s) taken into account")
    if tally.n_dropped:
        log.warning(f"{tally.n_dropped:,} lead row(s) with problems left out")
    log.info(f"{n_open:,} open leads at {as_of:%Y-%m-%d} ({tally.n_skipped:,} skipped: not open)")


def _drift_warnings(drift: pd.DataFrame, threshold: float) -> tuple[str, ...]:
    """One warning per feature whose PSI is above `threshold`; the first few are logged."""
    warnings = tuple(
        f"drift: {row.feature} has PSI {row.psi:.3f} (> {threshold})"
        for row in drift.itertuples()
        if row.psi > threshold
    )
    for w in warnings[:DRIFT_WARNINGS_SHOWN]:
        log.warning(w)
    if len(warnings) > DRIFT_WARNINGS_SHOWN:
        log.warning(
            f"drift above {threshold} in {len(warnings)} features in all "
            f"(see drift_psi.csv in the MLflow scoring run)"
        )
    return warnings


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / ".write-check") as tmp:
            tmp.write_text("ok")
        (out_dir / ".write-check").unlink()
    except OSError as exc:
        raise ScoringError(f"{out_dir}: output folder is not writable ({exc.strerror})") from exc


def report_context(
    settings: Settings,
    bundle: LeadScoreModel,
    ref: ModelRef,
    as_of: pd.Timestamp,
    n_skipped: int,
    horizon_days: int | None = None,
) -> ReportContext:
    """What the reports say about this run besides its leads."""
    return ReportContext(
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        as_of=f"{as_of:%Y-%m-%d}",
        n_skipped=n_skipped,
        grade_thresholds=grade_score_thresholds(bundle),
        grade_lines=grade_lines(bundle.grades),
        headline_target=settings.headline_target,
        explore_share=settings.score.explore_share,
        top_n=settings.score.report_top_n,
        horizon_days=horizon_days,
        trend_min_points=settings.score.trend_min_points,
        trend_min_relative=settings.score.trend_min_relative,
        display_columns=tuple(settings.columns.display),
        owner_column=settings.columns.owner,
        currency=settings.score.currency,
        mean_won_amount=bundle.reference.mean_won_amount,
    )


def _write_reports(
    run: ChunkedRun,
    n_scored: int,
    warnings: tuple[str, ...],
    out_dir: Path,
    context: ReportContext,
    accounts: ScoredAccounts | None = None,
) -> dict[str, Path]:
    """report.xlsx and report.html: the top rows listed, the summary counted over the run (and
    the scored accounts, with account scoring)."""
    summary = RunSummary(
        n_scored=n_scored,
        grade_counts=dict(run.grade_counts),
        score_hist=tuple(int(c) for c in run.score_hist),
        warnings=warnings,
        n_dormant=run.n_dormant,
        owners=run.owners,
    )
    xlsx, html = out_dir / REPORT_XLSX, out_dir / REPORT_HTML
    extra = {}
    if accounts is not None:
        extra = {"accounts": accounts.rows, "accounts_note": accounts.note}
        context = replace(context, account_display=accounts.display)
    write_report_xlsx(run.top, xlsx, context, summary=summary, **extra)
    write_report_html(run.top, html, context, summary=summary, **extra)
    return {"report_xlsx": xlsx, "report_html": html}


def _inputs(settings: Settings, leads_path: Path | None, acts_path: Path | None) -> dict[str, str]:
    """The files the run read, by role (for the manifest)."""
    inputs = lead_sources(settings, leads_path)
    if acts_path is not None:
        inputs["activities"] = str(acts_path)
    return inputs


def _manifest(
    settings: Settings,
    inputs: dict[str, str],
    ref: ModelRef,
    as_of: pd.Timestamp,
    result: ScoringResult,
    n_events: int,
    activity_data: bool,
) -> dict:
    """manifest.json: what was scored with which model and inputs, counts, warnings, outputs."""
    return {
        "as_of": f"{as_of:%Y-%m-%d}",
        "data_through": timestamp_text(result.data_through),
        "model": {
            "name": ref.name,
            "version": ref.version,
            "run_id": ref.run_id,
            "uri": ref.uri,
            "horizon_days": result.horizon_days,
        },
        "inputs": {
            # a table name (the Spark engine) has no file to digest
            name: {"path": path, "sha256": file_digest(path) if Path(path).is_file() else None}
            for name, path in inputs.items()
        },
        "counts": {
            "scored": result.n_scored,
            "skipped_not_open": result.n_skipped,
            "explore": result.n_explore,
            "dormant": result.n_dormant,
            "activities": n_events,
            "grades": result.grade_counts,
        },
        "currency": settings.score.currency,  # of expected_value
        "warnings": list(result.warnings),
        "drift_warnings": list(result.drift_warnings),
        "timings_seconds": result.timings,
        "outputs": {k: str(v) for k, v in result.paths.items()},
        "config": str(settings.source_path) if settings.source_path else None,
        "activity_data": activity_data,
    }
