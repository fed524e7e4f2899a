"""`make demo`: the whole loop on the built-in sample funnel, as a user would run it.

sample → validate → train and promote → score → feedback → retrain (promotion gate) → rescore.
Each step is the real `leadscore` command, printed before it runs; the demo stops at the first
step that fails, with that step's exit code.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

SAMPLE_CONFIG = Path("configs/sample.yaml")
SAMPLE_DIR = Path("data/sample")
FIRST_AS_OF = "2026-11-01"  # the sample's export date
SECOND_AS_OF = "2026-11-08"  # a week later


def demo_steps(workdir: Path, n_leads: int) -> list[tuple[str, list[str]]]:
    """The demo's steps: a title and the `leadscore` arguments of each."""
    cfg = ["--config", str(SAMPLE_CONFIG)]
    scores = str(workdir / "scores")
    return [
        (
            "Generate the sample funnel",
            ["sample", "--out", str(SAMPLE_DIR), "--leads", str(n_leads), "--seed", "0"],
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
        ("Rescore a week later", ["score", *cfg, "--as-of", SECOND_AS_OF, "--out", scores]),
    ]


def run_demo(workdir: Path, n_leads: int) -> int:
    """Run every step; return the first non-zero exit code, or 0."""
    workdir.mkdir(parents=True, exist_ok=True)
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
        f"  data:        {SAMPLE_DIR}/ (leads, activities, feedback), data/feedback/ (store)\n"
        f"  scores:      {workdir / 'scores'}/ (scores.parquet, scores.csv, report.xlsx, "
        "report.html, manifest.json)\n"
        f"  metrics:     {workdir / 'metrics.json'}, {workdir / 'metrics-retrain.json'}\n"
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
