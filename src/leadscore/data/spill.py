"""Open leads and their events, partitioned by lead id on disk, so that scoring memory does not
grow with the number of leads.

The scorer reads the leads file once, in batches, and writes each open lead into one of
`N_BUCKETS` temporary Parquet files chosen by a hash of its lead id. It then reads the event log
once and writes each event of an open lead, dated before the as-of date, into its lead's bucket.
Buckets are grouped into parts of at most `score.part_size` open leads and each part is scored on
its own: its leads, their activity aggregates and the chunk being explained are all the rows held
in memory. What does grow with the input is 8 bytes per lead: the id hashes that find
duplicate ids in the leads file and pick the events of open leads (`ids.HashSet`), and disk
space for the temporary files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.features import to_seconds
from leadscore.data.ids import HashSet, lead_hashes

N_BUCKETS = 128  # parts stay within score.part_size up to 128 x part_size open leads
EVENT_SCHEMA = pa.schema(
    [("lead_id", pa.string()), ("seconds", pa.int64()), ("type_code", pa.int16())]
)


def bucket_of(hashes: np.ndarray) -> np.ndarray:
    """The bucket of each lead id hash."""
    return (hashes % np.uint64(N_BUCKETS)).astype(np.int64)


def frame_schema(frame: pd.DataFrame, keep_float32: bool = False) -> pa.Schema:
    """A fixed Arrow schema from the frame's dtypes (not its values): every batch of a bucket
    file is written with it, even a batch whose column happens to be all missing. Numbers are
    float64 (`keep_float32`: float32 columns stay float32)."""
    fields = []
    for name, dtype in frame.dtypes.items():
        if keep_float32 and dtype == np.float32:
            kind = pa.float32()
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = pa.timestamp("ns")
        elif pd.api.types.is_bool_dtype(dtype):
            kind = pa.bool_()
        elif pd.api.types.is_numeric_dtype(dtype):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(str(name), kind))
    return pa.schema(fields)


class BucketFiles:
    """One Parquet file per bucket under `folder`, opened when its first rows come."""

    def __init__(self, folder: Path, stem: str, schema: pa.Schema | None = None):
        self.folder = Path(folder)
        self.stem = stem
        self.schema = schema
        self.counts = np.zeros(N_BUCKETS, np.int64)
        self._writers: dict[int, pq.ParquetWriter] = {}

    def path(self, bucket: int) -> Path:
        return self.folder / f"{self.stem}-{bucket:03d}.parquet"

    def write(self, frame: pd.DataFrame, buckets: np.ndarray) -> None:
        """Append each row of `frame` to the file of its bucket (row order kept)."""
        if len(frame) == 0:
            return
        if self.schema is None:
            self.schema = frame_schema(frame)
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        order = np.argsort(buckets, kind="stable")
        starts = np.searchsorted(buckets[order], np.arange(N_BUCKETS + 1))
        for b in np.flatnonzero(np.diff(starts)):
            rows = order[starts[b] : starts[b + 1]]
            if b not in self._writers:
                self._writers[b] = pq.ParquetWriter(self.path(b), self.schema)
            self._writers[b].write_table(table.take(pa.array(rows)))
            self.counts[b] += len(rows)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def read(self, buckets: Iterable[int]) -> pd.DataFrame:
        """The rows of these buckets, bucket by bucket."""
        tables = [pq.read_table(self.path(b)) for b in buckets if self.counts[b] > 0]
        if not tables:
            return self.schema.empty_table().to_pandas() if self.schema else pd.DataFrame()
        return pa.concat_tables(tables).to_pandas()

    def iter_batches(self, buckets: Iterable[int], batch_rows: int) -> Iterator[pd.DataFrame]:
        """The rows of these buckets in batches of at most `batch_rows`."""
        for b in buckets:
            if self.counts[b] > 0:
                for batch in pq.ParquetFile(self.path(b)).iter_batches(batch_size=batch_rows):
                    yield batch.to_pandas()


def group_buckets(counts: np.ndarray, part_size: int) -> list[list[int]]:
    """Consecutive non-empty buckets grouped into parts of at most `part_size` rows (a bucket
    bigger than that is a part alone)."""
    parts: list[list[int]] = []
    current: list[int] = []
    size = 0
    for b in np.flatnonzero(counts):
        n = int(counts[b])
        if current and size + n > part_size:
            parts.append(current)
            current, size = [], 0
        current.append(int(b))
        size += n
    if current:
        parts.append(current)
    return parts


def spill_leads(batches: Iterable[pd.DataFrame], folder: Path) -> tuple[BucketFiles, HashSet]:
    """Write batches of open leads into bucket files; also return the hashes of their ids."""
    files, hashes = BucketFiles(folder, "leads"), HashSet()
    try:
        for leads in batches:
            h = lead_hashes(leads["lead_id"])
            files.write(leads, bucket_of(h))
            hashes.add(h)
    finally:
        files.close()
    return files, hashes


def spill_events(
    batches: Iterable[pd.DataFrame],
    open_leads: HashSet,
    activity_types: tuple[str, ...],
    before_seconds: int,
    folder: Path,
) -> tuple[BucketFiles, int]:
    """Write the events of open leads dated before `before_seconds` into bucket files.

    Events come as frames of (lead_id, occurred_at, activity_type); they are stored as
    (lead_id, seconds, type_code), the code indexing `activity_types` (-1: another type).
    Returns the files and the number of events kept.
    """
    files = BucketFiles(folder, "events", EVENT_SCHEMA)
    types = pd.Index(activity_types)
    kept = 0
    try:
        for events in batches:
            seconds = to_seconds(events["occurred_at"])
            h = lead_hashes(events["lead_id"])
            keep = (seconds < before_seconds) & open_leads.contains(h)
            frame = pd.DataFrame(
                {
                    "lead_id": events["lead_id"].to_numpy()[keep],
                    "seconds": seconds[keep],
                    "type_code": types.get_indexer(events["activity_type"][keep]).astype(np.int16),
                }
            )
            files.write(frame, bucket_of(h[keep]))
            kept += int(keep.sum())
    finally:
        files.close()
    return files, kept
