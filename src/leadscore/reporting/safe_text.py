"""Spreadsheet-safe text: the formula guard on every text cell we write, and its exact inverse.

Every *text* cell written to CSV or XLSX goes through `safe_text`, which puts an apostrophe in
front of text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP's
CSV-injection advice), so no spreadsheet treats a lead's data as a formula. Numbers stay
numbers. `restore_text` undoes it exactly (for reading our own files back).
"""

from __future__ import annotations

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
RISKY_START = r"^'?[=+\-@\t\r]"  # a formula prefix, or ESCAPE and then one (`_starts_risky`)


def _is_text_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _strings(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as object values and a mask of the values that are ``str``."""
    text = series.astype(object)
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        return text, series.notna().astype(bool)
    return text, text.map(type).eq(str)


def _starts_risky(text: pd.Series) -> pd.Series:
    """Text starting with a formula character, or with ``'`` and then one."""
    first, second = text.str[:1], text.str[1:2]
    return first.isin(FORMULA_PREFIXES) | (first.eq(ESCAPE) & second.isin(FORMULA_PREFIXES))


def safe_text(series: pd.Series) -> pd.Series:
    """Neutralise spreadsheet formulas in a text column (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``;
    so does text that already starts with ``'`` followed by one of those, which makes
    `restore_text` an exact inverse. Non-text values (numbers, booleans, dates, missing) and
    numeric columns are returned unchanged; categorical columns come back as object.
    """
    if not _is_text_dtype(series):
        return series
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if not pd.api.types.is_object_dtype(series.dtype):  # a string dtype: vectorised
        risky = series.str.contains(RISKY_START, regex=True).fillna(False).astype(bool)
        if not risky.any():
            return series
        out = series.copy()
        out[risky] = ESCAPE + series[risky]
        return out
    text, is_str = _strings(series)
    risky = is_str & _starts_risky(text.where(is_str))
    if not risky.any():
        return series
    out = series.copy()
    out[risky] = ESCAPE + text[risky].astype(str)
    return out


def restore_text(series: pd.Series) -> pd.Series:
    """Undo `safe_text`: drop the ``'`` it added (for reading our own files back)."""
    if not _is_text_dtype(series):
        return series
    text, is_str = _strings(series)
    text = text.where(is_str)
    rest = text.str[1:]
    added = is_str & text.str[:1].eq(ESCAPE) & _starts_risky(rest)
    if not added.any():
        return series
    out = series.copy()
    out[added] = rest[added]
    return out


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with `safe_text` applied to every text column (numbers untouched)."""
    out = frame.copy()
    for col in frame.columns:
        if _is_text_dtype(frame[col]):
            out[col] = safe_text(frame[col])
    return out
