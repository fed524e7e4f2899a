"""`make demo`: the whole loop on the built-in sample funnel, as a user would run it.

sample → validate → train and promote → score → feedback → retrain (promotion gate) → rescore
a week later, on the same funnel exported a week later (`data/sample/later/`) → backtest: a model
trained as of 200 days before the export scores the leads open then, and the report card shows
how those scores turned out. Each step is the real `leadscore` command, printed before it runs;
the demo stops at the first step that fails, with that step's exit code.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import yaml

SAMPLE_CONFIG = Path("configs/sample.yaml")
SAMPLE_DIR = Path("data/sample")
FIRST_AS_OF = "2026-11-01"  # the sample's export date
LATER_DAYS = 7  # the second scoring: the same funnel exported a week later
SECOND_AS_OF = (date.fromisoformat(FIRST_AS_OF) + timedelta(days=LATER_DAYS)).isoformat()
LATER_DIR = SAMPLE_DIR / "later"
# the backtest: what a model trained on the data as it stood 200 days before the export scored
# then, against what happened since (both windows, 90 and 180 days, have passed by the export)
PAST_AS_OF = (date.fromisoformat(FIRST_AS_OF) - timedelta(days=200)).isoformat()
PAST_MODEL = f"leadscore-as-of-{PAST_AS_OF}"  # its own registered model: the champion stays


def past_config(workdir: Path) -> Path:
    """configs/sample.yaml with `labels.export_date` at PAST_AS_OF and its own model name."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    raw["labels"]["export_date"] = PAST_AS_OF
    raw["mlflow"]["model_name"] = PAST_MODEL
    raw["mlflow"]["export_dir"] = f"models/{PAST_MODEL}"
    path = workdir / f"sample-as-of-{PAST_AS_OF}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def demo_steps(workdir: Path, n_leads: int) -> list[tuple[str, list[str]]]:
    """The demo's steps: a title and the `leadscore` arguments of each."""
    cfg = ["--config", str(SAMPLE_CONFIG)]
    scores = str(workdir / "scores")
    return [
        (
            "Generate the sample funnel",
            [
                "sample",
                *("--out", str(SAMPLE_DIR), "--leads", str(n_leads), "--seed", "0"),
                *("--later-days", str(LATER_DAYS)),
            ],
        ),
        ("Check the data against the contract", ["validate", *cfg]),
        (
            "Train, compare with the baselines, register and promote",
            ["train", *cfg, "--promote", "--metrics-out", str(workdir / "metrics.json")],
        ),
        ("Score the open leads", ["score", *cfg, "--as-of", FIRST_AS_OF, "--out", scores]),
        ("Store the sales feedback", ["feedback", *cfg, str(SAMPLE_DIR / "feedback.csv")]),
        (
            "Retrain with the feedback, then the promotion gate",
            ["retrain", *cfg, "--metrics-out", str(workdir / "metrics-retrain.json")],
        ),
        (
            "Rescore a week later, on that week's export",
            [
                *("score", *cfg, "--as-of", SECOND_AS_OF, "--out", scores),
                *("--leads", str(LATER_DIR / "leads.csv")),
                *("--activities", str(LATER_DIR / "activities.csv")),
            ],
        ),
        (
            f"Train as of {PAST_AS_OF}: only what the data held then",
            ["train", "--config", str(workdir / f"sample-as-of-{PAST_AS_OF}.yaml")],
        ),
        (
            f"Score the leads open on {PAST_AS_OF} with that model",
            [
                *("score", *cfg, "--as-of", PAST_AS_OF, "--out", str(workdir / "past-scores")),
                *("--model", f"models:/{PAST_MODEL}@challenger"),
            ],
        ),
        (
            "Backtest: how those scores turned out, per grade",
            [
                *("backtest", *cfg, "--scores", str(workdir / "past-scores")),
                *("--out", str(workdir / "backtest")),
            ],
        ),
    ]


def run_demo(workdir: Path, n_leads: int) -> int:
    """Run every step; return the first non-zero exit code, or 0."""
    workdir.mkdir(parents=True, exist_ok=True)
    past_config(workdir)
    steps = demo_steps(workdir, n_leads)
    started = time.perf_counter()
    for i, (title, args) in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {title}\n$ leadscore {shlex.join(args)}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "leadscore", *args])
        if code != 0:
            print(f"\ndemo stopped: step {i} failed with exit code {code}", file=sys.stderr)
            return code
        print(f"--- done in {time.perf_counter() - t0:.1f} s", flush=True)
    print(
        f"\nDemo finished in {time.perf_counter() - started:.0f} s. Outputs:\n"
        f"  data:        {SAMPLE_DIR}/ (leads, activities, accounts, feedback), {LATER_DIR}/ "
        "(a week later), data/feedback/ (store)\n"
        f"  scores:      {workdir / 'scores'}/ (scores.parquet, scores.csv, report.xlsx, "
        "report.html, manifest.json)\n"
        f"  accounts:    {workdir / 'scores'}/accounts.csv and accounts.parquet (one row per "
        "account with an open lead; sheet 'Accounts' in report.xlsx, a section in report.html)\n"
        f"  metrics:     {workdir / 'metrics.json'}, {workdir / 'metrics-retrain.json'}\n"
        f"  backtest:    {workdir / 'backtest'}/ (backtest.html: the report card, "
        "backtest.json)\n"
        "  champion:    models/champion/ (MLflow model folder)\n"
        "  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns.db"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    parser.add_argument("--leads", type=int, default=20_000)
    args = parser.parse_args(argv)
    return run_demo(args.workdir, args.leads)


if __name__ == "__main__":
    sys.exit(main())
