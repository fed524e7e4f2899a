"""Model quality against the baselines: the sample funnel and each real public data set.

Trains through `leadscore.modeling.train.run_training` with each config (`configs/sample.yaml` on a
freshly written sample, `configs/x_education.yaml`, `configs/olist.yaml` on `../shared/data/`)
into a private MLflow store, and prints the validation metrics of the model and both baselines
per target. Appends the table to docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_quality.py                  # all data sets
    .venv/bin/python benchmarks/bench_quality.py --sample-seeds 0 1 2 --no-append
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from machine import REPO, append_section, machine, machine_line  # benchmarks/ (script's folder)

from leadscore.config import load_config
from leadscore.data.sample import write_sample
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


def quality_rows(name: str, settings) -> list[dict]:
    """One row per target and model with the validation metrics."""
    result = run_training(settings)
    rows = []
    for target in settings.targets:
        for model in MODELS:
            prefix = target if model == "lightgbm" else f"{target}.{model}"
            rows.append(
                {
                    "data": name,
                    "split": result.split_method,
                    "target": target,
                    "model": model,
                    **{m: result.metrics.get(f"{prefix}.{m}", float("nan")) for m in METRICS},
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    head = "| data | split | target | model | ROC AUC | PR AUC | log loss | ECE | lift@10% |"
    lines = [head, "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['split']} | {r['target']} | {r['model']} | {r['roc_auc']:.3f} "
            f"| {r['pr_auc']:.3f} | {r['log_loss']:.4f} | {r['ece']:.3f} | {r['lift_top10']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-leads", type=int, default=20_000)
    parser.add_argument("--sample-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in args.sample_seeds:
            out = tmp / f"sample-{seed}"
            write_sample(out, n_leads=args.sample_leads, seed=seed)
            settings = settings_for(REPO / "configs" / "sample.yaml", tmp / f"s{seed}", out)
            rows += quality_rows(f"sample {args.sample_leads:,} (seed {seed})", settings)
        for name in REAL:
            if not SHARED.is_dir():
                print(f"skipped {name}: {SHARED} is missing")
                continue
            settings = settings_for(REPO / "configs" / f"{name}.yaml", tmp / name)
            rows += quality_rows(name, settings)
    text = table(rows)
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
