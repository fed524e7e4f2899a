"""The scoring input on disk: the leads open at a date and their earlier events, spilled by
lead id (`leadscore.data.spill`) so that memory does not grow with the input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from leadscore.config import Settings
from leadscore.data.features import FeatureSpec, to_seconds
from leadscore.data.spill import BucketFiles, spill_events, spill_leads
from leadscore.data.streams import EVENT_BATCH_ROWS, LEAD_BATCH_ROWS, iter_events
from leadscore.scoring.stream import LeadTally, iter_open_leads, iter_parts, track_event_times

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpilledInput:
    """Open leads at `as_of` and their events before it, on disk, ready to be read in parts."""

    as_of: pd.Timestamp
    leads: BucketFiles
    events: BucketFiles | None
    n_open: int
    n_events: int

    def parts(self, settings: Settings, spec: FeatureSpec):
        """The open leads with their activity aggregates, `score.part_size` leads at a time."""
        t = as_of_seconds(self.as_of)
        return iter_parts(
            self.leads, self.events, settings.score.part_size, t, spec, EVENT_BATCH_ROWS
        )


def as_of_seconds(as_of: pd.Timestamp) -> int:
    return int(to_seconds(pd.DatetimeIndex([as_of]))[0])


def spill_open_leads(
    settings: Settings,
    spec: FeatureSpec,
    as_of: pd.Timestamp,
    leads_path: Path | None,
    acts_path: Path | None,
    folder: Path,
    tally: LeadTally,
    leads_read: Callable[[int], None] | None = None,
) -> SpilledInput:
    """Stream the leads file and the event log into `folder`: the leads open at `as_of` and,
    when the model uses activities, their events dated before it. `leads_read(n_open)` is
    called between the two (the scorer times the steps and stops when no lead is open)."""
    batches = iter_open_leads(settings, spec, as_of, leads_path, tally, LEAD_BATCH_ROWS)
    leads, open_hashes = spill_leads(batches, folder)
    n_open = int(leads.counts.sum())
    if leads_read is not None:
        leads_read(n_open)
    events, n_events = None, 0
    if n_open and spec.has_activities and acts_path is not None:
        batches = track_event_times(iter_events(acts_path, settings, EVENT_BATCH_ROWS), tally)
        events, n_events = spill_events(
            batches, open_hashes, spec.activity_types, as_of_seconds(as_of), folder
        )
    del open_hashes
    pa.default_memory_pool().release_unused()
    return SpilledInput(as_of, leads, events, n_open, n_events)
