"""The score history: one entry per as-of date, replaced by a rerun, pruned to `history_keep`."""

from __future__ import annotations

import pandas as pd

from leadscore.config import settings_from_dict
from leadscore.data.io import write_text
from leadscore.scoring.history import history_entries, keep_in_history


def settings(**score):
    return settings_from_dict({"data": {"leads": "leads.csv"}, "score": score})


def write_run(out, as_of: str, body: str = "") -> None:
    """Stand-ins for a run's outputs, written as the scorer writes them (atomic replace)."""
    write_text(out / "scores.parquet", f"scores {as_of} {body}")
    write_text(out / "manifest.json", f'{{"as_of": "{as_of}"}}')
    write_text(out / "report.html", "not kept")


def test_each_run_is_kept_under_its_as_of_date(tmp_path):
    out = tmp_path / "scores"
    for day in ("2026-05-01", "2026-05-08"):
        write_run(out, day)
        entry = keep_in_history(out, pd.Timestamp(day), settings())
        assert entry == out / "history" / f"as_of={day}"
    entries = history_entries(out / "history")
    assert [f"{d:%Y-%m-%d}" for d, _ in entries] == ["2026-05-01", "2026-05-08"]
    first = entries[0][1]
    assert sorted(p.name for p in first.iterdir()) == ["manifest.json", "scores.parquet"]
    # the output folder now holds the later run; the entry still holds its own scores
    assert (first / "scores.parquet").read_text() == "scores 2026-05-01 "


def test_a_rerun_of_the_same_date_replaces_its_entry(tmp_path):
    out = tmp_path / "scores"
    write_run(out, "2026-05-01", "first")
    keep_in_history(out, pd.Timestamp("2026-05-01"), settings())
    write_run(out, "2026-05-01", "rerun")
    entry = keep_in_history(out, pd.Timestamp("2026-05-01"), settings())
    assert (entry / "scores.parquet").read_text() == "scores 2026-05-01 rerun"
    assert [p.name for p in (out / "history").iterdir()] == ["as_of=2026-05-01"]


def test_only_the_newest_dates_are_kept(tmp_path):
    out = tmp_path / "scores"
    for day in ("2026-05-15", "2026-05-01", "2026-05-08"):
        write_run(out, day)
        keep_in_history(out, pd.Timestamp(day), settings(history_keep=2))
    days = [f"{d:%Y-%m-%d}" for d, _ in history_entries(out / "history")]
    assert days == ["2026-05-08", "2026-05-15"]


def test_history_elsewhere_or_off(tmp_path):
    out = tmp_path / "scores"
    write_run(out, "2026-05-01")
    elsewhere = tmp_path / "kept"
    entry = keep_in_history(out, pd.Timestamp("2026-05-01"), settings(history=str(elsewhere)))
    assert entry == elsewhere / "as_of=2026-05-01"
    assert keep_in_history(out, pd.Timestamp("2026-05-01"), settings(history_keep=0)) is None
    assert not (out / "history").exists()
