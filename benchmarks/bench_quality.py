"""Model quality against the baselines: the sample funnel and each real public data set.

Trains through `leadscore.modeling.train.run_training` with each config (`configs/sample.yaml` on a
freshly written sample, `configs/x_education.yaml`, `configs/olist.yaml` on `../shared/data/`)
into a private MLflow store, and prints the validation metrics of the shipped model (its family)
and both baselines per target, with the training time. On the sample it also measures every
model against the truth (`write_sample(..., truth=True)`: the open leads' true probabilities at
the export date, a file training never reads): ROC AUC as a share of the best possible and mean
|p - true|. Appends the tables to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_quality.py                  # all data sets
    .venv/bin/python benchmarks/bench_quality.py --sample-seeds 0 1 2 --no-append
    .venv/bin/python benchmarks/bench_quality.py --monotone-activity both   # the constraints' cost
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from machine import REPO, append_section, machine, machine_line  # benchmarks/ (script's folder)
from sklearn.metrics import roc_auc_score

from leadscore.config import load_config
from leadscore.data.contract import load_lead_data
from leadscore.data.features import build_features
from leadscore.data.sample import write_sample
from leadscore.data.snapshots import scoring_snapshots
from leadscore.modeling.train import run_training

SHARED = REPO.parent / "shared" / "data"
MODELS = ("lightgbm", "logreg", "points")
METRICS = ("roc_auc", "pr_auc", "log_loss", "ece", "lift_top10")
REAL = ("x_education", "olist")


def settings_for(config: Path, store: Path, leads: Path | None = None):
    """The config with absolute data paths and a private MLflow store under `store`."""
    base = load_config(config)
    data = base.data
    if leads is not None:
        data = data.model_copy(
            update={"leads": leads / "leads.csv", "activities": leads / "activities.csv"}
        )
    else:
        data = data.model_copy(
            update={
                k: (REPO / v).resolve()
                for k in ("leads", "activities", "outcomes")
                if (v := getattr(data, k)) is not None
            }
        )
    data = data.model_copy(update={"feedback": store / "feedback"})
    mlflow = base.mlflow.model_copy(
        update={"tracking_uri": f"sqlite:///{store}/mlruns.db", "export_dir": store / "champion"}
    )
    return base.model_copy(update={"data": data, "mlflow": mlflow})


def with_monotone(settings, monotone: bool):
    """The settings with `features.monotone_activity` set."""
    features = settings.features.model_copy(update={"monotone_activity": monotone})
    return settings.model_copy(update={"features": features})


def quality_rows(name: str, settings, monotone_modes: tuple[bool, ...] = (True,)) -> list[dict]:
    """One row per target and model (and constraint mode) with the validation metrics."""
    rows = []
    for monotone in monotone_modes:
        label = (
            name if len(monotone_modes) == 1 else f"{name}, monotone {'on' if monotone else 'off'}"
        )
        rows += _quality_rows(label, with_monotone(settings, monotone))
    return rows


def _quality_rows(name: str, settings) -> list[dict]:
    started = time.perf_counter()
    result = run_training(settings)
    seconds = time.perf_counter() - started
    rows = []
    for target in settings.targets:
        for model in MODELS:
            prefix = target if model == "lightgbm" else f"{target}.{model}"
            family = result.bundle.targets[target].family if model == "lightgbm" else "baseline"
            rows.append(
                {
                    "data": name,
                    "split": result.split_method,
                    "target": target,
                    "model": "shipped" if model == "lightgbm" else model,
                    "family": family,
                    "seconds": seconds,
                    "result": result,
                    **{m: result.metrics.get(f"{prefix}.{m}", float("nan")) for m in METRICS},
                }
            )
    return rows


# --- against the truth (the sample's truth.csv) ----------------------------------------------


def expected_auc(score: np.ndarray, p_true: np.ndarray) -> float:
    """ROC AUC expected over the outcomes the true probabilities would draw: every row counts
    as a positive with weight p and as a negative with weight 1 - p."""
    y = np.r_[np.ones(len(score)), np.zeros(len(score))]
    return float(roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p_true, 1 - p_true]))


def open_lead_probabilities(result, settings) -> pd.DataFrame:
    """Each lead open at the export date, with the shipped model's and each baseline's
    probability per target (the scorer's snapshot: one row per open lead)."""
    data = load_lead_data(settings)
    snaps, _ = scoring_snapshots(data.leads, data.export_date)
    spec = result.bundle.spec
    features = build_features(snaps, data.activities, spec)[spec.columns]
    out = pd.DataFrame({"lead_id": snaps["lead_id"].astype(str).to_numpy()})
    for target, fitted in result.targets.items():
        out[f"shipped.{target}"] = result.bundle.targets[target].predict_proba(features)
        for name, baseline in fitted.baselines.items():
            out[f"{name}.{target}"] = baseline.predict_proba(features)[:, 1]
    return out


def truth_rows(name: str, rows: list[dict], settings, truth_csv: Path) -> list[dict]:
    """Per target and model, on all open leads and on those at their creation snapshot: AUC as
    a share of the best possible (the true probabilities' AUC on the same leads) and mean
    |p - true|."""
    result = rows[0]["result"]
    truth = pd.read_csv(truth_csv, dtype={"lead_id": str})
    probs = open_lead_probabilities(result, settings).merge(truth, on="lead_id", how="inner")
    subsets = {"all open": probs}
    if "snapshot" in probs:  # leads created in the last days: the creation snapshot
        subsets["creation"] = probs[probs["snapshot"] == "creation"]
    out = []
    for subset, rows in subsets.items():
        for target in settings.targets:
            p_true = rows[f"p_{target}_true"].to_numpy(float)
            best = expected_auc(p_true, p_true)
            for model in ("shipped", "logreg", "points"):
                p = rows[f"{model}.{target}"].to_numpy(float)
                out.append(
                    {
                        "data": name,
                        "leads": subset,
                        "target": target,
                        "model": model,
                        "n": len(rows),
                        "best_auc": best,
                        "share": expected_auc(p, p_true) / best,
                        "mae": float(np.mean(np.abs(p - p_true))),
                        "mean_p": float(p.mean()),
                        "mean_true": float(p_true.mean()),
                    }
                )
    return out


def truth_table(rows: list[dict]) -> str:
    head = (
        "| data | leads | target | model | n | best AUC | share of best AUC | mean abs(p - true) "
        "| mean p | mean true p |"
    )
    lines = [head, "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['leads']} | {r['target']} | {r['model']} | {r['n']:,} "
            f"| {r['best_auc']:.3f} | {r['share']:.3f} | {r['mae']:.4f} | {r['mean_p']:.4f} "
            f"| {r['mean_true']:.4f} |"
        )
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = (
        "| data | split | target | model | family | ROC AUC | PR AUC | log loss | ECE "
        "| lift@10% | training s |"
    )
    lines = [head, "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['split']} | {r['target']} | {r['model']} | {r['family']} "
            f"| {r['roc_auc']:.3f} | {r['pr_auc']:.3f} | {r['log_loss']:.4f} | {r['ece']:.3f} "
            f"| {r['lift_top10']:.2f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-leads", type=int, default=20_000)
    parser.add_argument("--sample-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument(
        "--monotone-activity",
        choices=("on", "off", "both"),
        default="on",
        help="features.monotone_activity for every run; both: each data set twice",
    )
    args = parser.parse_args(argv)
    modes = {"on": (True,), "off": (False,), "both": (False, True)}[args.monotone_activity]
    rows: list[dict] = []
    truth: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in args.sample_seeds:
            out = tmp / f"sample-{seed}"
            write_sample(out, n_leads=args.sample_leads, seed=seed, truth=True)
            settings = settings_for(REPO / "configs" / "sample.yaml", tmp / f"s{seed}", out)
            name = f"sample {args.sample_leads:,} (seed {seed})"
            sample_rows = quality_rows(name, settings, modes)
            truth += truth_rows(name, sample_rows, settings, out / "truth.csv")
            rows += sample_rows
        for name in REAL:
            if not SHARED.is_dir():
                print(f"skipped {name}: {SHARED} is missing")
                continue
            settings = settings_for(REPO / "configs" / f"{name}.yaml", tmp / name)
            rows += quality_rows(name, settings, modes)
    text = table(rows)
    if truth:
        text += (
            "\n\nAgainst the truth: the sample's open leads at the export date (`truth.csv`); "
            "AUC expected over the outcomes the true probabilities draw.\n\n" + truth_table(truth)
        )
    print(text)
    if not args.no_append:
        info = machine("lightgbm", "sklearn", "pandas")
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        section = (
            f"\n## Model quality vs baselines (`bench_quality.py`), {stamp}\n\n"
            f"{machine_line(info)}\nValidation metrics (weighted like the snapshots; see "
            "README), default configs.\n\n" + text + "\n"
        )
        print(f"appended to {append_section(section).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
