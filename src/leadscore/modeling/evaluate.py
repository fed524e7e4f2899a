"""Metrics and plots of probabilities against outcomes.

Metrics take optional example weights: training keeps a weighted sample of each lead's weekly
snapshots, so the weighted metrics describe the population the weekly scorer sees (open leads of
every age), while unweighted ones would over-represent leads that converted fast.

`binary_metrics` gives ranking (ROC AUC, PR AUC), probability quality (log loss, Brier, expected
calibration error over equal-mass bins) and what sales sees (lift and share of conversions in the
top 10% and 20% of scores); `capacity_metrics` the precision and recall of working the best
`evaluation.capacity` leads each week; `month_metrics` the ranking per validation month.
`flat_metrics` names them `<target>[.<model>][.segment.<value>|.month.<YYYY-MM>].<metric>` for
MLflow and `metrics.json`.

One definition per metric: `base_rate` is the weighted positive rate of the evaluated rows, and
every curve (ROC, precision-recall, calibration, gains and lift) is drawn from the same weighted
rows, its legend showing the numbers `binary_metrics` logs (`plot_legends`). Plots are PNG files
drawn on matplotlib's Agg canvas; nothing here changes matplotlib's global backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from leadscore.data.features import MISSING, slug

TOP_SHARES: tuple[float, ...] = (0.1, 0.2)
ECE_BINS = 10
MAX_SEGMENTS = 20
SHAP_MAX_ROWS = 2_000
LIFT_FROM = 0.01  # the lift plot starts at the top 1% (the first few rows' lift is noise)
EPS = 1e-15


def _arrays(y, p, w=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape} vs {p.shape}")
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    if w.shape != y.shape:
        raise ValueError(f"weights and labels differ in length: {w.shape} vs {y.shape}")
    return y, p, w


def _order_desc(p: np.ndarray) -> np.ndarray:
    """Indices from the highest score down; ties keep input order (deterministic)."""
    return np.argsort(-p, kind="stable")


def expected_calibration_error(y, p, n_bins: int = ECE_BINS, w=None) -> float:
    """Mean |observed rate - mean probability| over `n_bins` equal-mass (weight) bins of scores."""
    y, p, w = _arrays(y, p, w)
    if len(y) == 0 or w.sum() <= 0:
        return math.nan
    order = np.argsort(p, kind="stable")
    mass = np.cumsum(w[order]) / w.sum()
    bins = np.minimum((mass * n_bins - 1e-12).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        idx = order[bins == b]
        wb = w[idx]
        total += wb.sum() * abs(np.average(y[idx], weights=wb) - np.average(p[idx], weights=wb))
    return float(total / w.sum())


def top_share_stats(y, p, share: float, w=None) -> tuple[float, float]:
    """(lift, share of all positives captured) among the top `share` (of weight) by score."""
    y, p, w = _arrays(y, p, w)
    positives = (w * y).sum()
    if len(y) == 0 or positives == 0:
        return math.nan, math.nan
    order = _order_desc(p)
    k = max(1, int(np.searchsorted(np.cumsum(w[order]), share * w.sum(), side="left")) + 1)
    top = order[:k]
    top_rate = (w[top] * y[top]).sum() / w[top].sum()
    return float(top_rate / (positives / w.sum())), float((w[top] * y[top]).sum() / positives)


def binary_metrics(y, p, w=None) -> dict[str, float]:
    """Every metric of one set of probabilities, weighted by `w` when given (NaN where
    undefined, e.g. a single class)."""
    y, p, w = _arrays(y, p, w)
    n, positives = len(y), float(y.sum())
    out: dict[str, float] = {"n": float(n), "positives": positives}
    out["base_rate"] = float((w * y).sum() / w.sum()) if n else math.nan
    two_classes = 0 < positives < n
    clipped = np.clip(p, EPS, 1 - EPS)
    out["roc_auc"] = float(roc_auc_score(y, p, sample_weight=w)) if two_classes else math.nan
    out["pr_auc"] = (
        float(average_precision_score(y, p, sample_weight=w)) if two_classes else math.nan
    )
    out["log_loss"] = (
        float(log_loss(y, clipped, labels=[0.0, 1.0], sample_weight=w)) if n else math.nan
    )
    out["brier"] = float(brier_score_loss(y, p, pos_label=1.0, sample_weight=w)) if n else math.nan
    out["ece"] = expected_calibration_error(y, p, w=w)
    for share in TOP_SHARES:
        lift, captured = top_share_stats(y, p, share, w=w)
        pct = round(share * 100)
        out[f"lift_top{pct}"] = lift
        out[f"captured_top{pct}"] = captured
    return out


def segment_values(segment: pd.Series, max_segments: int = MAX_SEGMENTS) -> pd.Series:
    """Segment labels as text ("(missing)" for none); values beyond the largest few: None."""
    text = segment.astype("string").fillna(MISSING)
    counts = text.value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    keep = {str(k) for k, _ in ranked[:max_segments]}
    return text.where(text.isin(keep))


def segment_metrics(
    y, p, segment: pd.Series, max_segments: int = MAX_SEGMENTS, w=None
) -> dict[str, dict[str, float]]:
    """`binary_metrics` per segment value (the `max_segments` largest segments)."""
    y, p, w = _arrays(y, p, w)
    values = segment_values(segment, max_segments).to_numpy(dtype=object, na_value=None)
    out = {}
    for value in sorted({v for v in values if isinstance(v, str)}):
        mask = values == value
        out[value] = binary_metrics(y[mask], p[mask], w[mask])
    return out


def capacity_metrics(y, p, weeks=None, capacity: float = 200, w=None) -> dict[str, float]:
    """Precision and recall when sales works the best `capacity` leads of each week.

    Rows are grouped by `weeks` (one label per row, e.g. the calendar week of the snapshot, see
    `snapshot_weeks`; None or missing labels: one group). Within a week the rows are taken best
    score first until their weight reaches `capacity`; the row that crosses it counts with the
    part of its weight that still fits, so a week contributes min(capacity, its weight) leads.
    `precision_at_capacity`: weighted positive rate of the leads taken, over all weeks;
    `recall_at_capacity`: their weighted positives over all weighted positives (NaN without
    rows, resp. positives). Ties keep input order.
    """
    y, p, w = _arrays(y, p, w)
    if weeks is None:
        groups = np.zeros(len(y), dtype=int)
    else:
        groups = pd.factorize(pd.Series(weeks).reset_index(drop=True), use_na_sentinel=False)[0]
        if len(groups) != len(y):
            raise ValueError(f"weeks and labels differ in length: {len(groups)} vs {len(y)}")
    taken = np.zeros_like(w)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        order = idx[_order_desc(p[idx])]
        before = np.cumsum(w[order]) - w[order]
        taken[order] = np.clip(capacity - before, 0.0, w[order])
    selected, positives, hits = taken.sum(), (w * y).sum(), (taken * y).sum()
    return {
        "precision_at_capacity": float(hits / selected) if selected > 0 else math.nan,
        "recall_at_capacity": float(hits / positives) if positives > 0 else math.nan,
    }


def snapshot_weeks(snapshot_at: pd.Series) -> pd.Series:
    """The calendar week (Monday to Sunday) of each snapshot, as text; missing without time."""
    when = pd.to_datetime(pd.Series(snapshot_at).reset_index(drop=True))
    start = when.dt.to_period("W-SUN").dt.start_time
    return start.dt.strftime("%Y-%m-%d").astype("string")


def snapshot_months(snapshot_at: pd.Series) -> pd.Series:
    """The calendar month of each snapshot, "YYYY-MM"; missing without time."""
    when = pd.to_datetime(pd.Series(snapshot_at).reset_index(drop=True))
    return when.dt.strftime("%Y-%m").astype("string")


MONTH_KEYS = ("rows", "positives", "base_rate", "roc_auc", "pr_auc")


def month_metrics(y, p, months, w=None) -> dict[str, dict[str, float]]:
    """Per month (`months`: one "YYYY-MM" label per row, e.g. `snapshot_months`): rows,
    positives and the weighted `base_rate`, `roc_auc`, `pr_auc` of `binary_metrics` (NaN for
    a month with one class). Rows without a month are left out; no months: empty."""
    y, p, w = _arrays(y, p, w)
    labels = pd.Series(months).reset_index(drop=True).astype("string")
    if len(labels) != len(y):
        raise ValueError(f"months and labels differ in length: {len(labels)} vs {len(y)}")
    values = labels.to_numpy(dtype=object, na_value=None)
    out = {}
    for month in sorted({v for v in values if isinstance(v, str)}):
        mask = values == month
        m = binary_metrics(y[mask], p[mask], w[mask])
        out[month] = {"rows": m["n"], **{k: m[k] for k in MONTH_KEYS[1:]}}
    return out


def flat_metrics(
    target: str,
    metrics: Mapping[str, float],
    model: str | None = None,
    segments: Mapping[str, Mapping[str, float]] | None = None,
    months: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Flat keys: `won.roc_auc`, `won.logreg.roc_auc`, `won.segment.web_form.roc_auc`,
    `won.month.2026-03.roc_auc`."""
    prefix = target if model is None else f"{target}.{model}"
    out = {f"{prefix}.{k}": float(v) for k, v in metrics.items()}
    for value, seg in (segments or {}).items():
        out.update({f"{prefix}.segment.{slug(value)}.{k}": float(v) for k, v in seg.items()})
    for month, per in (months or {}).items():
        out.update({f"{prefix}.month.{month}.{k}": float(v) for k, v in per.items()})
    return out


def json_ready(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """Metrics with NaN/inf as None (valid JSON), keys sorted."""
    return {k: (float(v) if math.isfinite(v) else None) for k, v in sorted(metrics.items())}


# --- plots -----------------------------------------------------------------------------------


def _figure(width: float = 6.0, height: float = 5.0):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


@dataclass(frozen=True)
class PlotFile:
    """A written plot and the legend labels it shows (to check them against the metrics)."""

    path: Path
    legend: tuple[str, ...]


def _legend_texts(fig) -> tuple[str, ...]:
    return tuple(
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    )


def _save(fig, path: Path) -> PlotFile:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return PlotFile(path, _legend_texts(fig))


def plot_legends(y, scores: Mapping[str, np.ndarray], w=None) -> dict[str, dict[str, str]]:
    """The legend label of each score in each plot, from `binary_metrics` (the numbers the run
    logs): {"roc": {name: "lightgbm (ROC AUC 0.7906)"}, "pr": ..., "calibration": ...,
    "gains": ..., "lift": ...}; "pr" also has the no-skill line under "base rate"."""
    out: dict[str, dict[str, str]] = {k: {} for k in ("roc", "pr", "calibration", "gains", "lift")}
    base = math.nan
    for name, p in scores.items():
        m = binary_metrics(y, p, w)
        base = m["base_rate"]
        out["roc"][name] = f"{name} (ROC AUC {m['roc_auc']:.4f})"
        out["pr"][name] = f"{name} (PR AUC {m['pr_auc']:.4f})"
        out["calibration"][name] = f"{name} (ECE {m['ece']:.4f})"
        out["gains"][name] = (
            f"{name} (top 10%: {m['captured_top10']:.1%}, top 20%: {m['captured_top20']:.1%})"
        )
        out["lift"][name] = f"{name} (top 10%: {m['lift_top10']:.2f}x)"
    out["pr"]["base rate"] = f"base rate {base:.4f}"
    return out


def plot_roc(y, scores: Mapping[str, np.ndarray], path: Path, title: str = "", w=None) -> PlotFile:
    """ROC curves of several scores against the same (weighted) labels."""
    labels = plot_legends(y, scores, w)["roc"]
    fig = _figure()
    ax = fig.add_subplot()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p, sample_weight=w)
        ax.plot(fpr, tpr, label=labels[name])
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_precision_recall(
    y, scores: Mapping[str, np.ndarray], path: Path, title: str = "", w=None
) -> PlotFile:
    """Precision-recall curves (weighted), with the base rate as the no-skill line."""
    labels = plot_legends(y, scores, w)["pr"]
    fig = _figure()
    ax = fig.add_subplot()
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p, sample_weight=w)
        ax.plot(recall, precision, label=labels[name], drawstyle="steps-post")
    base = binary_metrics(y, next(iter(scores.values())), w)["base_rate"] if scores else math.nan
    ax.axhline(base, color="grey", linestyle=":", linewidth=1, label=labels["base rate"])
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall {title}")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper right")
    return _save(fig, path)


def calibration_table(y, p, n_bins: int = ECE_BINS, w=None) -> pd.DataFrame:
    """Mean probability and observed rate per equal-mass (weight) bin of the scores."""
    y, p, w = _arrays(y, p, w)
    order = np.argsort(p, kind="stable")
    mass = np.cumsum(w[order]) / w.sum()
    bins = np.minimum((mass * n_bins - 1e-12).astype(int), n_bins - 1)
    rows = []
    for b in np.unique(bins):
        c = order[bins == b]
        rows.append((np.average(p[c], weights=w[c]), np.average(y[c], weights=w[c]), len(c)))
    return pd.DataFrame(rows, columns=["mean_probability", "observed_rate", "n"])


def plot_calibration(
    y, scores: Mapping[str, np.ndarray], path: Path, title: str = "", w=None
) -> PlotFile:
    """Reliability diagram: observed rate against mean probability, equal-mass bins."""
    labels = plot_legends(y, scores, w)["calibration"]
    fig = _figure()
    ax = fig.add_subplot()
    top = 0.0
    for name, p in scores.items():
        table = calibration_table(y, p, w=w)
        ax.plot(table.mean_probability, table.observed_rate, marker="o", label=labels[name])
        top = max(top, table.mean_probability.max(), table.observed_rate.max())
    top = min(1.0, top * 1.05 + 1e-3)
    ax.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration {title}"
    )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(loc="upper left")
    return _save(fig, path)


def gains_table(y, p, w=None) -> pd.DataFrame:
    """Cumulative share of rows contacted vs share of positives captured, best scores first,
    both by weight (the row at which `contacted` first reaches a share s is the last row
    `top_share_stats` counts for s)."""
    y, p, w = _arrays(y, p, w)
    order = _order_desc(p)
    weight = w[order]
    contacted = np.cumsum(weight) / max(weight.sum(), EPS)
    captured = np.cumsum(weight * y[order]) / max((weight * y[order]).sum(), EPS)
    lift = captured / np.maximum(contacted, EPS)
    return pd.DataFrame({"contacted": contacted, "captured": captured, "lift": lift})


def plot_gains(
    y, scores: Mapping[str, np.ndarray], path: Path, title: str = "", w=None
) -> PlotFile:
    """Cumulative gains (left) and lift (right) curves, weighted; the points at the top 10% and
    20% are `captured_top10/20` and `lift_top10/20`, as logged."""
    legends = plot_legends(y, scores, w)
    fig = _figure(11.0, 4.8)
    gains_ax, lift_ax = fig.subplots(1, 2)
    top_lift = 1.0
    for name, p in scores.items():
        table = gains_table(y, p, w)
        shown = table.loc[table.contacted >= LIFT_FROM, "lift"]
        top_lift = max(top_lift, float(shown.max()) if len(shown) else 1.0)
        step = max(1, len(table) // 500)
        t = table.iloc[::step]
        (line,) = gains_ax.plot(t.contacted, t.captured, label=legends["gains"][name])
        lift_ax.plot(t.contacted, t.lift, label=legends["lift"][name], color=line.get_color())
        m = binary_metrics(y, p, w)
        for share in TOP_SHARES:
            pct = round(share * 100)
            gains_ax.plot(share, m[f"captured_top{pct}"], "o", color=line.get_color(), ms=4)
            lift_ax.plot(share, m[f"lift_top{pct}"], "o", color=line.get_color(), ms=4)
    gains_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    lift_ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    gains_ax.set(xlabel="share of leads, best first", ylabel="share of conversions captured")
    gains_ax.set_title(f"Cumulative gains {title}")
    lift_ax.set(xlabel="share of leads, best first", ylabel="lift", title=f"Lift {title}")
    lift_ax.set_xlim(LIFT_FROM, 1)
    lift_ax.set_ylim(0, top_lift * 1.05)
    gains_ax.legend(loc="lower right", fontsize=8)
    lift_ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def shap_contributions(
    target_model, features: pd.DataFrame, max_rows: int = SHAP_MAX_ROWS, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-feature log-odds contributions (LightGBM `pred_contrib`, or a linear model's exact
    contributions) on a seeded sample of rows.

    Returns (contributions, transformed features) with the booster's column names; the
    contributions' last column `(bias)` is the expected margin.
    """
    if len(features) > max_rows:
        rng = np.random.default_rng(seed)
        features = features.iloc[np.sort(rng.choice(len(features), max_rows, replace=False))]
    transformed = target_model.transform(features)
    est = target_model.estimator
    if target_model.family == "lightgbm":
        contrib = est.predict(transformed, pred_contrib=True)
    else:  # linear: its exact per-column contributions, the intercept as the bias
        linear = getattr(est, "linear", est)
        per_column, base = linear.contributions(transformed)
        contrib = np.column_stack([per_column, np.full(len(transformed), base)])
        if hasattr(est, "weights"):  # a blend: the same weighted sum as of its log-odds
            w_linear, w_tree = (float(v) for v in est.weights)
            tree = est.lgbm.predict(transformed, pred_contrib=True)
            contrib = w_linear * contrib + w_tree * np.asarray(tree)
    columns = [*transformed.columns, "(bias)"]
    return pd.DataFrame(np.asarray(contrib), columns=columns, index=transformed.index), transformed


def category_order(values: pd.Series) -> list[str]:
    """The categories of a column in a stable order (sorted as text, case-insensitive), the
    same whatever order the encoder or the data met them in."""
    text = values.astype("string").dropna()
    return sorted(set(text), key=lambda v: (v.casefold(), v))


def _value_colour(values: pd.Series) -> np.ndarray:
    """Feature values as 0..1 ranks for colouring (categories in `category_order`, not by
    their codes), NaN where missing."""
    categorical = isinstance(values.dtype, pd.CategoricalDtype)
    if categorical or not pd.api.types.is_numeric_dtype(values.dtype):
        position = {v: i for i, v in enumerate(category_order(values))}
        text = values.astype("string").to_numpy(dtype=object, na_value=None)
        x = pd.Series([np.nan if v is None else float(position[v]) for v in text])
    else:
        x = pd.Series(pd.to_numeric(values, errors="coerce").to_numpy(float))
    return x.rank(pct=True).to_numpy(float)


def plot_shap_summary(
    contributions: pd.DataFrame,
    features: pd.DataFrame,
    path: Path,
    title: str = "",
    max_features: int = 20,
    seed: int = 0,
) -> Path:
    """SHAP summary: mean |contribution| per feature (left) and a beeswarm-style strip (right)."""
    contrib = contributions.drop(columns=["(bias)"], errors="ignore")
    importance = contrib.abs().mean().sort_values(ascending=False).head(max_features)[::-1]
    names = list(importance.index)
    fig = _figure(12.0, max(4.0, 0.32 * len(names) + 1.5))
    bar_ax, swarm_ax = fig.subplots(1, 2, sharey=True)
    ypos = np.arange(len(names))
    bar_ax.barh(ypos, importance.to_numpy(), color="#3b75af")
    bar_ax.set_yticks(ypos, names)
    bar_ax.set(xlabel="mean |SHAP| (log-odds)", title=f"Feature impact {title}")
    rng = np.random.default_rng(seed)
    for i, name in enumerate(names):
        shap_values = contrib[name].to_numpy(float)
        colour = _value_colour(features[name]) if name in features else np.full(len(contrib), 0.5)
        jitter = rng.uniform(-0.3, 0.3, len(shap_values))
        missing = np.isnan(colour)
        swarm_ax.scatter(
            shap_values[~missing],
            i + jitter[~missing],
            c=colour[~missing],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            s=4,
            alpha=0.6,
            linewidths=0,
        )
        swarm_ax.scatter(
            shap_values[missing], i + jitter[missing], color="grey", s=4, alpha=0.4, linewidths=0
        )
    swarm_ax.axvline(0, color="grey", linewidth=0.8)
    swarm_ax.set(
        xlabel="SHAP value (log-odds); colour: value low→high (categories A→Z), grey missing"
    )
    return _save(fig, path).path


def write_plots(
    target: str,
    y,
    scores: Mapping[str, np.ndarray],
    out_dir: Path,
    w=None,
) -> list[PlotFile]:
    """ROC, precision-recall, calibration and gains plots of one target into `out_dir`, all on
    the rows weighted by `w` like the metrics, legends from `binary_metrics` (`plot_legends`)."""
    out_dir = Path(out_dir)
    y = np.asarray(y, dtype=float)
    if len(y) == 0 or y.min() == y.max():
        return []
    title = f"({target})"
    return [
        plot_roc(y, scores, out_dir / f"{target}_roc.png", title, w),
        plot_precision_recall(y, scores, out_dir / f"{target}_pr.png", title, w),
        plot_calibration(y, scores, out_dir / f"{target}_calibration.png", title, w),
        plot_gains(y, scores, out_dir / f"{target}_gains.png", title, w),
    ]
