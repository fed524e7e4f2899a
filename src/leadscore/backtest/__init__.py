"""Backtests: how the scores of weeks ago turned out, per grade, once the outcomes are known.

`outcomes` reads scored cohorts (a scoring output folder or its history) and what happened to
their leads since; `card` sums each cohort up per grade (realized and expected rates, share of
conversions, lift, ranking and calibration) as `backtest.json`; `html` writes the report card a
sales manager reads; `run` orders the steps and logs the MLflow backtest run.
"""
