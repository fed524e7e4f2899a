"""Last week's leads rescored with this week's model, so a trend never compares two models.

When the model changed since the previous run (a retrain was promoted), the leads open at the
previous as-of date are scored again, as they stood then (events before that date, the same
point-in-time features), with the current model; the trend then compares like with like.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from leadscore.config import Settings
from leadscore.modeling.model import LeadScoreModel
from leadscore.scoring.chunks import score_in_chunks
from leadscore.scoring.inputs import spill_open_leads
from leadscore.scoring.stream import LeadTally
from leadscore.scoring.tracking import ModelRef
from leadscore.scoring.trend import (
    CONTRIBUTIONS_PARQUET,
    PREVIOUS_CONTRIBUTIONS,
    PREVIOUS_SCORES,
    SCORES_PARQUET,
    PreviousRun,
    read_previous_run,
)

log = logging.getLogger(__name__)


def rescore_previous(
    settings: Settings,
    bundle: LeadScoreModel,
    ref: ModelRef,
    previous: PreviousRun,
    leads_path: Path | None,
    acts_path: Path | None,
    work_dir: Path,
) -> PreviousRun | None:
    """The previous run's date scored again with `bundle`, read back as a `PreviousRun`.

    Files go to a folder inside `work_dir` (the run's temporary folder). None when no lead was
    open then in today's data.
    """
    log.info(
        f"the model changed since the run of {previous.as_of:%Y-%m-%d} (version "
        f"{previous.model_version or '?'}, now {ref.version or '?'}): rescoring that date with "
        "this model for the trend"
    )
    folder = work_dir / "rescore"
    spill = folder / "spill"
    spill.mkdir(parents=True)
    spilled = spill_open_leads(
        settings, bundle.spec, previous.as_of, leads_path, acts_path, spill, LeadTally()
    )
    if spilled.n_open == 0:
        return None
    out = folder / "out"
    out.mkdir()
    score_in_chunks(
        bundle,
        spilled.parts(settings, bundle.spec),
        spilled.n_open,
        settings,
        previous.as_of,
        ref,
        None,
        out,
        0,
    )
    shutil.move(out / SCORES_PARQUET, out / PREVIOUS_SCORES)
    shutil.move(out / CONTRIBUTIONS_PARQUET, out / PREVIOUS_CONTRIBUTIONS)
    return read_previous_run(out, previous.as_of + pd.Timedelta(days=1), bundle.headline_target)
