"""Training steps for one target: split, check, select and fit the model, baselines, evaluate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.features import FeatureSpec
from leadscore.data.snapshots import LABEL_PREFIX, Examples
from leadscore.errors import TrainingError
from leadscore.modeling.baselines import LogisticBaseline, PointsScore
from leadscore.modeling.evaluate import (
    binary_metrics,
    capacity_metrics,
    flat_metrics,
    month_metrics,
    segment_metrics,
    snapshot_months,
    snapshot_weeks,
)
from leadscore.modeling.model import TargetInfo, TargetModel
from leadscore.modeling.selection import (
    TargetFit,
    calibration_metrics,
    select_and_fit,
    selection_metrics,
)
from leadscore.modeling.split import TargetSplit, split_target

MODEL = "lightgbm"  # key of the shipped model's metrics (`<target>.<metric>`), whatever family
VALIDATION_KEYS = ("n", "positives", "base_rate", "roc_auc", "pr_auc", "log_loss", "brier")


@dataclass(frozen=True)
class TargetResult:
    """Everything trained and measured for one target."""

    target: str
    split: TargetSplit
    model: TargetModel
    baselines: dict[str, object]
    metrics: dict[str, dict[str, float]]
    segments: dict[str, dict[str, float]]
    counts: dict[str, int]
    validation_scores: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    selection: TargetFit | None = field(repr=False, default=None)
    extra_metrics: dict[str, float] = field(default_factory=dict)
    months: dict[str, dict[str, float]] = field(default_factory=dict)


def label_array(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The target's labels as 0.0/1.0 (rows must have a known label)."""
    return frame[LABEL_PREFIX + target].to_numpy(float)


def class_counts(y: np.ndarray) -> tuple[int, int]:
    """(positives, negatives)."""
    positives = int(np.sum(y == 1))
    return positives, int(len(y) - positives)


def check_minimum_data(target: str, split: TargetSplit, frame: pd.DataFrame, settings: Settings):
    """Refuse a target with too few training positives or negatives, or an empty held-out class.

    Raises `TrainingError` naming the target and the counts.
    """
    train = settings.train
    pos, neg = class_counts(label_array(frame.loc[split.train], target))
    if pos < train.min_positives or neg < train.min_negatives:
        raise TrainingError(
            f"target '{target}': too little training data: {pos:,} positives and {neg:,} "
            f"negatives (need at least {train.min_positives:,} and {train.min_negatives:,}; "
            "see train.min_positives / train.min_negatives)"
        )
    for side in ("calibration", "validation"):
        s_pos, s_neg = class_counts(label_array(frame.loc[getattr(split, side)], target))
        if s_pos == 0 or s_neg == 0:
            raise TrainingError(
                f"target '{target}': the {side} slice has {s_pos:,} positives and {s_neg:,} "
                "negatives; both classes are needed (more data, or a larger split share)"
            )


def fit_baselines(
    target: str,
    spec: FeatureSpec,
    fit_rows: pd.DataFrame,
    calibration_rows: pd.DataFrame,
    settings: Settings,
) -> dict[str, object]:
    """Logistic regression (on all training rows) and the points sheet (points learnt on the fit
    rows, mapped to probabilities on the calibration rows)."""
    numeric = [c for c in spec.columns if c not in spec.categorical]
    train_rows = pd.concat([fit_rows, calibration_rows])
    logreg = LogisticBaseline(
        spec.categorical, numeric, max_categories=settings.features.max_categories
    ).fit(
        train_rows[spec.columns],
        label_array(train_rows, target),
        sample_weight=train_rows["weight"].to_numpy(float),
    )
    points = PointsScore(
        spec.categorical, numeric, calibration=settings.train.model.calibration
    ).fit(
        fit_rows[spec.columns],
        label_array(fit_rows, target),
        sample_weight=fit_rows["weight"].to_numpy(float),
        calibration_set=(
            calibration_rows[spec.columns],
            label_array(calibration_rows, target),
            calibration_rows["weight"].to_numpy(float),
        ),
    )
    return {"logreg": logreg, "points": points}


def validation_scores(
    model: TargetModel, baselines: dict[str, object], rows: pd.DataFrame, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """Probabilities of the model and each baseline on `rows`."""
    X = rows[spec.columns]
    scores = {MODEL: model.predict_proba(X)}
    scores.update({name: est.predict_proba(X)[:, 1] for name, est in baselines.items()})
    return scores


def with_split(info: TargetInfo, split: TargetSplit) -> TargetInfo:
    """`info` with what a bundle records of its split (to evaluate it again on the same period)."""

    def stamp(t):
        return None if t is None else pd.Timestamp(t).isoformat()

    return dataclasses.replace(
        info,
        split=split.method,
        validation_cutoff=stamp(split.validation_cutoff),
        calibration_cutoff=stamp(split.calibration_cutoff),
    )


def split_counts(split: TargetSplit, frame: pd.DataFrame, target: str) -> dict[str, int]:
    """Rows, positives and leads of each side of the split."""
    counts = split.counts()
    for side in ("fit", "calibration", "validation"):
        y = label_array(frame.loc[getattr(split, side)], target)
        counts[f"{side}_positives"] = class_counts(y)[0]
    counts["train_positives"] = counts["fit_positives"] + counts["calibration_positives"]
    counts["train_leads"] = int(frame.loc[split.train, "lead_id"].nunique())
    counts["validation_leads"] = int(frame.loc[split.validation, "lead_id"].nunique())
    return counts


def validation_metrics(
    y: np.ndarray, scores: dict[str, np.ndarray], rows: pd.DataFrame, capacity: int
) -> dict[str, dict[str, float]]:
    """Per model, `binary_metrics` and `capacity_metrics` (the best `capacity` leads of each
    snapshot week) of its scores on the validation `rows`, weighted by their `weight`."""
    w = rows["weight"].to_numpy(float)
    weeks = snapshot_weeks(rows["snapshot_at"])
    return {
        name: {**binary_metrics(y, p, w), **capacity_metrics(y, p, weeks, capacity, w)}
        for name, p in scores.items()
    }


def train_target(
    examples: Examples, target: str, settings: Settings, split: TargetSplit | None = None
) -> TargetResult:
    """Split, check, select and fit the model (`selection.select_and_fit`) and the baselines,
    and evaluate them on the validation rows (the model through its evaluation twin, fitted on
    the training rows only; the returned model is the shipped one, refitted on every labelled
    row, with those honest figures in `metadata.validation_metrics`)."""
    frame, spec = examples.frame, examples.spec
    if split is None:
        split = split_target(
            frame,
            target,
            settings.split.validation_share,
            settings.split.calibration_share,
            settings.has_time,
            settings.train.seed,
        )
    check_minimum_data(target, split, frame, settings)
    fit_rows, cal_rows = frame.loc[split.fit], frame.loc[split.calibration]
    selected = select_and_fit(frame, target, spec, split.train, split.validation, settings)
    baselines = fit_baselines(target, spec, fit_rows, cal_rows, settings)
    val_rows = frame.loc[split.validation]
    y_val = label_array(val_rows, target)
    # the evaluation model (training rows only) scores validation: the shipped model saw it
    scores = validation_scores(selected.evaluation, baselines, val_rows, spec)
    w_val = val_rows["weight"].to_numpy(float)
    metrics = validation_metrics(y_val, scores, val_rows, settings.evaluation.capacity)
    honest = {name: {k: m[k] for k in VALIDATION_KEYS} for name, m in metrics.items()}
    model = selected.shipped
    model.metadata = dataclasses.replace(
        with_split(model.metadata, split), validation_metrics=honest
    )
    segments = {}
    seg_col = settings.columns.segment
    if seg_col and seg_col in val_rows:
        segments = segment_metrics(y_val, scores[MODEL], val_rows[seg_col], w=w_val)
    months = month_metrics(y_val, scores[MODEL], snapshot_months(val_rows["snapshot_at"]), w_val)
    counts = split_counts(split, frame, target)
    extra = {
        **selection_metrics(target, selected),
        **calibration_metrics(target, y_val, scores[MODEL], w_val),
    }
    return TargetResult(
        target, split, model, baselines, metrics, segments, counts, scores, selected, extra, months
    )


VALIDATION_SCORES_DIR = "validation"  # run artifact folder of `validation_frame`s


def validation_frame(frame: pd.DataFrame, result: TargetResult) -> pd.DataFrame:
    """The validation rows a target's metrics were computed on: `lead_id`, `snapshot_at`,
    `weight`, `label` and each model's probability (`p_<model>`, the model from its evaluation
    twin that did not see these rows). Logged with the run, so that notebooks and reviews draw
    their curves from exactly the logged rows and scores."""
    rows = frame.loc[result.split.validation]
    out = pd.DataFrame(
        {
            "lead_id": rows["lead_id"].to_numpy(),
            "snapshot_at": rows["snapshot_at"].to_numpy(),
            "weight": rows["weight"].to_numpy(float),
            "label": label_array(rows, result.target),
        }
    )
    for name, p in result.validation_scores.items():
        out[f"p_{name}"] = np.asarray(p, float)
    return out


def flat_target_metrics(result: TargetResult) -> dict[str, float]:
    """`<target>.<metric>`, `<target>.<baseline>.<metric>`, `<target>.segment.<v>.<metric>`,
    `<target>.month.<YYYY-MM>.<metric>`."""
    out = flat_metrics(
        result.target, result.metrics[MODEL], segments=result.segments, months=result.months
    )
    for name in result.baselines:
        out.update(flat_metrics(result.target, result.metrics[name], model=name))
    out.update(result.extra_metrics)
    return out
