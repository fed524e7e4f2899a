"""Time `leadscore.scoring.run.run_scoring` on open leads, against LightGBM's native `pred_contrib`.

One model is trained first (`train_child`: `write_sample` with `--train-leads` leads, seed 0,
`sample_settings` with a private SQLite MLflow store, `run_training(..., promote=True)`), in its
own interpreter. Then, for each size N in `--sizes` (a number of *open* leads to score), a
sample big enough to hold about N leads open at the as-of date is written (seed 1; about 45% of
sample leads are open at the export date: the share is measured on the training sample and 1%
headroom added) and scored in a fresh interpreter (`score_child`), itself started by a small
wrapper (`machine.measure`) that reads `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`: the peak
resident set of the scoring process alone (a wrapper, because a process started by vfork/exec
from a big parent inherits the parent's peak). The whole `run_scoring` is timed (model load,
reading the leads and spilling the open ones to disk by lead id, streaming the event log and
spilling the open leads' events, then part by part: aggregating events, predicting both targets,
exact TreeSHAP of the headline target, reasons, writing scores.parquet/scores.csv; then reports,
manifest, MLflow scoring run) with its step times (`ScoringResult.timings`); a sampler thread in
the scoring process records its resident memory, so each step's peak is known (approximately:
samples are 50 ms apart), and the scorer's building blocks (timestamp parsing, per-part
aggregation, features, predictions, `explain`, reasons, `score_chunk`) are wrapped with a
stopwatch to split the big steps.

Native baseline, on the same booster and data: after the scoring run, in the same process (its
peak already taken), the scorer's first part of at most `--native-rows` open leads (its own
spill and parts) gets its features (`build_features` on that part's activity aggregates), and
the best of repeated `booster.predict(model.transform(X), pred_contrib=True, num_threads=2)` on
the headline target's booster gives rows/s, beside `explain` and the scorer's `score_chunk` on
the same rows.

Prints tables and appends a dated section to docs/benchmarks.md.
Target: 1,000,000 open leads scored and explained within 10 minutes and 2 GB on 2 cores,
peak memory flat in the number of leads.

    .venv/bin/python benchmarks/bench_score.py                     # 100k and 1M open leads
    .venv/bin/python benchmarks/bench_score.py --sizes 20000 --train-leads 20000
    .venv/bin/python benchmarks/bench_score.py --chunk-size 50000  # try a config change
    .venv/bin/python benchmarks/bench_score.py --no-append         # print only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd
from machine import (  # benchmarks/machine.py, beside this script
    REPO,
    append_section,
    captured_log,
    child_command,
    entry,
    machine,
    run_child_process,
    run_measured,
)

import leadscore.data.streams as streams_module
import leadscore.scoring.chunks as chunks_module
import leadscore.scoring.predict as predict_module
import leadscore.scoring.stream as stream_module
from leadscore.config import Settings
from leadscore.data.features import build_features, to_seconds
from leadscore.data.sample import sample_settings, write_sample
from leadscore.data.spill import spill_events, spill_leads
from leadscore.data.streams import iter_events
from leadscore.modeling.explain import explain
from leadscore.modeling.model import LeadScoreModel
from leadscore.modeling.train import run_training
from leadscore.scoring.predict import score_chunk
from leadscore.scoring.run import run_scoring
from leadscore.scoring.stream import LeadTally, iter_open_leads, iter_parts
from leadscore.scoring.tracking import load_scoring_model

DEFAULT_SIZES = (100_000, 1_000_000)
AS_OF = "2026-11-01"
THREADS = 2
TARGET_SECONDS = 10 * 60
TARGET_GIB = 2.0
STEPS = ("load_model", "read_leads", "activities", "score_explain", "reports", "manifest_mlflow")
SAMPLE_EVERY_S = 0.05  # RSS sampling interval of the scoring process
KEPT_METRICS = ("roc_auc", "pr_auc", "log_loss")

# the scorer's building blocks timed inside the big steps, each wrapped in the module that
# calls it: (module or class, attribute, only when called from this function, or None)
STOPWATCHES: tuple[tuple[object, str, str | None], ...] = (
    (streams_module, "parse_timestamps", "iter_events"),  # the event log's, not the leads'
    (stream_module, "part_activity_stats", None),
    (chunks_module, "score_chunk", None),
    (predict_module, "build_features", None),
    (predict_module, "explain", None),
    (predict_module, "top_reasons", None),
    (LeadScoreModel, "predict_proba", None),
)


def bench_settings(data: Path, store: Path, overrides: dict) -> Settings:
    """The sample's settings for data in `data`, a private MLflow store in `store`, LightGBM on
    THREADS threads and the run's config overrides (`{"model": {...}, "score": {...}}`)."""
    return sample_settings(
        data,
        f"sqlite:///{store}/mlruns.db",
        data={"feedback": str(store / "feedback")},
        train={"model": {"n_jobs": THREADS, **overrides.get("model", {})}},
        score=overrides.get("score", {}),
        mlflow={"export_dir": str(store / "champion")},
    )


# ---- child programs (each runs in its own interpreter: `child_command(__file__, name, ...)`)


def write_child(data: str, n_leads: int, seed: int) -> None:
    """Child program: write the sample funnel into `data`."""
    write_sample(Path(data), n_leads=n_leads, seed=seed)


def open_share(data: Path, as_of: pd.Timestamp) -> float:
    """Share of the sample's leads created by `as_of` and still open (no outcome yet) then."""
    dates = ["created_at", "meeting_at", "won_at", "lost_at"]
    leads = pd.read_csv(data / "leads.csv", usecols=dates, parse_dates=dates)
    closed = leads[["meeting_at", "won_at", "lost_at"]].min(axis=1)
    is_open = (leads["created_at"] <= as_of) & (closed.isna() | (closed > as_of))
    return float(is_open.mean())


def tree_depth(node: dict) -> int:
    """Depth of a tree of LightGBM's `dump_model`."""
    if "split_index" not in node:
        return 0
    return 1 + max(tree_depth(node["left_child"]), tree_depth(node["right_child"]))


def model_summary(model) -> dict:
    """Trees, leaves, depth, booster columns and calibrator of one target's model."""
    booster = model.booster
    info = booster.dump_model()["tree_info"]
    return {
        "trees": booster.num_trees(),
        "leaves": sum(t["num_leaves"] for t in info),
        "max_leaves": max(t["num_leaves"] for t in info),
        "max_depth": max(tree_depth(t["tree_structure"]) for t in info),
        "booster_columns": booster.num_feature(),
        "calibrator": getattr(model.calibrator, "method_", None)
        or getattr(model.calibrator, "method", None),
    }


def train_child(data: str, store: str, n_leads: int, overrides: dict, as_of: str) -> dict:
    """Child program: write the training sample (seed 0) and train + promote a champion."""
    data_dir, store_dir = Path(data), Path(store)
    write_sample(data_dir, n_leads=n_leads, seed=0)
    share = open_share(data_dir, pd.Timestamp(as_of))
    settings = bench_settings(data_dir, store_dir, overrides)
    with captured_log() as buffer:
        start = time.perf_counter()
        result = run_training(settings, promote=True)
        wall = time.perf_counter() - start
    sys.stderr.write(buffer.getvalue())
    metrics = {
        k: v
        for k, v in result.metrics.items()
        if k.count(".") == 1 and k.split(".")[1] in KEPT_METRICS
    }
    return {
        "wall_s": wall,
        "open_share": share,
        "examples": result.counts["counts.examples"],
        "features": len(result.bundle.spec.columns),
        "headline": result.bundle.headline_target,
        "models": {t: model_summary(m) for t, m in result.bundle.targets.items()},
        "metrics": metrics,
        "model_uri": result.model_uri,
        "promoted": bool(result.promotion is not None and result.promotion.promoted),
    }


class RssSampler:
    """A thread recording (time, resident bytes) of this process every SAMPLE_EVERY_S."""

    page = os.sysconf("SC_PAGE_SIZE")

    def __init__(self):
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def rss(cls) -> int:
        """Resident bytes of this process now (/proc/self/statm)."""
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * cls.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.rss()))
            time.sleep(SAMPLE_EVERY_S)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak_gib(self, lo: float, hi: float) -> float:
        """Highest sample between `lo` and `hi` (plus one interval), in GiB."""
        inside = [r for s, r in self.samples if lo <= s <= hi + SAMPLE_EVERY_S]
        return max(inside or [0]) / 2**30


@contextmanager
def stopwatches(inner: dict[str, float]) -> Iterator[None]:
    """Wrap the STOPWATCHES building blocks so that their seconds add up in `inner`; unwrap
    them on exit."""

    def timed(name: str, fn: Callable, only_from: str | None) -> Callable:
        def wrapper(*args, **kwargs):
            if only_from is not None and sys._getframe(1).f_code.co_name != only_from:
                return fn(*args, **kwargs)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inner[name] = inner.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in STOPWATCHES]
    for (owner, name, fn), (_, _, only_from) in zip(originals, STOPWATCHES, strict=True):
        setattr(owner, name, timed(name, fn, only_from))
    try:
        yield
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)


def step_peaks(sampler: RssSampler, start: float, timings: dict[str, float]) -> dict[str, float]:
    """Peak RSS (GiB) during each step, the steps laid end to end from `start`."""
    peaks, t = {}, start
    for step, seconds in timings.items():
        peaks[step] = sampler.peak_gib(t, t + seconds)
        t += seconds
    return peaks


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Fastest wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def native_baseline(
    settings: Settings, as_of: pd.Timestamp, out: Path, native_rows: int, repeats: int
) -> dict:
    """Same booster, the scorer's first part of open leads: native `pred_contrib` against the
    scorer's pieces (best of `repeats`)."""
    bundle, _ = load_scoring_model(settings, f"models:/{settings.mlflow.model_name}@champion")
    spec = bundle.spec
    t = int(to_seconds(pd.DatetimeIndex([as_of]))[0])
    with tempfile.TemporaryDirectory(dir=out) as spill:
        opened = iter_open_leads(settings, spec, as_of, None, LeadTally())
        leads, open_ids = spill_leads(opened, Path(spill))
        events = None
        if spec.has_activities:
            events, _ = spill_events(
                iter_events(settings.data.activities, settings),
                open_ids,
                spec.activity_types,
                t,
                Path(spill),
            )
        part, stats = next(iter_parts(leads, events, native_rows, t, spec))
    features = build_features(part, None, spec, stats=stats)
    model = bundle.targets[bundle.headline_target]
    booster_input = model.transform(features[spec.columns])
    booster = model.booster
    return {
        "rows": len(part),
        "pred_contrib_s": best_of(
            repeats, lambda: booster.predict(booster_input, pred_contrib=True, num_threads=THREADS)
        ),
        "predict_s": best_of(repeats, lambda: booster.predict(booster_input, num_threads=THREADS)),
        "transform_s": best_of(repeats, lambda: model.transform(features[spec.columns])),
        "explain_s": best_of(repeats, lambda: explain(model, features, spec, num_threads=THREADS)),
        "score_chunk_s": best_of(repeats, lambda: score_chunk(bundle, part, stats, settings)),
    }


def score_child(
    data: str,
    store: str,
    out: str,
    overrides: dict,
    as_of: str,
    native_rows: int,
    repeats: int,
) -> dict:
    """Child program: time `run_scoring` (its steps, the building blocks inside, peak memory per
    step), then the native baseline on the same booster (after the peak is taken)."""
    as_of_ts, out_dir = pd.Timestamp(as_of), Path(out)
    settings = bench_settings(Path(data), Path(store), overrides)
    rss_imports = RssSampler.rss()
    inner: dict[str, float] = {}
    sampler = RssSampler()
    sampler.start()
    with stopwatches(inner):
        start = time.perf_counter()
        result = run_scoring(settings, as_of=as_of_ts, out_dir=out_dir)
        wall = time.perf_counter() - start
    sampler.stop()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    timings = dict(result.timings)
    timings["manifest_mlflow"] = max(wall - sum(timings.values()), 0.0)
    row = {
        "wall_s": wall,
        "timings": timings,
        "n_scored": result.n_scored,
        "n_skipped": result.n_skipped,
        "peak_kib": peak_kib,
        "rss_imports_gib": rss_imports / 2**30,
        "step_peak_gib": step_peaks(sampler, start, timings),
        "inner_s": inner,
        "outputs_mb": {
            k: Path(p).stat().st_size / 1e6 for k, p in result.paths.items() if Path(p).exists()
        },
    }
    if native_rows > 0:
        row["native"] = native_baseline(settings, as_of_ts, out_dir, native_rows, repeats)
    return row


# ---- the benchmark


def train(store: Path, n_leads: int, overrides: dict) -> dict:
    """Write the training sample and train + promote a champion into `store` (own interpreter)."""
    command = child_command(
        __file__,
        "train",
        data=store / "train-data",
        store=store,
        n_leads=n_leads,
        overrides=overrides,
        as_of=AS_OF,
    )
    return run_child_process(command, store, f"training on {n_leads:,} leads")


def run_size(
    n_open: int,
    open_share: float,
    store: Path,
    scratch: Path,
    overrides: dict,
    native_rows: int,
    repeats: int,
) -> dict:
    """Write a sample holding ~n_open open leads, then score it in a measured fresh interpreter."""
    n_leads = math.ceil(n_open / open_share * 1.01)  # 1% headroom: at least n_open are open
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-score-") as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "scores"
        write = child_command(__file__, "write", data=data, n_leads=n_leads, seed=1)
        run_child_process(write, REPO, f"writing the sample of {n_leads:,} leads")
        sample_mb = sum(p.stat().st_size for p in data.iterdir()) / 1e6
        child = child_command(
            __file__,
            "score",
            data=data,
            store=store,
            out=out,
            overrides=overrides,
            as_of=AS_OF,
            native_rows=native_rows,
            repeats=repeats,
        )
        row, peak_kib_children = run_measured(child, store, f"scoring at {n_open:,} open leads")
    row.update(
        size=n_open,
        n_leads=n_leads,
        sample_mb=sample_mb,
        peak_kib_children=peak_kib_children,
        load=(load_before, os.getloadavg()[0]),
        chunk_size=overrides.get("score", {}).get("chunk_size", 100_000),
    )
    return row


def peak_gib(r: dict) -> float:
    """Peak RSS of the scoring run (the process's own ru_maxrss, taken right after scoring)."""
    return r["peak_kib"] / 2**20


def table(rows: list[dict]) -> str:
    """Markdown table: wall time, throughput, peak memory, against the targets."""
    lines = [
        "| open leads scored | sample leads | chunk size | wall time (s) | leads/s (full run) "
        "| leads/s (score + explain step) | native `pred_contrib` rows/s | full run / native "
        "| peak RSS (GiB) | 10 min for 1M (scaled) | 2 GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|:--|",
    ]
    for r in rows:
        rate = r["n_scored"] / r["wall_s"]
        step_rate = r["n_scored"] / max(r["timings"]["score_explain"], 1e-9)
        nat = r.get("native")
        native_rate = nat["rows"] / nat["pred_contrib_s"] if nat else float("nan")
        at_1m = 1e6 / rate
        fast = "yes" if at_1m <= TARGET_SECONDS else "NO"
        small = "yes" if peak_gib(r) <= TARGET_GIB else "NO"
        lines.append(
            f"| {r['n_scored']:,} | {r['n_leads']:,} | {r['chunk_size']:,} | {r['wall_s']:.1f} | "
            f"{rate:,.0f} | {step_rate:,.0f} | {native_rate:,.0f} | {rate / native_rate:.0%} | "
            f"{peak_gib(r):.2f} | {fast} ({at_1m / 60:.1f} min) | {small} |"
        )
    return "\n".join(lines)


def steps_table(rows: list[dict]) -> str:
    """Where the time and the memory go: seconds and peak RSS per `run_scoring` step."""
    head = " | ".join(f"{s} (s / GiB)" for s in STEPS)
    lines = [
        f"| open leads | load avg before / after | RSS after imports (GiB) | {head} |",
        "|---:|---:|---:|" + "---:|" * len(STEPS),
    ]
    for r in rows:
        cells = " | ".join(
            f"{r['timings'].get(s, 0.0):.1f} / {r['step_peak_gib'].get(s, 0.0):.2f}" for s in STEPS
        )
        load = f"{r['load'][0]:.1f} / {r['load'][1]:.1f}"
        lines.append(f"| {r['n_scored']:,} | {load} | {r['rss_imports_gib']:.2f} | {cells} |")
    return "\n".join(lines)


def inner_table(rows: list[dict]) -> str:
    """Inside the two big steps: seconds in the scorer's building blocks."""
    lines = [
        "| open leads | activities: parse timestamps | CSV reading, hashing, spilling to disk "
        "| score: aggregate each part's events | build features | predict both targets "
        "| explain (TreeSHAP, headline) | reasons | rest of `score_chunk` "
        "| rest of the chunk loop (flags, copies, Parquet + CSV writing, top rows) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        i, t = r["inner_s"], r["timings"]
        chunk = ("build_features", "predict_proba", "explain", "top_reasons")
        cells = [
            i.get("parse_timestamps", 0.0),
            t["activities"] - i.get("parse_timestamps", 0.0),
            i.get("part_activity_stats", 0.0),
            *(i.get(k, 0.0) for k in chunk),
            i.get("score_chunk", 0.0) - sum(i.get(k, 0.0) for k in chunk),
            t["score_explain"] - i.get("score_chunk", 0.0) - i.get("part_activity_stats", 0.0),
        ]
        lines.append(f"| {r['n_scored']:,} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    return "\n".join(lines)


def native_table(rows: list[dict]) -> str:
    """Same booster, same rows: native pred_contrib against the scorer's pieces."""
    lines = [
        "| open leads (sample) | rows | step | wall time (s) | rows/s |",
        "|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        nat = r.get("native")
        if not nat:
            continue
        for label, key in (
            ("native `booster.predict(X, pred_contrib=True, num_threads=2)`", "pred_contrib_s"),
            ("native `booster.predict(X)` (no contributions)", "predict_s"),
            ("`TargetModel.transform` (preprocessing)", "transform_s"),
            ("`explain` (headline target)", "explain_s"),
            ("`score_chunk` (both targets, explain, reasons)", "score_chunk_s"),
        ):
            t = nat[key]
            rate = nat["rows"] / t
            lines.append(
                f"| {r['n_scored']:,} | {nat['rows']:,} | {label} | {t:.2f} | {rate:,.0f} |"
            )
    return "\n".join(lines)


def model_line(trained: dict, train_leads: int) -> str:
    """The trained model's size and validation metrics, in one paragraph."""
    parts = []
    for target, m in trained["models"].items():
        metrics = trained["metrics"]
        parts.append(
            f"{target}: {m['trees']} trees, {m['leaves']:,} leaves (at most {m['max_leaves']} per "
            f"tree, depth at most {m['max_depth']}), {m['booster_columns']} booster columns, "
            f"validation ROC AUC {metrics.get(f'{target}.roc_auc', float('nan')):.4f}, "
            f"PR AUC {metrics.get(f'{target}.pr_auc', float('nan')):.4f}, "
            f"log loss {metrics.get(f'{target}.log_loss', float('nan')):.4f}"
        )
    return (
        f"Model trained on {train_leads:,} sample leads ({trained['examples']:,} examples, "
        f"{trained['features']} features, {trained['wall_s']:.0f} s), headline target "
        f"`{trained['headline']}`; " + "; ".join(parts) + "."
    )


def section(rows: list[dict], info: dict[str, str], trained: dict, args) -> str:
    """The dated docs/benchmarks.md section for this run."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    spec = ", ".join(f"{k} {v}" for k, v in info.items())
    overrides = _overrides(args)
    note = f" Config overrides: `{json.dumps(overrides)}`." if overrides else ""
    return (
        f"\n## Scoring (`run_scoring`), {stamp}\n\n"
        f"Machine: {spec}. LightGBM threads: {THREADS}.\n"
        f"{model_line(trained, args.train_leads)}{note}\n"
        f"Each size: a sample written with seed 1, sized so that about that many leads are open at "
        f"{AS_OF} (the export date), scored by `run_scoring` in a fresh process (model load, "
        "leads and event log streamed and spilled to disk by lead id, then part by part: events "
        "aggregated, both targets predicted, exact TreeSHAP of the "
        "headline target carried onto probability points, reasons, scores.parquet and "
        "scores.csv, reports, manifest, MLflow run); peak RSS is that process's `ru_maxrss` taken "
        "right after scoring. Native: best of repeated `pred_contrib` calls on the headline "
        "booster for the booster input (`TargetModel.transform`) of the scorer's first part of "
        "open leads. "
        "Target: 1M open leads within 10 min and 2 GB on 2 cores, memory flat in the number "
        "of leads.\n\n"
        f"{table(rows)}\n\n"
        "Seconds and peak RSS per step (RSS sampled every 50 ms):\n\n"
        f"{steps_table(rows)}\n\n"
        "Seconds inside the two big steps (the scorer's functions wrapped with a stopwatch):\n\n"
        f"{inner_table(rows)}\n\n"
        "Same booster, same rows:\n\n"
        f"{native_table(rows)}\n"
    )


def _overrides(args) -> dict:
    model = {
        k: v
        for k, v in (
            ("n_estimators", args.n_estimators),
            ("num_leaves", args.num_leaves),
            ("early_stopping_rounds", args.early_stopping_rounds),
        )
        if v is not None
    }
    score = {"chunk_size": args.chunk_size} if args.chunk_size else {}
    return {k: v for k, v in (("model", model), ("score", score)) if v}


def main(argv: list[str] | None = None) -> int:
    """Train once, score each size, print the tables and append them to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="open leads to score"
    )
    parser.add_argument("--train-leads", type=int, default=100_000)
    parser.add_argument("--native-rows", type=int, default=50_000, help="0: no native baseline")
    parser.add_argument("--repeats", type=int, default=3, help="native baseline: best of")
    parser.add_argument("--chunk-size", type=int, default=None, help="score.chunk_size")
    parser.add_argument("--n-estimators", type=int, default=None, help="train.model.n_estimators")
    parser.add_argument("--num-leaves", type=int, default=None, help="train.model.num_leaves")
    parser.add_argument(
        "--early-stopping-rounds",
        type=int,
        default=None,
        help="train.model.early_stopping_rounds (a large value trains all n_estimators trees)",
    )
    parser.add_argument("--scratch", type=Path, default=None, help="where to write the files")
    parser.add_argument("--no-append", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    scratch = args.scratch or Path(os.environ.get("TMPDIR", "/tmp"))
    overrides = _overrides(args)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-score-store-") as tmp:
        store = Path(tmp)
        trained = train(store, args.train_leads, overrides)
        if not trained["promoted"]:
            raise RuntimeError("the trained model was not promoted to champion")
        print(model_line(trained, args.train_leads), flush=True)
        print(f"open at {AS_OF}: {trained['open_share']:.1%} of sample leads", flush=True)
        rows = []
        for n in args.sizes:
            row = run_size(
                n, trained["open_share"], store, scratch, overrides, args.native_rows, args.repeats
            )
            rows.append(row)
            print(
                f"{row['n_scored']:>10,} open leads ({row['n_leads']:,} in the sample): "
                f"{row['wall_s']:7.1f} s, {row['n_scored'] / row['wall_s']:,.0f} leads/s, "
                f"peak {peak_gib(row):.2f} GiB "
                f"(wrapper RUSAGE_CHILDREN {row['peak_kib_children'] / 2**20:.2f} GiB), "
                f"steps {json.dumps({k: round(v, 1) for k, v in row['timings'].items()})}",
                flush=True,
            )
    info = machine("lightgbm", "numpy", "pandas", "pyarrow")
    print()
    print(table(rows))
    print()
    print(steps_table(rows))
    print()
    print(inner_table(rows))
    print()
    print(native_table(rows))
    if not args.no_append:
        report = append_section(section(rows, info, trained, args))
        print(f"\nappended to {report.relative_to(REPO)}")
    return 0


CHILDREN = {"write": write_child, "train": train_child, "score": score_child}

if __name__ == "__main__":
    raise SystemExit(entry(main, CHILDREN))
