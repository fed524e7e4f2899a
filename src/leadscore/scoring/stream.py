"""The scoring input in bounded memory: open leads streamed in batches, then read back in parts.

The leads file is streamed in batches through the data contract (with the sales feedback written
on) and its open leads spilled to disk in buckets by lead id (`leadscore.data.spill`); the events
of those leads are spilled beside them. Each part of at most `score.part_size` open leads is then
read back with its events, folded into activity aggregates (the same counts as training) and cut
into chunks of `score.chunk_size` leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.data.accounts import ACCOUNT_PREFIX
from leadscore.data.contract import drop_leads
from leadscore.data.features import ActivityStats, FeatureSpec, add_events_at, empty_stats
from leadscore.data.snapshots import scoring_snapshots
from leadscore.data.spill import BucketFiles, group_buckets
from leadscore.data.streams import EVENT_BATCH_ROWS, LEAD_BATCH_ROWS, ProblemLog, iter_lead_batches
from leadscore.feedback.apply import apply_feedback
from leadscore.feedback.store import read_store
from leadscore.scoring.predict import check_shown_columns

Part = tuple[pd.DataFrame, ActivityStats | None]


LEAD_TIME_COLUMNS = ("created_at", "meeting_at", "won_at", "lost_at")


@dataclass
class LeadTally:
    """What reading the input left out and how recent it is, counted while it streams."""

    n_skipped: int = 0  # not open at the as-of date
    n_dropped: int = 0  # rows with problems, when the config drops them
    n_feedback: int = 0  # sales feedback outcomes applied
    data_through: pd.Timestamp | None = None  # newest timestamp in the leads and events read

    def see_times(self, frame: pd.DataFrame, columns: Iterable[str]) -> None:
        """Move `data_through` on to the newest timestamp in these columns of `frame`."""
        for col in columns:
            if col in frame and len(frame):
                newest = frame[col].max()
                if pd.notna(newest) and (self.data_through is None or newest > self.data_through):
                    self.data_through = pd.Timestamp(newest)


def track_event_times(batches: Iterable[pd.DataFrame], tally: LeadTally) -> Iterator[pd.DataFrame]:
    """Pass event batches on unchanged, keeping `tally.data_through` up to date."""
    for batch in batches:
        tally.see_times(batch, ("occurred_at",))
        yield batch


def lead_sources(settings: Settings, leads_path: Path | None) -> dict[str, str]:
    """The files the leads come from (for the manifest)."""
    out = {"leads": str(leads_path or settings.data.leads)}
    if leads_path is None and settings.data.outcomes is not None:
        out["outcomes"] = str(settings.data.outcomes)
    return out


def scoring_settings(settings: Settings, spec: FeatureSpec) -> Settings:
    """Settings that read a leads file with exactly the model's attribute columns."""

    def own(names: tuple[str, ...]) -> list[str]:  # account attributes are joined on later
        return [c for c in names if not c.startswith(ACCOUNT_PREFIX)]

    columns = settings.columns.model_copy(
        update={"categorical": own(spec.categorical), "numeric": own(spec.numeric)}
    )
    return settings.model_copy(
        update={
            "columns": columns,
            "data": settings.data.model_copy(update={"activities": None}),
        }
    )


def iter_open_leads(
    settings: Settings,
    spec: FeatureSpec,
    as_of: pd.Timestamp,
    leads_path: Path | None,
    tally: LeadTally,
    batch_rows: int = LEAD_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """Stream the leads file in batches; yield each batch's leads open at `as_of` (snapshots).

    Each batch goes through the data contract and gets the outcomes sales reported (feedback
    store) written on, so a lead sales already met, won, lost or disqualified is not scored.
    Problems are collected over the whole file and raised together at its end
    (`ContractError`), unless the config says to drop bad rows; `tally` counts what was left out.
    The display and owner columns (`columns.shown`) come along as text.
    """
    check_shown_columns(settings)
    with_outcomes = leads_path is None and settings.data.outcomes is not None
    history = read_store(settings.data.feedback)
    drop = settings.validation.drop_invalid_rows
    log = ProblemLog(str(leads_path or settings.data.leads))
    bad_ids: set[str] = set()
    batches = iter_lead_batches(
        scoring_settings(settings, spec), leads_path, with_outcomes, batch_rows
    )
    for leads, found in batches:
        log.add(found)
        if log.problems and not drop:
            continue  # keep reading to report every problem, but pass no more rows on
        if drop:
            bad_ids.update(p.lead_id for p in found if p.lead_id is not None)
            kept = drop_leads(leads, bad_ids)
            tally.n_dropped += len(leads) - len(kept)
            leads = kept
        tally.see_times(leads, LEAD_TIME_COLUMNS)
        if not history.empty:
            leads, counts = apply_feedback(leads, history)
            tally.n_feedback += counts.applied
        snaps, skipped = scoring_snapshots(leads, as_of)
        tally.n_skipped += skipped
        yield snaps
    if not drop:
        log.raise_if_any()


def part_activity_stats(
    events: BucketFiles,
    buckets: list[int],
    lead_index: pd.Index,
    t: int,
    spec: FeatureSpec,
    batch_rows: int = EVENT_BATCH_ROWS,
) -> ActivityStats:
    """Aggregates at `t` for one part's leads, from the events spilled into its buckets."""
    stats = empty_stats(len(lead_index), spec)
    for ev in events.iter_batches(buckets, batch_rows):
        rows = lead_index.get_indexer(ev["lead_id"])
        kinds = ev["type_code"].to_numpy(np.int64)
        add_events_at(stats, t, rows, kinds, ev["seconds"].to_numpy(np.int64), spec)
    return stats


def iter_parts(
    leads: BucketFiles,
    events: BucketFiles | None,
    part_size: int,
    t: int,
    spec: FeatureSpec,
    batch_rows: int = EVENT_BATCH_ROWS,
) -> Iterator[Part]:
    """Each part's open leads and their activity aggregates, one part in memory at a time."""
    for buckets in group_buckets(leads.counts, part_size):
        snaps = leads.read(buckets)
        stats = None
        if spec.has_activities:
            index = pd.Index(snaps["lead_id"])
            stats = (
                part_activity_stats(events, buckets, index, t, spec, batch_rows)
                if events is not None
                else empty_stats(len(snaps), spec)
            )
        yield snaps, stats


def iter_chunks(
    parts: Iterable[Part], size: int
) -> Iterator[tuple[int, pd.DataFrame, ActivityStats | None]]:
    """Chunks of at most `size` leads over all parts, each with its first row's number."""
    done = 0
    for snaps, stats in parts:
        for start in range(0, len(snaps), size):
            rows = slice(start, min(start + size, len(snaps)))
            part = snaps.iloc[rows].reset_index(drop=True)
            part_stats = (
                ActivityStats(stats.counts[rows], stats.last_seconds[rows])
                if stats is not None
                else None
            )
            yield done + start, part, part_stats
        done += len(snaps)
