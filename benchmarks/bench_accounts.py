"""Account scoring at scale: `run_scoring` with and without the account model, same open leads.

One bundle is trained first (`train_child`: `write_sample` with `--train-leads` leads, seed 0,
`run_training(..., account_trainer=train_accounts, promote=True)`), in its own interpreter. Then,
for each size N in `--sizes` (open leads to score), a sample holding about N open leads is written
(seed 1) and scored twice in fresh measured interpreters (`machine.run_measured`: the peak
resident set of the scoring process alone): once as trained (leads and accounts), once with the
bundle's account part removed (leads only). The difference is what account scoring costs: its
step (`timings["accounts"]`: combining the per-account aggregates, predicting, explaining and
writing accounts.parquet/csv) and the running aggregates kept during the chunk loop.

Target (the scorer's): 1,000,000 open leads scored within 10 minutes and 2 GB on 2 cores.

    .venv/bin/python benchmarks/bench_accounts.py                  # 1M open leads
    .venv/bin/python benchmarks/bench_accounts.py --sizes 50000 --no-append
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
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
    machine_line,
    run_child_process,
    run_measured,
)

from leadscore.accounts.model import train_accounts
from leadscore.config import Settings
from leadscore.data.sample import sample_settings, write_sample
from leadscore.modeling.train import run_training
from leadscore.scoring import run as run_module
from leadscore.scoring.run import run_scoring

DEFAULT_SIZES = (1_000_000,)
AS_OF = "2026-11-01"
THREADS = 2
TARGET_SECONDS = 10 * 60
TARGET_GIB = 2.0


def bench_settings(data: Path, store: Path) -> Settings:
    """The sample's settings for data in `data` and a private MLflow store in `store`."""
    return sample_settings(
        data,
        f"sqlite:///{store}/mlruns.db",
        data={"feedback": str(store / "feedback")},
        train={"model": {"n_jobs": THREADS}},
        mlflow={"export_dir": str(store / "champion")},
    )


def open_share(data: Path, as_of: pd.Timestamp) -> float:
    """Share of the sample's leads open at `as_of`."""
    dates = ["created_at", "meeting_at", "won_at", "lost_at"]
    leads = pd.read_csv(data / "leads.csv", usecols=dates, parse_dates=dates)
    closed = leads[["meeting_at", "won_at", "lost_at"]].min(axis=1)
    return float(((leads["created_at"] <= as_of) & (closed.isna() | (closed > as_of))).mean())


# ---- child programs


def train_child(data: str, store: str, n_leads: int) -> dict:
    """Child program: write the training sample and train + promote leads and accounts."""
    write_sample(Path(data), n_leads=n_leads, seed=0)
    settings = bench_settings(Path(data), Path(store))
    with captured_log() as buffer:
        start = time.perf_counter()
        result = run_training(settings, promote=True, account_trainer=train_accounts)
        wall = time.perf_counter() - start
    sys.stderr.write(buffer.getvalue())
    kept = {k: v for k, v in result.metrics.items() if k.startswith("accounts.") and "roc" in k}
    return {
        "wall_s": wall,
        "open_share": open_share(Path(data), pd.Timestamp(AS_OF)),
        "basis": result.bundle.accounts.basis,
        "metrics": kept,
    }


def write_child(data: str, n_leads: int, seed: int) -> None:
    """Child program: write the sample funnel into `data`."""
    write_sample(Path(data), n_leads=n_leads, seed=seed)


def score_child(data: str, store: str, out: str, accounts: bool) -> dict:
    """Child program: time `run_scoring` on the champion, with or without its account part."""
    settings = bench_settings(Path(data), Path(store))
    if not accounts:
        load = run_module.load_scoring_model

        def without_accounts(*args, **kwargs):
            bundle, ref = load(*args, **kwargs)
            bundle.accounts = None
            return bundle, ref

        run_module.load_scoring_model = without_accounts
    start = time.perf_counter()
    result = run_scoring(settings, as_of=pd.Timestamp(AS_OF), out_dir=Path(out))
    wall = time.perf_counter() - start
    n_accounts = 0
    if accounts and (Path(out) / "accounts.parquet").exists():
        n_accounts = len(pd.read_parquet(Path(out) / "accounts.parquet", columns=["account_id"]))
    return {
        "wall_s": wall,
        "timings": dict(result.timings),
        "n_scored": result.n_scored,
        "n_accounts": n_accounts,
        "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


CHILDREN = {"train": train_child, "write": write_child, "score": score_child}


# ---- the benchmark


def run_size(n_open: int, share: float, store: Path, scratch: Path) -> dict:
    """Write a sample holding ~n_open open leads; score it with and without accounts."""
    n_leads = math.ceil(n_open / share * 1.01)
    rows = {}
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-accounts-") as tmp:
        data = Path(tmp) / "data"
        write = child_command(__file__, "write", data=data, n_leads=n_leads, seed=1)
        run_child_process(write, REPO, f"writing the sample of {n_leads:,} leads")
        for accounts in (True, False):
            out = Path(tmp) / ("with" if accounts else "without")
            child = child_command(
                __file__, "score", data=data, store=store, out=out, accounts=accounts
            )
            rows[accounts], _ = run_measured(child, store, f"scoring {n_open:,} open leads")
    return {"size": n_open, "n_leads": n_leads, "with": rows[True], "without": rows[False]}


def table(results: list[dict]) -> str:
    lines = [
        "| open leads | accounts scored | wall with accounts (s) | without (s) | accounts step (s) "
        "| peak RSS with (GiB) | without (GiB) | 10 min (scaled to 1M) | 2 GB |",
        "|---:|---:|---:|---:|---:|---:|---:|:--|:--|",
    ]
    for r in results:
        w, wo = r["with"], r["without"]
        gib_w, gib_wo = w["peak_kib"] / 2**20, wo["peak_kib"] / 2**20
        scaled = w["wall_s"] * 1_000_000 / max(w["n_scored"], 1)
        lines.append(
            f"| {w['n_scored']:,} | {w['n_accounts']:,} | {w['wall_s']:.1f} | {wo['wall_s']:.1f} "
            f"| {w['timings'].get('accounts', 0.0):.1f} | {gib_w:.2f} | {gib_wo:.2f} "
            f"| {'yes' if scaled <= TARGET_SECONDS else 'no'} ({scaled:.0f} s) "
            f"| {'yes' if gib_w <= TARGET_GIB else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--train-leads", type=int, default=20_000)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-accounts-") as tmp:
        store = Path(tmp)
        train = child_command(
            __file__, "train", data=store / "train-data", store=store, n_leads=args.train_leads
        )
        trained = run_child_process(train, store, f"training on {args.train_leads:,} leads")
        results = [run_size(n, trained["open_share"], store, store) for n in args.sizes]
    text = table(results)
    print(text)
    if not args.no_append:
        info = machine("lightgbm", "pandas")
        append_section(
            f"\n## Account scoring ({datetime.now():%Y-%m-%d})\n\n"
            f"`bench_accounts.py`: bundle trained on {args.train_leads:,} sample leads "
            f"(account basis: {trained['basis']}). {machine_line(info)}\n\n{text}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(entry(main, CHILDREN))
