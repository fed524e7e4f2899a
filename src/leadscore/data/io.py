"""Reading tables and writing files atomically: data I/O stays at the edges, here."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.errors import DataFileError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
# Arrow's streaming CSV reader holds several blocks at once: with 2 MB blocks it keeps under
# 0.1 GiB, with 8 MB about 0.3 GiB and with 64 MB about 0.9 GiB, at the same speed (measured on
# the 2.3 GB event log of the 1M-open-leads benchmark). A row must fit in one block.
CSV_STREAM_BLOCK = 2 << 20


def table_format(path: Path) -> str:
    """'csv' or 'parquet', from the file name."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataFileError(f"{path}: unknown file type (expected .csv or .parquet)")


def _read_csv_text(path: Path, columns: list[str] | None, categorical: list[str]) -> pd.DataFrame:
    """All columns as text (empty cell = missing), through Arrow's multi-threaded reader.

    Columns in `categorical` come back as pandas categoricals (compact for ids repeated over
    millions of events). Files Arrow cannot decode (e.g. not UTF-8) go through pandas instead.
    """
    if path.stat().st_size == 0:
        raise pd.errors.EmptyDataError("empty file")
    names = columns if columns is not None else table_columns(path)
    options = pacsv.ConvertOptions(
        include_columns=names,
        column_types={c: pa.string() for c in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid as exc:
        if not _is_encoding_error(exc):
            raise
        frame = read_csv_text(path, columns)
        return frame.astype({c: "category" for c in categorical})
    for col in categorical:
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, table.column(col).dictionary_encode())
    return table.to_pandas()


def _is_encoding_error(exc: Exception) -> bool:
    return "UTF8" in str(exc).upper().replace("-", "")


def read_csv_text(path: Path, columns: list[str] | None = None, **options):
    """A CSV file through pandas, every value as text (empty cell = missing) and undecodable
    bytes replaced; `options` go to `pandas.read_csv`."""
    return pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        usecols=columns,
        encoding_errors="replace",
        **options,
    )


def read_table(
    path: str | Path, columns: list[str] | None = None, categorical: list[str] | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file; every CSV column comes in as text so the contract can parse it.

    Raises `DataFileError` naming the file when it is missing, empty or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path, columns=columns)
        else:
            frame = _read_csv_text(path, columns, categorical or [])
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{path}: the file is empty") from exc
    except (ValueError, pa.ArrowInvalid) as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from exc
    if frame.empty:
        raise DataFileError(f"{path}: the file has a header but no rows")
    return frame


def table_columns(path: str | Path) -> list[str]:
    """Column names of a table without reading its rows."""
    path = Path(path)
    if table_format(path) == "parquet":
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """Stable digest of a frame's content (values and column names)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h = hashlib.sha256(hashed.tobytes())
    h.update("\x1f".join(map(str, frame.columns)).encode())
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: str | Path, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_parquet(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write a frame to Parquet atomically, without the index and with deterministic bytes."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return Path(target)


def write_csv(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write a frame to CSV atomically (fast path through Arrow), without the index."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pacsv.write_csv(table, tmp)
    return Path(target)


def iter_table_batches(
    path: str | Path, columns: list[str], batch_rows: int = 1_000_000
) -> Iterator[pd.DataFrame]:
    """Stream a CSV or Parquet file in batches of about `batch_rows` rows (CSV values as text).

    Raises `DataFileError` naming the file when it is missing, lacks a column or cannot be
    parsed. CSV files Arrow cannot decode (not UTF-8) are read on through pandas instead.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if table_format(path) == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()
        return
    missing = [c for c in columns if c not in table_columns(path)]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {', '.join(map(repr, missing))}")
    done = 0
    try:
        for frame in _iter_csv_arrow(path, columns, batch_rows):
            yield frame
            done += len(frame)
    except pa.ArrowInvalid as exc:
        if not _is_encoding_error(exc):
            raise DataFileError(f"{path}: cannot read: {exc}") from exc
        chunks = read_csv_text(path, columns, skiprows=range(1, done + 1), chunksize=batch_rows)
        for chunk in chunks:
            yield chunk[columns].reset_index(drop=True)


def _iter_csv_arrow(path: Path, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    options = pacsv.ConvertOptions(
        include_columns=columns,
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=CSV_STREAM_BLOCK), convert_options=options
    )
    pending: list[pa.RecordBatch] = []
    rows = 0
    pool = pa.default_memory_pool()
    for batch in reader:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= batch_rows:
            yield pa.Table.from_batches(pending).to_pandas()
            pending, rows = [], 0
            pool.release_unused()  # hand freed batches back to the system between batches
    if pending:
        yield pa.Table.from_batches(pending).to_pandas()
