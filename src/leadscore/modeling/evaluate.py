"""Metrics and plots of probabilities against outcomes.

Metrics take optional example weights: training keeps a weighted sample of each lead's weekly
snapshots, so the weighted metrics describe the population the weekly scorer sees (open leads of
every age), while unweighted ones would over-represent leads that converted fast.

`binary_metrics` gives ranking (ROC AUC, PR AUC), probability quality (log loss, Brier, expected
calibration error over equal-mass bins) and what sales sees (lift and share of conversions in the
top 10% and 20% of scores). `flat_metrics` names them
`<target>[.<model>][.segment.<value>].<metric>` for MLflow and `metrics.json`. Plots are PNG
files drawn on matplotlib's Agg canvas; nothing here changes matplotlib's global backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def flat_metrics(
    target: str,
    metrics: Mapping[str, float],
    model: str | None = None,
    segments: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Flat keys: `won.roc_auc`, `won.logreg.roc_auc`, `won.segment.web_form.roc_auc`."""
    prefix = target if model is None else f"{target}.{model}"
    out = {f"{prefix}.{k}": float(v) for k, v in metrics.items()}
    for value, seg in (segments or {}).items():
        out.update({f"{prefix}.segment.{slug(value)}.{k}": float(v) for k, v in seg.items()})
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


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_roc(y, scores: Mapping[str, np.ndarray], path: Path, title: str = "") -> Path:
    """ROC curves of several scores against the same labels."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_precision_recall(y, scores: Mapping[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Precision-recall curves, with the base rate as the no-skill line."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})", drawstyle="steps-post")
    base = float(np.mean(y))
    ax.axhline(base, color="grey", linestyle=":", linewidth=1, label=f"base rate {base:.3f}")
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
) -> Path:
    """Reliability diagram: observed rate against mean probability, equal-mass bins."""
    fig = _figure()
    ax = fig.add_subplot()
    top = 0.0
    for name, p in scores.items():
        table = calibration_table(y, p, w=w)
        ece = expected_calibration_error(y, p, w=w)
        ax.plot(
            table.mean_probability, table.observed_rate, marker="o", label=f"{name} (ECE {ece:.3f})"
        )
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


def gains_table(y, p) -> pd.DataFrame:
    """Cumulative share of rows contacted vs share of positives captured, best scores first."""
    y, p, _ = _arrays(y, p)
    ordered = y[_order_desc(p)]
    n = len(y)
    contacted = np.arange(1, n + 1) / n
    captured = np.cumsum(ordered) / max(ordered.sum(), 1.0)
    lift = captured / contacted
    return pd.DataFrame({"contacted": contacted, "captured": captured, "lift": lift})


def plot_gains(y, scores: Mapping[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Cumulative gains (left) and lift (right) curves."""
    fig = _figure(11.0, 4.8)
    gains_ax, lift_ax = fig.subplots(1, 2)
    for name, p in scores.items():
        table = gains_table(y, p)
        step = max(1, len(table) // 500)
        t = table.iloc[::step]
        gains_ax.plot(t.contacted, t.captured, label=name)
        lift_ax.plot(t.contacted, t.lift, label=name)
    gains_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    lift_ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    gains_ax.set(xlabel="share of leads, best first", ylabel="share of conversions captured")
    gains_ax.set_title(f"Cumulative gains {title}")
    lift_ax.set(xlabel="share of leads, best first", ylabel="lift", title=f"Lift {title}")
    lift_ax.set_xlim(0.01, 1)
    gains_ax.legend(loc="lower right")
    lift_ax.legend(loc="upper right")
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


def _value_colour(values: pd.Series) -> np.ndarray:
    """Feature values as 0..1 ranks for colouring (categories by code), NaN where missing."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy(float)
        codes[codes < 0] = np.nan
        x = pd.Series(codes)
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
    swarm_ax.set(xlabel="SHAP value (log-odds); colour: feature value low→high, grey missing")
    return _save(fig, path)


def write_plots(
    target: str,
    y,
    scores: Mapping[str, np.ndarray],
    out_dir: Path,
    w=None,
) -> list[Path]:
    """ROC, precision-recall, calibration and gains plots of one target into `out_dir`
    (the calibration plot weighted like the metrics)."""
    out_dir = Path(out_dir)
    y = np.asarray(y, dtype=float)
    if len(y) == 0 or y.min() == y.max():
        return []
    title = f"({target})"
    return [
        plot_roc(y, scores, out_dir / f"{target}_roc.png", title),
        plot_precision_recall(y, scores, out_dir / f"{target}_pr.png", title),
        plot_calibration(y, scores, out_dir / f"{target}_calibration.png", title, w),
        plot_gains(y, scores, out_dir / f"{target}_gains.png", title),
    ]
