"""Weekly batch scoring: every open lead at the as-of date gets probabilities, a score, a grade
and its reasons; outputs are written atomically and a rerun is byte-identical.

Memory does not grow with the input: the leads file is streamed in batches through the data
contract and its open leads spilled to disk in buckets by lead id (`spill`); the event log is
streamed and the events of those leads spilled beside them. Then each part of at most
`score.part_size` open leads is read back with its events, folded into activity aggregates (the
same counts as training) and predicted and explained in chunks of `score.chunk_size`;
`scores.parquet` and `scores.csv` are written one chunk at a time.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.config import Settings
from leadscore.data.contract import LEAD_BATCH_ROWS, drop_leads, iter_lead_batches, parse_timestamps
from leadscore.data.features import (
    ActivityStats,
    FeatureSpec,
    add_events_at,
    build_features,
    empty_stats,
    to_seconds,
)
from leadscore.data.io import atomic_path, file_digest, iter_table_batches, write_text
from leadscore.data.snapshots import scoring_snapshots
from leadscore.data.spill import BucketFiles, group_buckets, spill_events, spill_leads
from leadscore.errors import ContractError, Problem, ScoringError
from leadscore.modeling.drift import probability_to_score, psi_table
from leadscore.modeling.model import LeadScoreModel

SCORES_PARQUET = "scores.parquet"
SCORES_CSV = "scores.csv"
PREVIOUS_SCORES = "previous_scores.parquet"
AS_OF_DTYPE = pd.ArrowDtype(pa.date32())
MANIFEST = "manifest.json"
TREND_POINTS = 5
EVENT_BATCH_ROWS = 500_000
DRIFT_SAMPLE_ROWS = 100_000
REPORT_MAX_ROWS = 50_000
DRIFT_WARNINGS_SHOWN = 5
MAX_EVENT_PROBLEMS = 1_000
MAX_LEAD_PROBLEMS = 1_000


@dataclass(frozen=True)
class ModelRef:
    """Which model produced the scores."""

    name: str
    version: str
    run_id: str
    uri: str


def load_scoring_model(settings: Settings, uri: str) -> tuple[LeadScoreModel, ModelRef]:
    """The model bundle at `uri` and what to call it in the outputs; a clear error if missing."""
    from leadscore.errors import RegistryError
    from leadscore.modeling.registry import load_bundle, model_info

    try:
        info = model_info(uri, settings.mlflow.tracking_uri)
        bundle = load_bundle(uri, settings.mlflow.tracking_uri)
    except RegistryError as exc:
        raise ScoringError(
            f"{exc}\n(train and promote a model first: leadscore train --config CFG --promote, "
            "or pass --model with a model URI or an exported model folder)"
        ) from exc
    name = info.name or Path(uri).name
    return bundle, ModelRef(name, info.version or "", info.run_id or "", uri)


@dataclass
class ScoringResult:
    """What a scoring run wrote and counted."""

    out_dir: Path
    n_scored: int
    n_skipped: int
    n_explore: int
    grade_counts: dict[str, int]
    drift: pd.DataFrame
    drift_warnings: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # the run degraded (no activity data)


def grade_for(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """A–D grade per 0–100 score: A at or above thresholds['A'], then B, C; D below."""
    s = np.asarray(scores, float)
    return np.select(
        [s >= thresholds["A"], s >= thresholds["B"], s >= thresholds["C"]], ["A", "B", "C"], "D"
    )


def explore_flags(lead_ids: pd.Series, as_of: pd.Timestamp, share: float) -> np.ndarray:
    """A reproducible random share of leads per as-of date, marked for exploration."""
    if share <= 0:
        return np.zeros(len(lead_ids), bool)
    keys = lead_ids.astype("string") + f"|{as_of:%Y-%m-%d}"
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(np.uint64)
    return (hashed / np.float64(2**64)) < share


def trend_for(scores: pd.DataFrame, previous: pd.DataFrame | None) -> pd.Series:
    """up / steady / down against the previous run's score; 'new' for leads not scored before."""
    if previous is None:
        return pd.Series("", index=scores.index, dtype="string")
    before = scores["lead_id"].map(previous.set_index("lead_id")["score"])
    diff = scores["score"] - before
    out = np.select(
        [before.isna(), diff >= TREND_POINTS, diff <= -TREND_POINTS],
        ["new", "up", "down"],
        "steady",
    )
    return pd.Series(out, index=scores.index, dtype="string")


def expected_values(
    p_won: np.ndarray | None, amounts: pd.Series | None, mean_won_amount: float | None
) -> np.ndarray:
    """p_won × the lead's own deal amount where known, else the average won deal in training."""
    if p_won is None:
        return np.full(0 if amounts is None else len(amounts), np.nan)
    fallback = np.nan if mean_won_amount is None else mean_won_amount
    amount = np.full(len(p_won), fallback)
    if amounts is not None:
        own = pd.to_numeric(amounts, errors="coerce").to_numpy(float)
        amount = np.where(np.isfinite(own), own, amount)
    return np.round(p_won * amount, 2)


def iter_events(path: Path, settings: Settings) -> Iterator[pd.DataFrame]:
    """Stream the event log as frames of (lead_id, occurred_at, activity_type).

    An unparseable timestamp or a missing type is a contract problem naming the row; bad rows
    are left out of the batches and all problems raised together at the end of the file, unless
    the config says to drop bad rows.
    """
    ac = settings.activity_columns
    drop = settings.validation.drop_invalid_rows
    problems: list[Problem] = []
    offset, n_bad = 0, 0
    for raw in iter_table_batches(path, [ac.lead_id, ac.occurred_at, ac.type], EVENT_BATCH_ROWS):
        when = parse_timestamps(raw[ac.occurred_at])
        bad = (when.isna() | raw[ac.type].isna()).to_numpy(bool)
        n_bad += int(bad.sum())
        for pos in np.flatnonzero(bad)[: max(0, MAX_EVENT_PROBLEMS - len(problems))]:
            value = raw[ac.occurred_at].iloc[pos]
            problems.append(
                Problem(
                    str(path),
                    "unparseable or missing timestamp, or missing activity type",
                    None,
                    offset + int(pos) + 2,
                    None if pd.isna(value) else value,
                )
            )
        offset += len(raw)
        if drop or not problems:
            yield pd.DataFrame(
                {
                    "lead_id": raw[ac.lead_id].astype("string").str.strip(),
                    "occurred_at": when,
                    "activity_type": raw[ac.type].astype("string").str.strip(),
                }
            )[~bad]
    if problems and not drop:
        if n_bad > len(problems):
            problems.append(Problem(str(path), f"{n_bad - len(problems):,} more bad rows"))
        raise ContractError(problems)


def part_activity_stats(
    events: BucketFiles, buckets: list[int], lead_index: pd.Index, t: int, spec: FeatureSpec
) -> ActivityStats:
    """Aggregates at `t` for one part's leads, from the events spilled into its buckets."""
    stats = empty_stats(len(lead_index), spec)
    for ev in events.iter_batches(buckets, EVENT_BATCH_ROWS):
        rows = lead_index.get_indexer(ev["lead_id"])
        kinds = ev["type_code"].to_numpy(np.int64)
        add_events_at(stats, t, rows, kinds, ev["seconds"].to_numpy(np.int64), spec)
    return stats


def iter_parts(
    leads: BucketFiles,
    events: BucketFiles | None,
    part_size: int,
    t: int,
    spec: FeatureSpec,
) -> Iterator[tuple[pd.DataFrame, ActivityStats | None]]:
    """Each part's open leads and their activity aggregates, one part in memory at a time."""
    for buckets in group_buckets(leads.counts, part_size):
        snaps = leads.read(buckets)
        stats = None
        if spec.has_activities:
            index = pd.Index(snaps["lead_id"])
            stats = (
                part_activity_stats(events, buckets, index, t, spec)
                if events is not None
                else empty_stats(len(snaps), spec)
            )
        yield snaps, stats


def _chunks(
    parts: Iterable[tuple[pd.DataFrame, ActivityStats | None]], size: int
) -> Iterator[tuple[int, pd.DataFrame, ActivityStats | None]]:
    """Chunks of at most `size` leads over all parts, each with its first row's number."""
    done = 0
    for snaps, stats in parts:
        for start in range(0, len(snaps), size):
            rows = slice(start, min(start + size, len(snaps)))
            part = snaps.iloc[rows].reset_index(drop=True)
            part_stats = (
                ActivityStats(stats.counts[rows], stats.last_seconds[rows])
                if stats is not None
                else None
            )
            yield done + start, part, part_stats
        done += len(snaps)


def scoring_settings(settings: Settings, spec: FeatureSpec) -> Settings:
    """Settings that read a leads file with exactly the model's attribute columns."""
    columns = settings.columns.model_copy(
        update={"categorical": list(spec.categorical), "numeric": list(spec.numeric)}
    )
    return settings.model_copy(
        update={
            "columns": columns,
            "data": settings.data.model_copy(update={"activities": None}),
        }
    )


@dataclass
class LeadTally:
    """What reading the leads file left out, counted while it streams."""

    n_skipped: int = 0  # not open at the as-of date
    n_dropped: int = 0  # rows with problems, when the config drops them
    n_feedback: int = 0  # sales feedback outcomes applied


def lead_sources(settings: Settings, leads_path: Path | None) -> dict[str, str]:
    """The files the leads come from (for the manifest)."""
    out = {"leads": str(leads_path or settings.data.leads)}
    if leads_path is None and settings.data.outcomes is not None:
        out["outcomes"] = str(settings.data.outcomes)
    return out


def iter_open_leads(
    settings: Settings,
    spec: FeatureSpec,
    as_of: pd.Timestamp,
    leads_path: Path | None,
    tally: LeadTally,
    batch_rows: int = LEAD_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """Stream the leads file in batches; yield each batch's leads open at `as_of` (snapshots).

    Each batch goes through the data contract and gets the outcomes sales reported (feedback
    store) written on, so a lead sales already met, won, lost or disqualified is not scored.
    Problems are collected over the whole file and raised together at its end
    (`ContractError`), unless the config says to drop bad rows; `tally` counts what was left out.
    """
    from leadscore.feedback.store import apply_feedback, read_store

    with_outcomes = leads_path is None and settings.data.outcomes is not None
    history = read_store(settings.data.feedback)
    drop = settings.validation.drop_invalid_rows
    problems: list[Problem] = []
    bad_ids: set[str] = set()
    n_bad = 0
    batches = iter_lead_batches(
        scoring_settings(settings, spec), leads_path, with_outcomes, batch_rows
    )
    for leads, found in batches:
        n_bad += len(found)
        problems += found[: max(0, MAX_LEAD_PROBLEMS - len(problems))]
        if problems and not drop:
            continue  # keep reading to report every problem, but pass no more rows on
        if drop:
            bad_ids.update(p.lead_id for p in found if p.lead_id is not None)
            kept = drop_leads(leads, bad_ids)
            tally.n_dropped += len(leads) - len(kept)
            leads = kept
        if not history.empty:
            leads, counts = apply_feedback(leads, history)
            tally.n_feedback += counts.applied
        snaps, skipped = scoring_snapshots(leads, as_of)
        tally.n_skipped += skipped
        yield snaps
    if problems and not drop:
        if n_bad > len(problems):
            path = leads_path or settings.data.leads
            problems.append(Problem(str(path), f"{n_bad - len(problems):,} more problems"))
        raise ContractError(problems)


def score_chunk(
    bundle: LeadScoreModel,
    snaps: pd.DataFrame,
    stats: ActivityStats | None,
    settings: Settings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probabilities, score, grade, fit/engagement and reasons for one chunk of open leads."""
    from leadscore.modeling.explain import explain, fit_vs_engagement
    from leadscore.scoring.reasons import top_reasons

    spec = bundle.spec
    features = build_features(snaps, None, spec, stats=stats)
    probs = bundle.predict_proba(features)
    headline = bundle.headline_target
    target_model = bundle.targets[headline]
    expl = explain(target_model, features, spec)
    quantiles = bundle.reference.get("score_quantiles")
    headline_p = probs[f"p_{headline}"].to_numpy()
    score = (
        probability_to_score(headline_p, quantiles)
        if quantiles
        else np.clip(np.round(headline_p * 100), 0, 100).astype(np.int64)
    )
    out = pd.DataFrame({"lead_id": snaps["lead_id"].astype("string").to_numpy()})
    for col in probs.columns:
        out[col] = np.round(probs[col].to_numpy(), 6)
    out["score"] = score
    out["grade"] = grade_for(score, settings.score.grade_thresholds)
    split = fit_vs_engagement(expl.contrib_pp, spec)
    out["fit_score"] = np.round(split["fit_score"].to_numpy(float), 2)
    out["engagement_score"] = np.round(split["engagement_score"].to_numpy(float), 2)
    reasons = top_reasons(expl.contrib_pp, features, spec, n=settings.score.top_reasons)
    for col in reasons.columns:
        out[col] = reasons[col].astype("string").to_numpy()
    p_won = probs["p_won"].to_numpy() if "p_won" in probs else None
    amounts = snaps.get("amount", None)
    out["expected_value"] = expected_values(p_won, amounts, bundle.reference.get("mean_won_amount"))
    return out, features


def _previous_scores(out_dir: Path, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """The latest earlier run in `out_dir` (kept as previous_scores.parquet), for the trend."""
    current, previous = out_dir / SCORES_PARQUET, out_dir / PREVIOUS_SCORES
    if current.exists():
        existing = pq.read_table(current, columns=["lead_id", "score", "as_of"]).to_pandas()
        if len(existing) and pd.Timestamp(existing["as_of"].iloc[0]) < as_of:
            with atomic_path(previous) as tmp:
                tmp.write_bytes(current.read_bytes())
    if previous.exists():
        prev = pq.read_table(previous, columns=["lead_id", "score", "as_of"]).to_pandas()
        if len(prev) and pd.Timestamp(prev["as_of"].iloc[0]) < as_of:
            return prev
    return None


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / ".write-check") as tmp:
            tmp.write_text("ok")
        (out_dir / ".write-check").unlink()
    except OSError as exc:
        raise ScoringError(f"{out_dir}: output folder is not writable ({exc.strerror})") from exc


def run_scoring(
    settings: Settings,
    as_of: pd.Timestamp,
    out_dir: Path,
    leads_path: Path | None = None,
    activities_path: Path | None = None,
    model_uri: str | None = None,
    console=None,
) -> ScoringResult:
    """Score every lead open at `as_of` and write scores, reports, manifest and an MLflow run."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    log = console.print if console is not None else (lambda *a, **k: None)
    as_of = pd.Timestamp(as_of)
    out_dir = Path(out_dir)
    _check_writable(out_dir)
    uri = model_uri or f"models:/{settings.mlflow.model_name}@champion"
    bundle, ref = load_scoring_model(settings, uri)
    spec = bundle.spec
    timings["load_model"] = time.perf_counter() - clock

    # the configured event log also serves a --leads file: events of other leads are not spilled
    acts_path = activities_path or settings.data.activities
    data_warnings = []
    if spec.has_activities and acts_path is None:
        data_warnings.append(
            "no activity data: the model uses activity features but no activities file was "
            "given (--activities) or configured (data.activities), so every lead is scored as "
            "if it had no activity"
        )
    for w in data_warnings:
        log(f"[yellow]warning[/]: {w}")
    tally = LeadTally()
    sources = lead_sources(settings, leads_path)
    t = int(to_seconds(pd.DatetimeIndex([as_of]))[0])
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".spill-") as spill_dir:
        batches = iter_open_leads(settings, spec, as_of, leads_path, tally, LEAD_BATCH_ROWS)
        leads, open_hashes = spill_leads(batches, Path(spill_dir))
        n_open, n_skipped = int(leads.counts.sum()), tally.n_skipped
        if tally.n_feedback:
            log(f"sales feedback: {tally.n_feedback:,} outcome(s) taken into account")
        if tally.n_dropped:
            log(f"[yellow]warning[/]: {tally.n_dropped:,} lead row(s) with problems left out")
        log(f"{n_open:,} open leads at {as_of:%Y-%m-%d} ({n_skipped:,} skipped: not open)")
        if n_open == 0:
            raise ScoringError(f"no lead is open at {as_of:%Y-%m-%d}: nothing to score")
        timings["read_leads"] = time.perf_counter() - clock - sum(timings.values())

        events, n_events = None, 0
        if spec.has_activities and acts_path is not None:
            batches = iter_events(acts_path, settings)
            events, n_events = spill_events(
                batches, open_hashes, spec.activity_types, t, Path(spill_dir)
            )
            log(f"{n_events:,} activities of open leads before {as_of:%Y-%m-%d} kept")
        del open_hashes
        pa.default_memory_pool().release_unused()
        timings["activities"] = time.perf_counter() - clock - sum(timings.values())

        previous = _previous_scores(out_dir, as_of)
        parts = iter_parts(leads, events, settings.score.part_size, t, spec)
        with chunk_progress(console, n_open) as advance:
            run = _score_in_chunks(
                bundle, parts, n_open, settings, as_of, ref, previous, out_dir, advance
            )
        timings["score_explain"] = time.perf_counter() - clock - sum(timings.values())

    drift = psi_table(run.drift_features, bundle.reference, run.drift_scores)
    threshold = settings.score.psi_threshold
    warnings = [
        f"drift: {row.feature} has PSI {row.psi:.3f} (> {threshold})"
        for row in drift.itertuples()
        if row.psi > threshold
    ]
    for w in warnings[:DRIFT_WARNINGS_SHOWN]:
        log(f"[yellow]warning[/]: {w}")
    if len(warnings) > DRIFT_WARNINGS_SHOWN:
        log(
            f"[yellow]warning[/]: drift above {threshold} in {len(warnings)} features in all "
            f"(see drift_psi.csv in the MLflow scoring run)"
        )

    meta = _report_meta(settings, ref, as_of, n_skipped, run)
    paths = _write_reports(run, n_open, data_warnings, out_dir, meta)
    paths.update(run.paths)
    timings["reports"] = time.perf_counter() - clock - sum(timings.values())
    result = ScoringResult(
        out_dir=out_dir,
        n_scored=n_open,
        n_skipped=n_skipped,
        n_explore=run.n_explore,
        grade_counts=run.grade_counts,
        drift=drift,
        drift_warnings=warnings,
        timings={k: round(v, 3) for k, v in timings.items()},
        paths=paths,
        warnings=data_warnings,
    )
    manifest = _manifest(settings, sources, acts_path, ref, as_of, result, n_events)
    manifest["activity_data"] = events is not None
    paths["manifest"] = write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _log_scoring_run(settings, ref, as_of, result, run.score_hist, paths)
    return result


@dataclass
class _ChunkedRun:
    """What the chunk loop keeps: the top rows for reports, counts, a sample for drift."""

    top: pd.DataFrame
    n_explore: int
    grade_counts: dict[str, int]
    score_hist: np.ndarray
    drift_features: pd.DataFrame
    drift_scores: np.ndarray
    paths: dict[str, Path]


def _score_in_chunks(
    bundle: LeadScoreModel,
    parts: Iterable[tuple[pd.DataFrame, ActivityStats | None]],
    n: int,
    settings: Settings,
    as_of: pd.Timestamp,
    ref: ModelRef,
    previous: pd.DataFrame | None,
    out_dir: Path,
    progress: Callable[[int], None],
) -> _ChunkedRun:
    from leadscore.reporting.report import safe_text

    chunk = settings.score.chunk_size
    drift_stride = max(1, n // DRIFT_SAMPLE_ROWS)
    top = pd.DataFrame()
    hist = np.zeros(101, np.int64)
    grades = dict.fromkeys("ABCD", 0)
    n_explore = 0
    drift_parts, drift_scores = [], []
    paths = {"scores_parquet": out_dir / SCORES_PARQUET, "scores_csv": out_dir / SCORES_CSV}
    with (
        atomic_path(paths["scores_parquet"]) as pq_tmp,
        atomic_path(paths["scores_csv"]) as csv_tmp,
    ):
        pq_writer = csv_writer = None
        for start, part, part_stats in _chunks(parts, chunk):
            rows = slice(start, start + len(part))
            out, features = score_chunk(bundle, part, part_stats, settings)
            out["explore"] = explore_flags(out["lead_id"], as_of, settings.score.explore_share)
            out["trend"] = trend_for(out, previous)
            out["model_name"] = ref.name
            out["model_version"] = ref.version
            out["run_id"] = ref.run_id
            # a date (date32 in Parquet, YYYY-MM-DD in the CSV), not a midnight timestamp
            out["as_of"] = pd.Series(as_of.date(), index=out.index, dtype=AS_OF_DTYPE)
            table = pa.Table.from_pandas(out, preserve_index=False)
            safe = out.copy()
            for col in safe.columns:
                if pd.api.types.is_string_dtype(safe[col]) and col not in ("grade", "trend"):
                    safe[col] = safe_text(safe[col])
            safe_table = pa.Table.from_pandas(safe, preserve_index=False)
            if pq_writer is None:
                pq_writer = pq.ParquetWriter(pq_tmp, table.schema, compression="zstd")
                csv_writer = pacsv.CSVWriter(csv_tmp, safe_table.schema)
            pq_writer.write_table(table)
            csv_writer.write_table(safe_table)
            n_explore += int(out["explore"].sum())
            for g, c in out["grade"].value_counts().items():
                grades[str(g)] += int(c)
            hist += np.bincount(out["score"].to_numpy(), minlength=101)[:101]
            top = (
                pd.concat([top, out])
                .sort_values(["score", "lead_id"], ascending=[False, True], kind="stable")
                .head(REPORT_MAX_ROWS)
            )
            keep = np.arange(start, rows.stop)[(np.arange(start, rows.stop) % drift_stride) == 0]
            drift_parts.append(features.iloc[keep - start])
            drift_scores.append(out["score"].to_numpy()[keep - start])
            progress(rows.stop)
        if pq_writer is None:
            raise ScoringError(f"no lead is open at {as_of:%Y-%m-%d}: nothing to score")
        pq_writer.close()
        csv_writer.close()
    features_sample = pd.concat(drift_parts)
    return _ChunkedRun(
        top=top.reset_index(drop=True),
        n_explore=n_explore,
        grade_counts=grades,
        score_hist=hist,
        drift_features=features_sample,
        drift_scores=np.concatenate(drift_scores),
        paths=paths,
    )


@contextlib.contextmanager
def chunk_progress(console, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal, a plain log line per chunk otherwise (cron, pipes)."""
    if console is None:
        yield lambda done: None
        return
    if not console.is_terminal:
        yield lambda done: console.print(f"scored {done:,}/{total:,} leads")
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("scoring and explaining", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("score", total=total)
        yield lambda done: bar.update(task, completed=done)
    console.print(f"scored {total:,}/{total:,} leads")


def _report_meta(
    settings: Settings,
    ref: ModelRef,
    as_of: pd.Timestamp,
    n_skipped: int,
    run: _ChunkedRun,
) -> dict:
    return {
        "model_name": ref.name,
        "model_version": ref.version,
        "run_id": ref.run_id,
        "model_uri": ref.uri,
        "as_of": f"{as_of:%Y-%m-%d}",
        "n_skipped": n_skipped,
        "n_explore": run.n_explore,
        "explore_share": settings.score.explore_share,
        "grade_thresholds": dict(settings.score.grade_thresholds),
        "headline_target": settings.headline_target,
        "top_n": settings.score.report_top_n,
    }


def _write_reports(
    run: _ChunkedRun, n_scored: int, warnings: list[str], out_dir: Path, meta: dict
) -> dict[str, Path]:
    """report.xlsx and report.html: the top rows listed, the summary counted over the run."""
    from leadscore.reporting.report import RunSummary, write_report_html, write_report_xlsx

    summary = RunSummary(
        n_scored=n_scored,
        grade_counts=dict(run.grade_counts),
        score_hist=tuple(int(c) for c in run.score_hist),
        warnings=tuple(warnings),
    )
    xlsx, html = out_dir / "report.xlsx", out_dir / "report.html"
    write_report_xlsx(run.top, xlsx, meta, summary=summary)
    write_report_html(run.top, html, meta, summary=summary)
    return {"report_xlsx": xlsx, "report_html": html}


def _manifest(
    settings: Settings,
    sources: dict[str, str],
    acts_path: Path | None,
    ref: ModelRef,
    as_of: pd.Timestamp,
    result: ScoringResult,
    n_events: int,
) -> dict:
    inputs = {name: str(path) for name, path in sources.items()}
    if acts_path is not None:
        inputs["activities"] = str(acts_path)
    return {
        "as_of": f"{as_of:%Y-%m-%d}",
        "model": {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "uri": ref.uri},
        "inputs": {
            name: {"path": path, "sha256": file_digest(path)} for name, path in inputs.items()
        },
        "counts": {
            "scored": result.n_scored,
            "skipped_not_open": result.n_skipped,
            "explore": result.n_explore,
            "activities": n_events,
            "grades": result.grade_counts,
        },
        "warnings": result.warnings,
        "drift_warnings": result.drift_warnings,
        "timings_seconds": result.timings,
        "outputs": {k: str(v) for k, v in result.paths.items()},
        "config": str(settings.source_path) if settings.source_path else None,
    }


def _log_scoring_run(
    settings: Settings,
    ref: ModelRef,
    as_of: pd.Timestamp,
    result: ScoringResult,
    score_hist: np.ndarray,
    paths: dict[str, Path],
) -> None:
    """One MLflow run per scoring: counts, score distribution, drift (PSI) and the manifest."""
    from leadscore.modeling.registry import ensure_experiment, mlflow_module

    mlflow = mlflow_module(settings.mlflow.tracking_uri)
    experiment_id = ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"score {as_of:%Y-%m-%d}"):
        mlflow.set_tags(
            {
                "leadscore.run_type": "scoring",
                "as_of": f"{as_of:%Y-%m-%d}",
                "model_name": ref.name,
                "model_version": ref.version,
                "model_run_id": ref.run_id,
                "drift_warning": str(bool(result.drift_warnings)).lower(),
            }
        )
        scores = np.repeat(np.arange(101), score_hist)
        metrics = {
            "n_scored": result.n_scored,
            "n_skipped": result.n_skipped,
            "n_explore": result.n_explore,
            "score_mean": float(scores.mean()) if len(scores) else 0.0,
            "score_median": float(np.median(scores)) if len(scores) else 0.0,
        }
        metrics.update(
            {
                f"grade_{g}_share": c / max(result.n_scored, 1)
                for g, c in result.grade_counts.items()
            }
        )
        metrics.update({f"psi.{_metric_key(r.feature)}": r.psi for r in result.drift.itertuples()})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(
            {"score": list(range(101)), "count": score_hist.tolist()}, "score_distribution.json"
        )
        mlflow.log_text(result.drift.to_csv(index=False), "drift_psi.csv")
        if "manifest" in paths:
            mlflow.log_artifact(str(paths["manifest"]))


def _metric_key(name: str) -> str:
    from leadscore.data.features import slug

    return slug(name)[:200]
