"""Rows per second of `leadscore.modeling.explain.explain` against raw LightGBM `pred_contrib`.

Same booster, same rows: a 400-tree model (num_leaves=15, max_depth=6) on ~40 synthetic
features (attributes, age, per-type activity counts, recency), explaining 50k rows with two
LightGBM threads. Also times `top_reasons` and `fit_vs_engagement` on the explained rows, and
extrapolates to a million leads. Prints a table and appends a dated section to
docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_explain.py               # 50k rows
    .venv/bin/python benchmarks/bench_explain.py --rows 200000
    .venv/bin/python benchmarks/bench_explain.py --no-append   # print only
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

import numpy as np
import pandas as pd
from machine import REPO, append_section, machine, machine_line  # benchmarks/, beside this script

from leadscore.config import Model as ModelSettings
from leadscore.data.features import FeatureSpec
from leadscore.data.sample import ACTIVITY_TYPES as SAMPLE_ACTIVITY_TYPES
from leadscore.modeling.explain import explain, fit_vs_engagement
from leadscore.modeling.model import Calibrator, TargetModel, make_pipeline
from leadscore.scoring.reasons import top_reasons

THREADS = 2
ACTIVITY_TYPES = SAMPLE_ACTIVITY_TYPES[:6]
SPEC = FeatureSpec(
    categorical=("job_level", "industry", "country", "source"),
    numeric=(
        "employees",
        "annual_revenue",
        "web_sessions",
        "seats",
        "tools_used",
        "funding_rounds",
    ),
    activity_types=ACTIVITY_TYPES,
    windows_days=(7, 30, 90),
    has_time=True,
    has_activities=True,
)


def synthetic_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows with the spec's columns and a label that depends on many of them."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "job_level": rng.choice(["VP", "Director", "Manager", "IC", None], n),
        "industry": rng.choice([f"ind_{i}" for i in range(12)], n),
        "country": rng.choice([f"c{i}" for i in range(30)], n),
        "source": rng.choice(["web", "event", "partner", "outbound", None], n),
        "employees": np.where(rng.random(n) < 0.15, np.nan, rng.lognormal(5, 1.5, n)),
        "annual_revenue": rng.lognormal(15, 2, n),
        "web_sessions": rng.poisson(3, n).astype(float),
        "seats": np.round(rng.lognormal(3, 1, n)),
        "tools_used": rng.integers(0, 20, n).astype(float),
        "funding_rounds": np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 6, n)),
        "days_since_created": rng.uniform(0, 365, n),
    }
    for kind in (*ACTIVITY_TYPES, "all"):
        rate = rng.gamma(1.0, 0.5, n)
        c7 = rng.poisson(rate)
        c30 = c7 + rng.poisson(3 * rate)
        c90 = c30 + rng.poisson(6 * rate)
        total = c90 + rng.poisson(4 * rate)
        for w, v in zip((7, 30, 90, None), (c7, c30, c90, total), strict=True):
            data[SPEC.activity_feature(kind, w)] = v.astype(np.float32)
    data["days_since_last_activity"] = np.where(rng.random(n) < 0.1, np.nan, rng.exponential(30, n))
    frame = pd.DataFrame(data)
    for col in SPEC.categorical:
        frame[col] = frame[col].astype("string")
    logit = (
        -2.0
        + 1.2 * (frame["job_level"] == "VP").fillna(False).to_numpy(float)
        + 0.3 * np.log1p(frame["act__pricing_page_view__30d"].to_numpy())
        + 0.2 * np.log1p(frame["act__email_click__90d"].to_numpy())
        - 0.004 * frame["days_since_created"].to_numpy()
        + 0.1 * np.nan_to_num(np.log1p(frame["employees"].to_numpy()))
        + 0.05 * frame["tools_used"].to_numpy()
        + rng.normal(0, 0.5, n)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame[SPEC.columns], y


def fitted_model(n_train: int) -> TargetModel:
    """A 400-tree, 15-leaf, depth-6 calibrated model on synthetic data."""
    features, y = synthetic_frame(n_train, seed=1)
    settings = ModelSettings(
        n_estimators=400, num_leaves=15, max_depth=6, min_child_samples=20, n_jobs=THREADS
    )
    pipeline = make_pipeline(SPEC, settings, seed=0)
    pipeline.fit(features, y)
    model = TargetModel("won", pipeline, Calibrator("sigmoid"), float(y.mean()))
    model.calibrator.fit(model.margin(features), y)
    return model


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(rows: int, repeats: int) -> dict:
    """Time raw pred_contrib, explain, top_reasons and fit_vs_engagement on the same rows."""
    model = fitted_model(50_000)
    features, _ = synthetic_frame(rows, seed=2)
    booster_input = model.transform(features)
    leaves = [t["num_leaves"] for t in model.booster.dump_model()["tree_info"]]
    raw = best_of(
        repeats,
        lambda: model.booster.predict(booster_input, pred_contrib=True, num_threads=THREADS),
    )
    exp_time = best_of(repeats, lambda: explain(model, features, SPEC, num_threads=THREADS))
    explanation = explain(model, features, SPEC, num_threads=THREADS)
    reasons_time = best_of(repeats, lambda: top_reasons(explanation.contrib_pp, features, SPEC))
    fve_time = best_of(repeats, lambda: fit_vs_engagement(explanation.contrib_pp, SPEC))
    return {
        "rows": rows,
        "features": len(SPEC.columns),
        "trees": len(leaves),
        "mean_leaves": float(np.mean(leaves)),
        "raw_s": raw,
        "explain_s": exp_time,
        "reasons_s": reasons_time,
        "fve_s": fve_time,
    }


def table(r: dict) -> str:
    """Markdown table of one measurement."""
    n = r["rows"]
    lines = [
        "| step | wall time (s) | rows/s | 1M rows (min) |",
        "|---|---:|---:|---:|",
    ]
    for label, key in (
        ("raw `booster.predict(pred_contrib=True)`", "raw_s"),
        ("`explain` (transform, chunked TreeSHAP, groups, calibration carry-over)", "explain_s"),
        ("`top_reasons` (n=3)", "reasons_s"),
        ("`fit_vs_engagement`", "fve_s"),
    ):
        t = r[key]
        lines.append(f"| {label} | {t:.2f} | {n / t:,.0f} | {1e6 / (n / t) / 60:.2f} |")
    return "\n".join(lines)


def section(r: dict) -> str:
    """The dated docs/benchmarks.md section for this run."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    info = machine_line(machine("lightgbm", "numpy", "pandas"))
    return (
        f"\n## Explanations (`explain`, `top_reasons`), {stamp}\n\n"
        f"{info} LightGBM threads: {THREADS}.\n"
        f"{r['trees']} trees (mean {r['mean_leaves']:.1f} leaves, max_depth 6) on "
        f"{r['features']} features, {r['rows']:,} rows; best of repeated runs.\n\n"
        f"{table(r)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and append it to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-append", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    result = measure(args.rows, args.repeats)
    ratio = result["raw_s"] / result["explain_s"]
    print(
        f"{result['trees']} trees (mean {result['mean_leaves']:.1f} leaves), "
        f"{result['features']} features, {result['rows']:,} rows, {THREADS} threads\n"
    )
    print(table(result))
    print(f"\nexplain runs at {ratio:.0%} of raw pred_contrib speed")
    if not args.no_append:
        print(f"\nappended to {append_section(section(result)).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
