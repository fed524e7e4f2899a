"""The score history: each scoring run also keeps its scores and manifest, one folder per date.

An entry is `<history>/as_of=YYYY-MM-DD/` holding the run's `scores.parquet` and `manifest.json`
(`score.history`, default a `history` folder inside the run's output folder). A rerun for the
same as-of date replaces its entry whole (built beside it, then renamed into place); only the
`score.history_keep` newest as-of dates are kept. Files are hard-linked where the file system
allows (the run's outputs are always replaced by a rename, never rewritten in place, so an
entry keeps its own copy of the bytes), else copied.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from leadscore.config import Settings
from leadscore.scoring.trend import SCORES_PARQUET

log = logging.getLogger(__name__)

HISTORY_DIR = "history"
ENTRY_PREFIX = "as_of="
MANIFEST_JSON = "manifest.json"  # the run's manifest (scoring.run writes it)
KEPT_FILES: tuple[str, ...] = (SCORES_PARQUET, MANIFEST_JSON)


def history_folder(out_dir: Path, settings: Settings) -> Path:
    """Where the runs written to `out_dir` keep their history."""
    configured = settings.score.history
    return Path(configured) if configured is not None else Path(out_dir) / HISTORY_DIR


def entry_name(as_of: pd.Timestamp) -> str:
    return f"{ENTRY_PREFIX}{pd.Timestamp(as_of):%Y-%m-%d}"


def history_entries(folder: Path) -> list[tuple[pd.Timestamp, Path]]:
    """The history's entries, oldest as-of date first (folders named `as_of=YYYY-MM-DD`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        if not path.is_dir() or not path.name.startswith(ENTRY_PREFIX):
            continue
        try:
            as_of = pd.Timestamp(path.name.removeprefix(ENTRY_PREFIX))
        except ValueError:
            continue
        out.append((as_of, path))
    return sorted(out)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _replace_folder(new: Path, target: Path) -> None:
    """Put the finished folder `new` at `target`, replacing what was there."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def prune_history(folder: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest entries; return the removed folders."""
    entries = history_entries(folder)
    removed = [path for _, path in entries[: max(len(entries) - keep, 0)]]
    for path in removed:
        shutil.rmtree(path)
    return removed


def keep_in_history(out_dir: Path, as_of: pd.Timestamp, settings: Settings) -> Path | None:
    """Keep the run just written to `out_dir` in the history; return its entry (None when
    `score.history_keep` is 0). Call after the run's outputs are written."""
    keep = settings.score.history_keep
    if keep == 0:
        return None
    folder = history_folder(out_dir, settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry_name(as_of)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=folder))
    try:
        for name in KEPT_FILES:
            source = Path(out_dir) / name
            if source.is_file():
                _link_or_copy(source, building / name)
        _replace_folder(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    removed = prune_history(folder, keep)
    pruned = f" ({len(removed)} older as-of date(s) removed)" if removed else ""
    log.info(f"scores kept in the history: {target}{pruned}")
    return target
