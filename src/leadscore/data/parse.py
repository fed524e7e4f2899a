"""Cell parsing shared by the data contract, the feedback reader and the sample: timestamps,
numbers, yes/no flags and text, each leaving unparseable cells missing for the caller to report."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TRUE_WORDS = frozenset({"1", "1.0", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"0", "0.0", "false", "no", "n", "f"})


def problem_value(value: object) -> object:
    """A cell value for a `Problem`: missing as None, numpy scalars as Python, times as text."""
    if value is None or pd.isna(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return str(value)
    return value


def nonblank_text(raw: pd.Series) -> pd.Series:
    """Trimmed text; empty or blank cells are missing (a blank cell in a sheet is no value)."""
    text = raw.astype("string").str.strip()
    return text.mask(text == "")


def utc_naive(ts: pd.Timestamp | str | dt.datetime) -> pd.Timestamp:
    """A timestamp as naive UTC (aware ones are converted, naive ones taken as UTC)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


FAST_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """Parse text or datetimes to naive UTC `datetime64[ns]`; unparseable values become NaT.

    The common ISO layouts go through Arrow's vectorised `strptime` (millions of rows in about a
    second); anything else (time zones, fractions, other layouts) falls back to pandas.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        out = raw.dt.tz_convert("UTC").dt.tz_localize(None) if raw.dt.tz is not None else raw
        return out.astype("datetime64[ns]")
    text = (
        pa.array(
            strip_text(raw).astype("string").to_numpy(dtype=object, na_value=None),
            type=pa.string(),
        )
        if isinstance(raw.dtype, pd.CategoricalDtype)
        else None
    )
    if text is None:
        text = pc.utf8_trim_whitespace(pa.array(raw.astype("string"), type=pa.string()))
    parsed = pa.nulls(len(text), pa.timestamp("s"))
    for fmt in FAST_TIME_FORMATS:
        parsed = pc.coalesce(parsed, pc.strptime(text, fmt, unit="s", error_is_null=True))
    out = pd.Series(parsed.to_numpy(zero_copy_only=False).astype("datetime64[ns]"), index=raw.index)
    rest = out.isna().to_numpy() & pc.is_valid(text).to_numpy(zero_copy_only=False)
    if rest.any():
        leftover = pd.Series(text.filter(pa.array(rest)).to_pylist(), dtype="string")
        slow = pd.to_datetime(leftover, errors="coerce", format="ISO8601", utc=True)
        retry = slow.isna()
        if retry.any():
            slow[retry] = pd.to_datetime(leftover[retry], errors="coerce", format="mixed", utc=True)
        out[rest] = slow.dt.tz_localize(None).astype("datetime64[ns]").to_numpy()
    return out


def strip_text(raw: pd.Series) -> pd.Series:
    """Text with surrounding white space removed; categoricals are cleaned on their levels only.

    White space alone becomes "" (not missing), as in the rest of the contract's reads."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        levels = raw.cat.categories.astype("string").str.strip()
        if levels.is_unique:
            return raw.cat.rename_categories(levels)
    return raw.astype("string").str.strip()


def parse_numbers(raw: pd.Series) -> pd.Series:
    """Parse text to float; unparseable values become NaN."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    return pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").astype("float64")


def parse_flags(raw: pd.Series) -> pd.Series:
    """Parse 1/0, true/false, yes/no to a float 1.0/0.0; other values become NaN."""
    text = raw.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=raw.index, dtype="float64")
    out[text.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = 1.0
    out[text.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = 0.0
    return out
