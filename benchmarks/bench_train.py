"""Time `leadscore.modeling.train.run_training` on the synthetic funnel and measure its peak memory.

For each size the sample is written by `write_sample` into a temporary folder (not timed), then
training (`train_child`, the settings of `sample_settings`) runs in a fresh interpreter, itself
started by a small wrapper that reads
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` once training has exited: the peak resident set
of that training process alone. The whole `run_training` is timed (reading, examples, both
targets with baselines, plots, MLflow logging and registration into a private SQLite store), and
its step times are kept. Prints a table and appends a dated section to docs/benchmarks.md.
Target: 1M leads in at most 15 minutes and 8 GB on 2 cores.

    .venv/bin/python benchmarks/bench_train.py                  # 100k and 1M leads
    .venv/bin/python benchmarks/bench_train.py --sizes 20000    # other sizes
    .venv/bin/python benchmarks/bench_train.py --no-append      # print only
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

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

from leadscore.data.sample import sample_settings, write_sample
from leadscore.modeling.train import run_training

DEFAULT_SIZES = (100_000, 1_000_000)
TARGET_SECONDS = 15 * 60
TARGET_GIB = 8.0

STEP = re.compile(r"^(.*?) \((\d+\.\d)s\)$", re.M)  # a step line of run_training's log
METRICS = ("roc_auc", "pr_auc", "log_loss")


def write_child(data: str, n_leads: int) -> None:
    """Child program: write the sample funnel (seed 0) into `data`."""
    write_sample(Path(data), n_leads=n_leads, seed=0)


def train_child(data: str, store: str, n_jobs: int) -> dict:
    """Child program: `run_training` on the sample in `data` with a private MLflow store in
    `store`; wall time, step times (from its log messages), example count and validation metrics."""
    data_dir, store_dir = Path(data), Path(store)
    settings = sample_settings(
        data_dir,
        f"sqlite:///{store_dir}/mlruns.db",
        train={"model": {"n_jobs": n_jobs}},
        mlflow={"export_dir": str(store_dir / "champion")},
    )
    with captured_log() as buffer:
        start = time.perf_counter()
        result = run_training(settings)
        wall = time.perf_counter() - start
    log = buffer.getvalue()
    sys.stderr.write(log)
    steps = {m.group(1).strip(): float(m.group(2)) for m in STEP.finditer(log)}
    metrics = {
        k: v
        for k, v in result.metrics.items()
        if k.count(".") <= 2 and ".segment." not in k and k.rsplit(".", 1)[1] in METRICS
    }
    return {
        "wall_s": wall,
        "steps": steps,
        "examples": result.counts["counts.examples"],
        "metrics": metrics,
    }


def run_size(n_leads: int, scratch: Path, n_jobs: int) -> dict:
    """Write the sample, then train on it in a measured fresh interpreter."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-train-") as tmp:
        data, store = Path(tmp) / "data", Path(tmp) / "store"
        store.mkdir()
        write = child_command(__file__, "write", data=data, n_leads=n_leads)
        run_child_process(write, REPO, f"writing the sample of {n_leads:,} leads")
        child = child_command(__file__, "train", data=data, store=store, n_jobs=n_jobs)
        row, peak_kib = run_measured(child, store, f"training at {n_leads:,} leads")
    row.update(n_leads=n_leads, peak_kib=peak_kib, n_jobs=n_jobs)
    return row


def step_time(row: dict, pattern: str) -> float:
    """Seconds of the steps whose name matches `pattern` (summed)."""
    return sum(v for k, v in row["steps"].items() if re.search(pattern, k))


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    lines = [
        "| leads | examples | LightGBM threads | wall time (s) | read (s) | examples (s) "
        "| train both targets (s) | plots (s) | MLflow (s) | peak RSS (GiB) | within target |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|",
    ]
    for r in rows:
        gib = r["peak_kib"] / 2**20
        ok = r["wall_s"] <= TARGET_SECONDS and gib <= TARGET_GIB
        lines.append(
            f"| {r['n_leads']:,} | {r['examples']:,} | {r['n_jobs']} | {r['wall_s']:.1f} | "
            f"{step_time(r, '^reading'):.1f} | {step_time(r, 'examples'):.1f} | "
            f"{step_time(r, '^training'):.1f} | {step_time(r, 'plotting'):.1f} | "
            f"{step_time(r, 'MLflow'):.1f} | {gib:.2f} | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines)


def metrics_table(rows: list[dict]) -> str:
    """Validation metrics of the model and the baselines at each size."""
    lines = [
        "| leads | target | model | ROC AUC | PR AUC | log loss |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        m = r["metrics"]
        for target in ("meeting", "won"):
            for name, prefix in (
                ("lightgbm", target),
                ("logreg", f"{target}.logreg"),
                ("points", f"{target}.points"),
            ):
                if f"{prefix}.roc_auc" not in m:
                    continue
                lines.append(
                    f"| {r['n_leads']:,} | {target} | {name} | {m[f'{prefix}.roc_auc']:.4f} | "
                    f"{m[f'{prefix}.pr_auc']:.4f} | {m[f'{prefix}.log_loss']:.4f} |"
                )
    return "\n".join(lines)


def section(rows: list[dict], info: dict[str, str]) -> str:
    """The dated docs/benchmarks.md section for this run."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    spec = ", ".join(f"{k} {v}" for k, v in info.items())
    return (
        f"\n## Training (`run_training`), {stamp}\n\n"
        f"Machine: {spec}.\n"
        "Wall time of `run_training` on the synthetic funnel (default config: both targets, "
        "LightGBM with early stopping and calibration, logistic-regression and points baselines, "
        "plots, MLflow run and registration into a local SQLite store); peak resident memory of "
        "the training process (`RUSAGE_CHILDREN`). Target: 1M leads within 15 min and 8 GB.\n\n"
        f"{table(rows)}\n\n"
        "Validation metrics (newest leads, weighted like the snapshots, as logged to MLflow):\n\n"
        f"{metrics_table(rows)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark sizes, print the tables and append them to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads (config n_jobs)")
    parser.add_argument("--scratch", type=Path, default=None, help="where to write the files")
    parser.add_argument("--no-append", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    scratch = args.scratch or Path(os.environ.get("TMPDIR", "/tmp"))
    rows = []
    for n in args.sizes:
        row = run_size(n, scratch, args.n_jobs)
        rows.append(row)
        print(
            f"{n:>10,} leads: {row['wall_s']:7.1f} s, peak {row['peak_kib'] / 2**20:.2f} GiB, "
            f"{row['examples']:,} examples",
            flush=True,
        )
    info = machine("pandas", "lightgbm", "sklearn", "mlflow")
    print()
    print(table(rows))
    print()
    print(metrics_table(rows))
    if not args.no_append:
        print(f"\nappended to {append_section(section(rows, info)).relative_to(REPO)}")
    return 0


CHILDREN = {"write": write_child, "train": train_child}

if __name__ == "__main__":
    raise SystemExit(entry(main, CHILDREN))
