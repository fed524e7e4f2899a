"""Per-target model selection on time-ordered folds, then the shipped refit on all labelled rows.

For one target (see README, "How the model is trained"):

1. The target's training rows (before the validation cutoff) are cut into expanding-window folds
   (`cv.make_folds`; stratified random folds by lead without creation times, or when fewer than
   two time-ordered folds hold both classes). Each family is fitted per fold and predicts its
   fold's newer leads: the out-of-fold (OOF) log-odds. Independent fits run side by side,
   `train.model.n_jobs` at a time, each LightGBM on one thread.
   * `linear.SplineLogit` (regularised logistic regression on the LightGBM pipeline's
     preprocessing), for every `train.linear_knots` x `train.linear_C`; `knots=0, C=1` is the
     logistic-regression baseline's own design, so the baseline is always a candidate.
   * LightGBM: every fold boosts with early stopping on its own period, recording the log loss
     per iteration; the number of trees is the argmin of the mean curve over folds (a fold that
     stopped early is continued at its last value), and the OOF log-odds are taken at that many
     trees from the same fold boosters.
   * The blend (`blend.Blend`) of the two: the mean of their log-odds, or a logistic regression
     on both (stacking).
2. Each candidate is turned into probabilities the way it will be used: its calibrator (the
   model's own probabilities, a level shift, Platt; for the blend mean-plus-level or stacking)
   is fitted on one period and predicts the *next* (fold k-1 -> fold k; without time, the other
   folds -> this one). The weighted log loss of those forward-chained probabilities is its score
   (`<target>.cv.<family>.log_loss`). Options go from simple to complex (calibrators as listed;
   families linear, blend, LightGBM); a later one replaces the current choice only when
   it is better by more than `train.selection_tolerance` standard errors of the paired per-lead
   loss difference: ties within noise go to the simpler.
3. The *evaluation* model (chosen family, settings and calibrator) is fitted on all training
   rows. Its calibrator is fitted on the newest fold (`train.calibration_level: newest`; every
   OOF row without time or with `all`): the slope (and a blend's stacking weights) from the
   fold models' OOF log-odds there, the level from the evaluation model's own log-odds on those
   rows — a model trained on more, or more recent, data sits at another level than the fold
   models, and one constant fitted on rows it saw is hardly biased. So a base rate that moved
   over time is tracked. It scores the validation rows: the reported validation metrics,
   honest (the model never saw those leads, nothing was chosen on them).
4. The *shipped* model is refitted on every labelled row (training and validation, up to the
   export date) with the same settings and number of trees, and calibrated the same way one
   period later: slope from the evaluation model's log-odds on the validation rows, level from
   its own there. The number of trees stays fixed: more trees at the same learning rate would
   stretch the log-odds beyond the range the calibrator was fitted on.
   `<target>.calibration_slope_ratio` (Platt slope on validation over that on the newest fold)
   watches the scale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from leadscore.config import Settings
from leadscore.data.features import FeatureSpec
from leadscore.data.schema import LABEL_PREFIX
from leadscore.modeling.blend import FAMILY as BLEND
from leadscore.modeling.blend import Blend
from leadscore.modeling.cv import Fold, make_folds, oof_index
from leadscore.modeling.linear import FAMILY as LINEAR
from leadscore.modeling.linear import SplineLogit, make_linear, make_linear_pipeline, rows_to_fit
from leadscore.modeling.model import LIGHTGBM, Calibrator, TargetInfo, TargetModel, make_pipeline

log = logging.getLogger(__name__)

# preferred first: ties within noise go to the earlier. The blend comes before LightGBM alone:
# it contains the linear model (so it cannot fall far below the logistic baseline where trees
# overfit or a base rate moves), and its continuous linear part breaks the ties a tree model
# leaves between leads that fall in the same leaves (hundreds of old, quiet leads at one P)
FAMILIES: tuple[str, ...] = (LINEAR, BLEND, LIGHTGBM)
EPS = 1e-15
# a blend's calibrations: the mean of its log-odds as they are, the mean with a level shift, or
# stacking (a logistic regression on both)
MEAN, MEAN_SHIFT, STACK = "mean", "mean+shift", "stack"
# the newest period a calibrator is fitted on reaches back until it holds this many positives
# (and negatives): a level fitted on 60 positives is off by about 0.13 on the log-odds scale
MIN_CALIBRATION_POSITIVES = 100


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's out-of-fold log-odds (rows x parts: one column, two for the blend),
    its forward-chained score and its settings."""

    family: str
    oof_margin: np.ndarray = field(repr=False)
    log_loss: float
    roc_auc: float
    n_estimators: int | None = None
    C: float | None = None
    n_knots: int | None = None
    held_out: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    calibration: str = "sigmoid"


@dataclass(frozen=True)
class TargetFit:
    """What model selection produced for one target."""

    family: str
    evaluation: TargetModel  # fitted on the training rows only: scores validation honestly
    shipped: TargetModel  # refitted on every labelled row
    candidates: dict[str, CandidateResult] = field(default_factory=dict)
    folds: tuple[Fold, ...] = ()
    slope_ratio: float = float("nan")
    trials: tuple[dict, ...] = ()  # `train.tune`'s Optuna trials (none when off)


@dataclass(frozen=True)
class OutOfFold:
    """The OOF rows of a target, in fold order: labels, weights, leads and fold numbers."""

    y: np.ndarray
    w: np.ndarray
    leads: np.ndarray
    fold: np.ndarray
    has_time: bool


def xyw(rows: pd.DataFrame, target: str, spec: FeatureSpec):
    """Features, 0/1 labels and weights of `rows`."""
    return (
        rows[spec.columns],
        rows[LABEL_PREFIX + target].to_numpy(float),
        rows["weight"].to_numpy(float),
    )


def row_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def weighted_log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    return float(np.average(row_losses(y, p), weights=w))


def in_parallel(tasks: list[Callable], workers: int) -> list:
    """Run independent fits side by side (LightGBM and BLAS release the GIL)."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


def one_thread(settings: Settings) -> Settings:
    """`settings` with LightGBM on one thread (parallelism comes from fits side by side)."""
    model = settings.train.model.model_copy(update={"n_jobs": 1})
    return settings.model_copy(update={"train": settings.train.model_copy(update={"model": model})})


# --- fitting one family ------------------------------------------------------------------------


def fit_family(
    family: str,
    rows: pd.DataFrame,
    target: str,
    spec: FeatureSpec,
    settings: Settings,
    n_estimators: int | None = None,
    C: float | None = None,
    n_knots: int | None = None,
    weights: tuple[float, float] | None = None,
):
    """A pipeline of `family` fitted on `rows` (LightGBM with `n_estimators` trees, the linear
    family with inverse regularisation `C` and `n_knots` spline knots, the blend of both with
    `weights`)."""
    X, y, w = xyw(rows, target, spec)
    max_cat = settings.features.max_categories
    if family == LINEAR:
        pipeline = make_linear_pipeline(spec, max_cat, C=float(C), n_knots=int(n_knots))
    else:
        m = settings.train.model
        if n_estimators is not None:
            m = m.model_copy(update={"n_estimators": int(n_estimators)})
        pipeline = make_pipeline(spec, m, settings.train.seed, max_cat)
        if family == BLEND:
            linear = make_linear(spec, C=float(C), n_knots=int(n_knots))
            pipeline.steps[-1] = ("blend", Blend(linear, pipeline.steps[-1][1], weights))
    prep, est = pipeline.steps[0][1], pipeline.steps[-1][1]
    est.fit(prep.fit(X).transform(X), y, sample_weight=w)
    return pipeline


def use_threads(pipeline, n_jobs: int):
    """Let a fitted pipeline's LightGBM (if any) predict with `n_jobs` threads."""
    est = pipeline.steps[-1][1]
    lgbm = getattr(est, "lgbm", est)
    if isinstance(lgbm, lgb.LGBMClassifier):
        lgbm.set_params(n_jobs=n_jobs)
    return pipeline


def pipeline_margin(pipeline, X: pd.DataFrame) -> np.ndarray:
    """Raw log-odds of a fitted pipeline of any family."""
    return pipeline.steps[-1][1].predict_proba(pipeline.steps[0][1].transform(X), raw_score=True)


def part_margins(pipeline, X: pd.DataFrame) -> np.ndarray:
    """Rows x parts: a blend's two log-odds, or the one of a single family."""
    est = pipeline.steps[-1][1]
    if len(X) == 0:
        return np.zeros((0, 2 if isinstance(est, Blend) else 1))
    Xt = pipeline.steps[0][1].transform(X)
    if isinstance(est, Blend):
        return est.part_margins(Xt)
    return est.predict_proba(Xt, raw_score=True).reshape(-1, 1)


# --- the candidates on the folds ---------------------------------------------------------------


def lightgbm_fold(frame, target, spec, fold: Fold, settings: Settings):
    """One fold's booster, early-stopped on its own period: (its log-loss curve padded to
    `n_estimators`, the booster, the period's booster input)."""
    m = settings.train.model
    X, y, w = xyw(frame.loc[fold.train], target, spec)
    Xv, yv, wv = xyw(frame.loc[fold.valid], target, spec)
    pipeline = make_pipeline(spec, m, settings.train.seed, settings.features.max_categories)
    prep, booster = pipeline.named_steps["prep"], pipeline.named_steps["lgbm"]
    prep.fit(X)
    Xv_t = prep.transform(Xv)
    record: dict = {}
    callbacks = [lgb.record_evaluation(record)]
    if len(np.unique(yv)) == 2:
        callbacks.append(lgb.early_stopping(m.early_stopping_rounds, verbose=False))
    booster.fit(
        prep.transform(X),
        y,
        sample_weight=w,
        eval_X=(Xv_t,),
        eval_y=(yv,),
        eval_sample_weight=[wv],
        eval_metric="binary_logloss",
        callbacks=callbacks,
    )
    curve = np.asarray(next(iter(record.values()))["binary_logloss"], dtype=float)
    return np.pad(curve, (0, m.n_estimators - len(curve)), mode="edge"), booster, Xv_t


def lightgbm_cv(
    frame: pd.DataFrame, target: str, spec: FeatureSpec, folds: tuple[Fold, ...], settings: Settings
) -> tuple[int, np.ndarray]:
    """(number of trees, OOF log-odds in fold order), from one early-stopped booster per fold."""
    single = one_thread(settings)
    tasks = [lambda f=f: lightgbm_fold(frame, target, spec, f, single) for f in folds]
    fitted = in_parallel(tasks, settings.train.model.n_jobs)
    best = int(np.argmin(np.mean([curve for curve, _, _ in fitted], axis=0))) + 1
    oof = [b.predict_proba(Xv_t, raw_score=True, num_iteration=best) for _, b, Xv_t in fitted]
    return best, np.concatenate(oof)


def linear_fold(frame, target, spec, fold: Fold, settings: Settings, n_knots: int):
    """One fold's OOF log-odds of the linear family, per `C` (one design for all of them)."""
    X, y, w = xyw(frame.loc[fold.train], target, spec)
    pipeline = make_linear_pipeline(spec, settings.features.max_categories, n_knots=n_knots)
    prep = pipeline.named_steps["prep"]
    model: SplineLogit = pipeline.named_steps["linear"]
    keep, scale = rows_to_fit(len(y), model.max_rows, model.seed)
    if keep is not None:
        X, y, w = X.iloc[keep], y[keep], w[keep] * scale
    Z = model.prepare(prep.fit(X).transform(X))
    Zv, _ = model._design(prep.transform(frame.loc[fold.valid, spec.columns]))
    out = {}
    for i, C in enumerate(sorted(settings.train.linear_C)):  # strongest penalty first, warm
        model.set_params(C=float(C)).fit_design(Z, y, w, warm=i > 0)
        out[float(C)] = model.intercept_ + (Zv - model.mean_) @ model.coef_
    return out


def linear_cv(
    frame: pd.DataFrame,
    target: str,
    spec: FeatureSpec,
    folds: tuple[Fold, ...],
    settings: Settings,
    n_knots: int,
) -> dict[float, np.ndarray]:
    """OOF log-odds (fold order) of the linear family with `n_knots`, per `C`."""
    tasks = [lambda f=f: linear_fold(frame, target, spec, f, settings, n_knots) for f in folds]
    parts = in_parallel(tasks, settings.train.model.n_jobs)
    return {C: np.concatenate([p[C] for p in parts]) for C in parts[0]}


def fit_combiner(
    margins: np.ndarray, y: np.ndarray, w: np.ndarray, method: str
) -> Callable[[np.ndarray], np.ndarray]:
    """Probabilities from held-out `margins` (rows x parts): the calibrator `method` on one
    column, a logistic regression (the blend's weights and level) on two."""
    if margins.shape[1] > 1 and method == STACK:
        fitted = LogisticRegression(C=1e6).fit(margins, y, sample_weight=w)
        return lambda m: fitted.predict_proba(m)[:, 1]
    weights = blend_weights(margins.shape[1])
    cal = Calibrator(calibrator_method(method)).fit(margins @ weights, y, sample_weight=w)
    return lambda m: cal.predict(m @ weights)


def blend_weights(parts: int) -> np.ndarray:
    """The fixed weights of a mean of `parts` log-odds (1.0 for a single family)."""
    return np.full(parts, 1.0 / parts)


def calibrator_method(method: str) -> str:
    """The `Calibrator` method of a candidate's calibration (a blend's: on its mean log-odds)."""
    return {MEAN: "none", MEAN_SHIFT: "shift", STACK: "sigmoid"}.get(method, method)


def forward_chained(margins: np.ndarray, oof: OutOfFold, method: str) -> np.ndarray:
    """Held-out probabilities of a candidate (NaN where none): its calibrator fitted on fold
    k-1 predicts fold k (without time: fitted on the other folds)."""
    p = np.full(len(oof.y), np.nan)
    for k in np.unique(oof.fold):
        here = oof.fold == k
        source = oof.fold == k - 1 if oof.has_time else ~here
        ys = oof.y[source]
        if not source.any() or not 0 < ys.sum() < len(ys):
            continue
        p[here] = fit_combiner(margins[source], ys, oof.w[source], method)(margins[here])
    return p


def calibration_methods(settings: Settings, parts: int) -> tuple[str, ...]:
    """The calibrators tried for a candidate, simplest first: `train.model.calibration`, or
    with "auto" the model's own probabilities, the level-only shift and Platt. A blend: the
    mean of its two log-odds as it is or with a level shift, or a logistic regression on both
    (stacking)."""
    method = settings.train.model.calibration
    if parts > 1:
        return (MEAN, MEAN_SHIFT, STACK)
    return ("none", "shift", "sigmoid") if method == "auto" else (method,)


def score(
    family: str, margins: np.ndarray, oof: OutOfFold, settings: Settings, **settings_of
) -> CandidateResult:
    """A candidate's forward-chained log loss and ROC AUC, with its calibrator: the simplest of
    `calibration_methods` that no more complex one beats beyond noise (`better_beyond_noise`)."""
    best = None
    for method in calibration_methods(settings, margins.shape[1]):
        p = forward_chained(margins, oof, method)
        if best is not None and not better_beyond_noise(best.held_out, p, oof, settings):
            continue
        scored = ~np.isnan(p)
        y, w = oof.y[scored], oof.w[scored]
        loss = weighted_log_loss(y, p[scored], w) if scored.any() else float("inf")
        two = scored.any() and 0 < y.sum() < len(y)
        auc = float(roc_auc_score(y, p[scored], sample_weight=w)) if two else float("nan")
        best = CandidateResult(
            family, margins, loss, auc, held_out=p, calibration=method, **settings_of
        )
    return best


def loss_difference(p_a: np.ndarray, p_b: np.ndarray, oof: OutOfFold) -> tuple[float, float]:
    """Mean weighted per-row log-loss difference (b - a) on the rows both scored, and its
    standard error, with rows grouped by lead (a lead's snapshots are not independent)."""
    both = ~np.isnan(p_a) & ~np.isnan(p_b)
    y, w, leads = oof.y[both], oof.w[both], oof.leads[both]
    d = w * (row_losses(y, p_b[both]) - row_losses(y, p_a[both]))
    per_lead = pd.Series(d).groupby(leads, sort=False).sum().to_numpy()
    if len(per_lead) < 2:
        return 0.0, float("inf")
    mean = per_lead.sum() / w.sum()
    se = float(np.std(per_lead, ddof=1) * np.sqrt(len(per_lead)) / w.sum())
    return float(mean), se


def better_beyond_noise(
    p_simple: np.ndarray, p_complex: np.ndarray, oof: OutOfFold, settings: Settings
) -> bool:
    """Whether the more complex option's log loss is lower by more than
    `train.selection_tolerance` standard errors of the paired difference."""
    diff, se = loss_difference(p_simple, p_complex, oof)
    return diff < -settings.train.selection_tolerance * se


def choose(candidates: dict[str, CandidateResult], oof: OutOfFold, settings: Settings) -> str:
    """The simplest candidate that no more complex one beats beyond noise."""
    order = [f for f in FAMILIES if f in candidates]
    best = order[0]
    for family in order[1:]:
        if better_beyond_noise(
            candidates[best].held_out, candidates[family].held_out, oof, settings
        ):
            best = family
    return best


TUNED_PARAMS = (
    "num_leaves",
    "min_child_samples",
    "learning_rate",
    "colsample_bytree",
    "reg_lambda",
)


def with_model(settings: Settings, **updates) -> Settings:
    """`settings` with `train.model` updated."""
    model = settings.train.model.model_copy(update=updates)
    return settings.model_copy(update={"train": settings.train.model_copy(update={"model": model})})


def suggest(trial) -> dict:
    """One Optuna trial's LightGBM settings (the number of trees is early-stopped per fold)."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def tune_lightgbm(
    frame: pd.DataFrame,
    target: str,
    spec: FeatureSpec,
    folds: tuple[Fold, ...],
    oof: OutOfFold,
    settings: Settings,
) -> tuple[Settings, tuple[dict, ...]]:
    """`train.tune`: an Optuna search (TPE, seeded) of LightGBM's settings, each trial scored
    like the LightGBM candidate (forward-chained log loss over the folds). The configured
    settings are the first trial, so the search never ends worse on that score. Returns the
    settings with the best trial's values and every finished trial (params, score, trees,
    seconds); the settings unchanged when tuning is off."""
    cfg = settings.train.tune
    wants_lgbm = {LIGHTGBM, BLEND} & set(settings.train.families)
    if cfg.trials == 0 or not wants_lgbm:
        return settings, ()
    import optuna  # the `tune` extra

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial) -> float:
        trial_settings = with_model(settings, **suggest(trial))
        n_est, margin = lightgbm_cv(frame, target, spec, folds, trial_settings)
        trial.set_user_attr("n_estimators", n_est)
        return score(LIGHTGBM, margin.reshape(-1, 1), oof, trial_settings).log_loss

    sampler = optuna.samplers.TPESampler(seed=settings.train.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial({k: getattr(settings.train.model, k) for k in TUNED_PARAMS})
    study.optimize(objective, n_trials=cfg.trials, timeout=cfg.timeout_s)
    trials = tuple(
        {
            "number": t.number,
            "params": dict(t.params),
            "cv_log_loss": float(t.value),
            "n_estimators": t.user_attrs.get("n_estimators"),
            "seconds": t.duration.total_seconds() if t.duration else float("nan"),
        }
        for t in study.trials
        if t.value is not None
    )
    log.info(
        "%s: tuned LightGBM in %d trial(s): best cv log loss %.4f (trial %d)",
        target,
        len(trials),
        study.best_value,
        study.best_trial.number,
    )
    return with_model(settings, **study.best_params), trials


def candidates_on_folds(
    frame: pd.DataFrame,
    target: str,
    spec: FeatureSpec,
    folds: tuple[Fold, ...],
    oof: OutOfFold,
    settings: Settings,
) -> dict[str, CandidateResult]:
    """Every configured family's OOF log-odds and forward-chained score (module docstring)."""
    families = settings.train.families
    out: dict[str, CandidateResult] = {}
    wants_linear = LINEAR in families or BLEND in families
    wants_lgbm = LIGHTGBM in families or BLEND in families
    linear = None
    if wants_linear:
        for knots in settings.train.linear_knots:
            for C, margin in linear_cv(frame, target, spec, folds, settings, knots).items():
                cand = score(LINEAR, margin.reshape(-1, 1), oof, settings, C=C, n_knots=knots)
                if linear is None or cand.log_loss < linear.log_loss - 1e-9:
                    linear = cand
        if LINEAR in families:
            out[LINEAR] = linear
    lgbm = None
    if wants_lgbm:
        n_est, margin = lightgbm_cv(frame, target, spec, folds, settings)
        lgbm = score(LIGHTGBM, margin.reshape(-1, 1), oof, settings, n_estimators=n_est)
        if LIGHTGBM in families:
            out[LIGHTGBM] = lgbm
    if BLEND in families:
        both = np.column_stack([linear.oof_margin[:, 0], lgbm.oof_margin[:, 0]])
        out[BLEND] = score(
            BLEND,
            both,
            oof,
            settings,
            n_estimators=lgbm.n_estimators,
            C=linear.C,
            n_knots=linear.n_knots,
        )
    return out


# --- calibration and the two final models ------------------------------------------------------


def enough_of_both(y: np.ndarray) -> bool:
    """At least `MIN_CALIBRATION_POSITIVES` positives and as many negatives."""
    pos = float(np.sum(y))
    return min(pos, len(y) - pos) >= MIN_CALIBRATION_POSITIVES


def newest_rows(oof: OutOfFold, by_time: bool) -> np.ndarray:
    """The newest OOF rows holding enough of both classes: the newest fold, reaching back a
    fold at a time when it holds too few (every row without time)."""
    mask = np.ones(len(oof.y), dtype=bool)
    if not by_time:
        return mask
    for k in sorted(np.unique(oof.fold), reverse=True):
        mask = oof.fold >= k
        if enough_of_both(oof.y[mask]):
            break
    return mask


def calibrate(
    pipeline,
    held_out: np.ndarray,
    own: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    method: str,
) -> Calibrator:
    """The calibrator of a final model, from the newest period's rows: a blend's weights (set
    in `pipeline`) and the slope from `held_out` log-odds (rows x parts, from models that did
    not see the rows), the level from the model's `own` log-odds on the same rows (a model
    trained on more, or more recent, data sits at another level than the models that made the
    held-out log-odds; one constant fitted on rows it saw is hardly biased)."""
    est = pipeline.steps[-1][1]
    if isinstance(est, Blend):
        weights = blend_weights(2)
        if method == STACK:
            fitted = LogisticRegression(C=1e6).fit(held_out, y, sample_weight=w)
            weights = fitted.coef_[0]
        est.weights = tuple(float(c) for c in weights)
    weights = np.asarray(getattr(est, "weights", (1.0,)), dtype=float)
    cal = Calibrator(method=calibrator_method(method)).fit(held_out @ weights, y, sample_weight=w)
    return cal.relevel(own @ weights, y, w)


def platt_slope(margin: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Slope of a Platt fit of y on margin (1.0: the margins' scale is already right)."""
    if not 0 < y.sum() < len(y):
        return float("nan")
    fit = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y, sample_weight=w)
    return float(fit.coef_[0, 0])


def selection_summary(
    family: str,
    candidates: dict[str, CandidateResult],
    folds: tuple[Fold, ...],
    settings: Settings,
    trials: int = 0,
) -> dict:
    """What the bundle records about the choice (JSON-ready): LightGBM's settings (tuned when
    `trials`) and each candidate's score and settings."""
    return {
        "family": family,
        "folds": len(folds),
        "lightgbm": {k: getattr(settings.train.model, k) for k in TUNED_PARAMS},
        "tuning_trials": trials,
        "oof_rows": int(sum(len(f.valid) for f in folds)),
        "candidates": {
            f: {
                "oof_log_loss": c.log_loss,
                "oof_roc_auc": c.roc_auc,
                "n_estimators": c.n_estimators,
                "C": c.C,
                "n_knots": c.n_knots,
                "calibration": c.calibration,
            }
            for f, c in candidates.items()
        },
    }


def out_of_fold(frame: pd.DataFrame, target: str, folds: tuple[Fold, ...], has_time: bool):
    """The OOF rows' labels, weights, leads and fold numbers, in fold order."""
    rows = frame.loc[oof_index(list(folds))]
    fold = np.concatenate([np.full(len(f.valid), k) for k, f in enumerate(folds)] or [[]])
    return OutOfFold(
        rows[LABEL_PREFIX + target].to_numpy(float),
        rows["weight"].to_numpy(float),
        rows["lead_id"].to_numpy(),
        fold.astype(int),
        has_time,
    )


def usable(folds: list[Fold], rows: pd.DataFrame, label: str) -> tuple[Fold, ...]:
    """The folds whose training side holds both classes."""
    y = rows[label]
    return tuple(f for f in folds if 0 < y.loc[f.train].sum() < len(f.train))


def folds_for(rows: pd.DataFrame, label: str, settings: Settings) -> tuple[tuple[Fold, ...], bool]:
    """The target's folds and whether they are time-ordered: expanding windows with creation
    times; stratified random folds by lead without, or when fewer than two time-ordered folds
    can be formed (few distinct dates, a class missing from the oldest period), logged."""
    cfg = settings.train
    folds = make_folds(
        rows, label, settings.has_time, cfg.cv_folds, cfg.cv_min_train_share, cfg.seed
    )
    folds = usable(folds, rows, label)
    if settings.has_time and len(folds) < 2:
        log.warning(
            "%s: fewer than two time-ordered folds with both classes in training; model "
            "selection uses stratified random folds by lead",
            label,
        )
        folds = usable(make_folds(rows, label, False, cfg.cv_folds, seed=cfg.seed), rows, label)
        return folds, False
    return folds, settings.has_time


def select_and_fit(
    frame: pd.DataFrame,
    target: str,
    spec: FeatureSpec,
    train_index: pd.Index,
    validation_index: pd.Index,
    settings: Settings,
) -> TargetFit:
    """Choose the family and its settings on folds of `train_index`, fit the evaluation model on
    `train_index` and the shipped model on every labelled row of `frame` (module docstring)."""
    cfg = settings.train
    label = LABEL_PREFIX + target
    train_rows = frame.loc[train_index]
    folds, by_time = folds_for(train_rows, label, settings)
    oof = out_of_fold(frame, target, folds, by_time)
    settings, trials = tune_lightgbm(frame, target, spec, folds, oof, settings)
    candidates = candidates_on_folds(frame, target, spec, folds, oof, settings)
    family = choose(candidates, oof, settings)
    chosen = candidates[family]
    fit_settings = {
        "n_estimators": chosen.n_estimators,
        "C": chosen.C,
        "n_knots": chosen.n_knots,
        "weights": (1.0, 1.0),
    }
    all_rows = frame[frame[label].notna()]
    single = one_thread(settings)
    eval_pipe, ship_pipe = (
        use_threads(pipe, cfg.model.n_jobs)
        for pipe in in_parallel(
            [
                lambda: fit_family(family, train_rows, target, spec, single, **fit_settings),
                lambda: fit_family(family, all_rows, target, spec, single, **fit_settings),
            ],
            cfg.model.n_jobs,
        )
    )
    by_time = by_time and cfg.calibration_level == "newest"
    cal = newest_rows(oof, by_time)
    cal_rows = frame.loc[oof_index(list(folds))[cal], spec.columns]
    eval_cal = calibrate(
        eval_pipe,
        chosen.oof_margin[cal],
        part_margins(eval_pipe, cal_rows),
        oof.y[cal],
        oof.w[cal],
        chosen.calibration,
    )

    val_rows = frame.loc[validation_index]
    _, y_val, w_val = xyw(val_rows, target, spec)
    val_parts = part_margins(eval_pipe, val_rows[spec.columns])
    # one period later: the validation period, reaching back into the OOF rows when it holds
    # too few of a class (without time: every held-out row)
    older = np.zeros(len(oof.y), dtype=bool)
    if not (by_time and enough_of_both(y_val)):
        older = newest_rows(oof, by_time) if by_time else np.ones(len(oof.y), dtype=bool)
    older_rows = frame.loc[oof_index(list(folds))[older], spec.columns]
    held_out = np.vstack([chosen.oof_margin[older], val_parts])
    own = np.vstack(
        [part_margins(ship_pipe, older_rows), part_margins(ship_pipe, val_rows[spec.columns])]
    )
    y_cal, w_cal = np.r_[oof.y[older], y_val], np.r_[oof.w[older], w_val]
    ship_cal = calibrate(ship_pipe, held_out, own, y_cal, w_cal, chosen.calibration)

    def target_model(pipeline, calibrator, rows, **extra) -> TargetModel:
        _, y, w = xyw(rows, target, spec)
        info = TargetInfo(
            best_iteration=chosen.n_estimators if family != LINEAR else None,
            calibration_method=calibrator.method_,
            fit_rows=len(rows),
            family=family,
            linear_C=chosen.C if family != LIGHTGBM else None,
            linear_knots=chosen.n_knots if family != LIGHTGBM else None,
            cv_folds=len(folds),
            selection=selection_summary(family, candidates, folds, settings, len(trials)),
            **extra,
        )
        base_rate = float(np.sum(w * y) / np.sum(w))
        return TargetModel(target, pipeline, calibrator, base_rate, info, family=family)

    evaluation = target_model(eval_pipe, eval_cal, train_rows, calibration_rows=int(cal.sum()))
    shipped = target_model(
        ship_pipe,
        ship_cal,
        all_rows,
        calibration_rows=len(y_cal),
        evaluation_fit_rows=len(train_rows),
    )
    weights = np.asarray(getattr(eval_pipe.steps[-1][1], "weights", (1.0,)), dtype=float)
    ratio = platt_slope(val_parts @ weights, y_val, w_val) / platt_slope(
        chosen.oof_margin[cal] @ weights, oof.y[cal], oof.w[cal]
    )
    return TargetFit(family, evaluation, shipped, candidates, folds, ratio, trials)


def selection_metrics(target: str, fit: TargetFit) -> dict[str, float]:
    """`<target>.cv.<family>.log_loss` / `.roc_auc` (forward-chained OOF) per candidate, the
    chosen number of trees and the calibration slope ratio (module docstring)."""
    out = {}
    for family, c in fit.candidates.items():
        out[f"{target}.cv.{family}.log_loss"] = c.log_loss
        out[f"{target}.cv.{family}.roc_auc"] = c.roc_auc
    n_est = fit.candidates[fit.family].n_estimators
    if n_est is not None and fit.family != LINEAR:
        out[f"{target}.n_estimators"] = float(n_est)
    out[f"{target}.calibration_slope_ratio"] = fit.slope_ratio
    return out


# --- calibration figures -----------------------------------------------------------------------


def max_tie_share(p: np.ndarray) -> float:
    """The largest share of rows that share one probability."""
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return 0.0
    _, counts = np.unique(p, return_counts=True)
    return float(counts.max() / len(p))


def decile_calibration(y, p, w=None, n_bins: int = 10) -> pd.DataFrame:
    """Mean probability and observed rate per decile of probability (equal weight), lowest first."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    order = np.argsort(p, kind="stable")
    mass = np.cumsum(w[order]) / w.sum()
    bins = np.minimum((mass * n_bins - 1e-12).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        idx = order[bins == b]
        if len(idx) == 0:
            continue
        wb = w[idx]
        rows.append(
            {
                "decile": b + 1,
                "rows": len(idx),
                "mean_p": float(np.average(p[idx], weights=wb)),
                "rate": float(np.average(y[idx], weights=wb)),
            }
        )
    return pd.DataFrame(rows)


def calibration_metrics(target: str, y, p, w=None) -> dict[str, float]:
    """`<target>.calibration.decile_<k>.mean_p` / `.rate` and `<target>.max_tie_share`."""
    out = {f"{target}.max_tie_share": max_tie_share(p)}
    if len(np.asarray(y)) == 0:
        return out
    for row in decile_calibration(y, p, w).itertuples():
        out[f"{target}.calibration.decile_{row.decile}.mean_p"] = row.mean_p
        out[f"{target}.calibration.decile_{row.decile}.rate"] = row.rate
    return out
