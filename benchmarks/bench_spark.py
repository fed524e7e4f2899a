"""Time `run_scoring` with the Spark engine (`local[2]`) against the local engine, same data and
model, and measure the peak memory of the driver and of the executors.

One model is trained first (`bench_score.train`: `write_sample` with `--train-leads` leads, seed
0, promoted to champion in a private SQLite MLflow store). For each size N in `--sizes` (open
leads), a sample holding about N open leads is written (seed 1, as `bench_score` sizes it) and
scored twice, each in a fresh interpreter (`engine_child`): by the local engine, then by the
Spark engine on `--master` (default `local[2]`, Spark's UI off). A sampler thread in that
process reads the resident memory of the process tree every 0.25 s: the Python driver, the JVM
(in local mode the executors are threads of the driver's JVM) and Spark's Python workers (their
sum: they run side by side); peaks are reported per role. Wall time covers the whole
`run_scoring` (for Spark: starting the session too). The two score files are compared (sorted
by lead id): the same leads, probabilities to 1e-9, the same scores, grades, reasons and trend.

Prints a table and appends a dated section to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_spark.py                        # 1M open leads
    .venv/bin/python benchmarks/bench_spark.py --sizes 200000 --train-leads 20000
    .venv/bin/python benchmarks/bench_spark.py --no-append            # print only
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from bench_score import AS_OF, bench_settings, model_line, train
from bench_score import __file__ as BENCH_SCORE
from machine import (  # benchmarks/machine.py, beside this script
    REPO,
    append_section,
    child_command,
    entry,
    machine,
    run_child_process,
    run_measured,
)

from leadscore.config import SparkSettings
from leadscore.scoring.run import run_scoring
from leadscore.spark import spark_scorer

DEFAULT_SIZES = (1_000_000,)
SAMPLE_EVERY_S = 0.25
PAGE = os.sysconf("SC_PAGE_SIZE")
COMPARED = ("score", "grade", "trend", "reason_pos_1", "reason_neg_1", "explore", "dormant")


def _proc(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, command name, resident bytes) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        with open(f"/proc/{pid}/statm") as fh:
            rss = int(fh.read().split()[1]) * PAGE
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return ppid, name, rss


class TreeSampler:
    """A thread recording the peak resident memory of this process, of the JVMs it started and
    of all other processes below it (Spark's Python workers, summed)."""

    def __init__(self) -> None:
        self.peaks = {"driver_python": 0, "jvm": 0, "python_workers": 0, "total": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        procs = {}
        for entry_name in os.listdir("/proc"):
            if entry_name.isdigit():
                info = _proc(int(entry_name))
                if info is not None:
                    procs[int(entry_name)] = info
        me = os.getpid()
        below, frontier = set(), {me}
        while frontier:
            frontier = {p for p, (pp, _, _) in procs.items() if pp in frontier} - below
            below |= frontier
        now = {"driver_python": procs.get(me, (0, "", 0))[2], "jvm": 0, "python_workers": 0}
        for pid in below:
            _, name, rss = procs[pid]
            now["jvm" if name == "java" else "python_workers"] += rss
        now["total"] = sum(now.values())
        for key, value in now.items():
            self.peaks[key] = max(self.peaks[key], value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(SAMPLE_EVERY_S)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---- child program (runs in its own interpreter: `child_command(__file__, "score", ...)`)


def engine_child(data: str, store: str, out: str, engine: str, master: str) -> dict:
    """Child program: score with one engine; wall time, step times, peak memory per role."""
    spark = SparkSettings(master=master, conf={"spark.ui.enabled": "false"})
    settings = bench_settings(Path(data), Path(store), {}).model_copy(update={"spark": spark})
    scorer = spark_scorer() if engine == "spark" else None
    with TreeSampler() as sampler:
        start = time.perf_counter()
        result = run_scoring(settings, pd.Timestamp(AS_OF), Path(out), scorer=scorer)
        wall = time.perf_counter() - start
    return {
        "engine": engine,
        "wall_s": wall,
        "n_scored": result.n_scored,
        "timings": result.timings,
        "peaks_gib": {k: v / 2**30 for k, v in sampler.peaks.items()},
    }


def same_results(local: Path, spark: Path) -> str:
    """How the two runs' scores.parquet compare (sorted by lead id)."""
    a = pq.read_table(local / "scores.parquet").to_pandas().sort_values("lead_id")
    b = pq.read_table(spark / "scores.parquet").to_pandas().sort_values("lead_id")
    if a["lead_id"].tolist() != b["lead_id"].tolist():
        return "different leads"
    p = max(float(np.abs(a[c].to_numpy() - b[c].to_numpy()).max()) for c in ("p_meeting", "p_won"))
    differ = [
        c for c in COMPARED if not a[c].reset_index(drop=True).equals(b[c].reset_index(drop=True))
    ]
    return f"max |dp| {p:.1e}" + (
        f"; differ: {', '.join(differ)}" if differ else "; rest identical"
    )


def run_size(n_open: int, share: float, store: Path, scratch: Path, master: str) -> dict:
    """Write a sample with about `n_open` open leads; score it with each engine."""
    n_leads = math.ceil(n_open / share * 1.01)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-spark-") as tmp:
        data = Path(tmp) / "data"
        write = child_command(BENCH_SCORE, "write", data=data, n_leads=n_leads, seed=1)
        run_child_process(write, REPO, f"writing the sample of {n_leads:,} leads")
        runs = {}
        for engine in ("local", "spark"):
            out = Path(tmp) / engine
            child = child_command(
                __file__, "score", data=data, store=store, out=out, engine=engine, master=master
            )
            runs[engine], _ = run_measured(child, store, f"{engine} scoring of {n_open:,} leads")
            run = runs[engine]
            print(f"{engine:>5}: {run['n_scored']:,} leads in {run['wall_s']:.1f} s", flush=True)
        runs["compare"] = same_results(Path(tmp) / "local", Path(tmp) / "spark")
    return {"size": n_open, "n_leads": n_leads, **runs}


def table(rows: list[dict]) -> str:
    lines = [
        "| open leads | engine | wall s | leads/s | vs local | peak driver (Python) GiB "
        "| peak JVM GiB | peak Python workers GiB | peak all GiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for engine in ("local", "spark"):
            run = r[engine]
            ratio = r["local"]["wall_s"] / run["wall_s"]
            pk = run["peaks_gib"]
            lines.append(
                f"| {run['n_scored']:,} | {engine} | {run['wall_s']:.1f} "
                f"| {run['n_scored'] / run['wall_s']:,.0f} | {ratio:.2f}x "
                f"| {pk['driver_python']:.2f} | {pk['jvm']:.2f} | {pk['python_workers']:.2f} "
                f"| {pk['total']:.2f} |"
            )
    return "\n".join(lines)


def section(rows: list[dict], info: dict[str, str], trained: dict, args) -> str:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    spec = ", ".join(f"{k} {v}" for k, v in info.items())
    compare = "; ".join(f"{r['size']:,}: {r['compare']}" for r in rows)
    steps = "; ".join(
        f"{r['size']:,} {e}: " + ", ".join(f"{k} {v:.0f}" for k, v in r[e]["timings"].items())
        for r in rows
        for e in ("local", "spark")
    )
    return (
        f"\n## Scoring on Spark (`--engine spark`, {args.master}) against the local engine, "
        f"{stamp}\n\n"
        f"Machine: {spec}.\n{model_line(trained, args.train_leads)}\n"
        "Each size: one sample (seed 1) scored by `run_scoring` with each engine in a fresh "
        "process; wall time includes starting Spark. Peak memory: resident set of the process "
        "tree sampled every 0.25 s: the Python driver, the JVM (in local mode the executors "
        "run in the driver's JVM) and Spark's Python workers (summed).\n\n"
        f"{table(rows)}\n\n"
        f"Results compared (scores.parquet sorted by lead id): {compare}.\n\n"
        f"Step seconds: {steps}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--train-leads", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]", help="spark.master of the Spark runs")
    parser.add_argument("--scratch", type=Path, default=None, help="where to write the files")
    parser.add_argument("--no-append", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(os.environ.get("TMPDIR", "/tmp"))
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-spark-store-") as tmp:
        store = Path(tmp)
        trained = train(store, args.train_leads, {})
        if not trained["promoted"]:
            raise RuntimeError("the trained model was not promoted to champion")
        print(model_line(trained, args.train_leads), flush=True)
        rows = [run_size(n, trained["open_share"], store, scratch, args.master) for n in args.sizes]
    info = machine("lightgbm", "pandas", "pyspark")
    print()
    print(table(rows))
    for r in rows:
        print(f"{r['size']:,}: {r['compare']}")
    if not args.no_append:
        report = append_section(section(rows, info, trained, args))
        print(f"\nappended to {report.relative_to(REPO)}")
    return 0


CHILDREN = {"score": engine_child}

if __name__ == "__main__":
    raise SystemExit(entry(main, CHILDREN))
