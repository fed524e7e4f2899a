"""Ingesting sales feedback: validation with row numbers, an append-only idempotent store."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

import leadscore.feedback.store as fb
from leadscore.config import settings_from_dict
from leadscore.errors import FeedbackError
from leadscore.feedback.apply import current_feedback
from leadscore.feedback.store import ingest_feedback, part_files, read_store

NOW = pd.Timestamp("2026-02-01")
LEADS = pd.Series([f"L{i}" for i in range(1, 21)])


def settings_for(tmp_path: Path, leads_csv: str | None = None):
    leads = tmp_path / "leads.csv"
    if leads_csv is not None:
        leads.write_text(leads_csv)
    return settings_from_dict({"data": {"leads": str(leads), "feedback": str(tmp_path / "store")}})


def write_csv(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(["lead_id,outcome,date,rep,note", *lines]) + "\n")
    return path


def ingest(settings, *files: Path, **kwargs):
    return ingest_feedback(settings, list(files), now=NOW, lead_ids=LEADS, **kwargs)


def part_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in part_files(folder)}


def test_same_file_twice_adds_nothing(tmp_path):
    settings = settings_for(tmp_path)
    path = write_csv(
        tmp_path,
        "fb.csv",
        ["L1,meeting_held,2026-01-05,Ann,intro", "L2,won,2026-01-06,,", "L3,lost,2026-01-07,Bo,"],
    )
    first = ingest(settings, path)
    assert first.line() == "feedback: 3 new, 0 already stored, 0 rejected"
    before = part_bytes(settings.data.feedback)
    assert len(before) == 1
    second = ingest(settings, path)
    assert second.line() == "feedback: 0 new, 3 already stored, 0 rejected"
    assert second.parts == () and part_bytes(settings.data.feedback) == before
    store = read_store(settings.data.feedback)
    assert store["source_row"].tolist() == [2, 3, 4]
    assert store["source_file"].unique().tolist() == ["fb.csv"]
    assert store["source_digest"].str.len().unique().tolist() == [64]
    assert store.loc[0, "rep"] == "Ann" and pd.isna(store.loc[1, "rep"])
    assert store["explore"].isna().all() and store["explore"].dtype == "boolean"


def test_rejected_rows_are_reported_and_valid_rows_kept(tmp_path):
    settings = settings_for(tmp_path)
    path = write_csv(
        tmp_path,
        "fb.csv",
        [
            "L1, Meeting Held ,2026-01-05,,",  # row 2: fine
            "L99,won,2026-01-06,,",  # row 3: unknown lead
            "L2,maybe,2026-01-06,,",  # row 4: unknown outcome
            "",  # row 5: blank, skipped
            "L3,won,2026-13-45,,",  # row 6: unparseable date
            "L4,won,,,",  # row 7: missing date
            "L5,won,2026-02-02,,",  # row 8: future
            "L6,won,2026-01-10,,",  # row 9: contradiction with row 10
            "L6,disqualified,2026-01-11,,",  # row 10
            "L7,lost,2026-02-01 23:00,,",  # row 11: today is not the future
        ],
    )
    summary = ingest(settings, path)
    assert summary.line() == "feedback: 2 new, 0 already stored, 7 rejected"
    found = [(p.row, p.column, p.message.split(" (")[0]) for p in summary.problems]
    assert found == [
        (3, "lead_id", "unknown lead id"),
        (4, "outcome", "unknown outcome"),
        (6, "date", "unparseable date"),
        (7, "date", "missing date"),
        (8, "date", "date is in the future"),
        (9, "outcome", "conflicting feedback for lead L6 in this file"),
        (10, "outcome", "conflicting feedback for lead L6 in this file"),
    ]
    assert all(p.file == str(path) for p in summary.problems)
    assert "won on 2026-01-10 in row 9; disqualified on 2026-01-11 in row 10" in str(
        summary.problems[-1]
    )
    store = read_store(settings.data.feedback)
    assert store[["lead_id", "outcome", "source_row"]].values.tolist() == [
        ["L1", "meeting_held", 2],
        ["L7", "lost", 11],
    ]
    again = ingest(settings, path)
    assert again.line() == "feedback: 0 new, 2 already stored, 7 rejected"


def test_repeated_row_in_one_file_is_rejected_as_duplicate(tmp_path):
    settings = settings_for(tmp_path)
    path = write_csv(tmp_path, "fb.csv", ["L1,won,2026-01-05,,", "L1,WON,2026-01-05,,"])
    summary = ingest(settings, path)
    assert summary.line() == "feedback: 1 new, 0 already stored, 1 rejected"
    (problem,) = summary.problems
    assert problem.row == 3 and "repeats row 2" in problem.message


def test_later_file_supersedes_and_history_is_kept(tmp_path):
    settings = settings_for(tmp_path)
    week1 = write_csv(
        tmp_path, "week1.csv", ["L1,meeting_held,2026-01-05,,", "L1,won,2026-01-20,,"]
    )
    week2 = write_csv(tmp_path, "week2.csv", ["L1,lost,2026-01-25,,", "L2,won,2026-01-26,,"])
    ingest(settings, week1)
    ingest(settings, week2)
    history = read_store(settings.data.feedback)
    assert history["outcome"].tolist() == ["meeting_held", "won", "lost", "won"]
    assert history["ingested_at"].is_monotonic_increasing
    current = current_feedback(history)
    assert current[["lead_id", "stage", "outcome"]].values.tolist() == [
        ["L1", "close", "lost"],
        ["L1", "meeting", "meeting_held"],
        ["L2", "close", "won"],
    ]
    # re-ingesting the older file changes nothing: it is already stored, "lost" stays current
    assert ingest(settings, week1).new == 0
    assert len(read_store(settings.data.feedback)) == 4


def test_interrupted_ingest_leaves_a_complete_store_and_a_rerun_finishes(tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    lines = [f"L{i},meeting_held,2026-01-{i:02d},," for i in range(1, 8)]
    path = write_csv(tmp_path, "fb.csv", lines)
    real_write = fb.write_part
    calls = []

    def crash_after_first(frame, target):
        calls.append(target)
        if len(calls) > 1:
            raise KeyboardInterrupt("power cut")
        return real_write(frame, target)

    monkeypatch.setattr(fb, "write_part", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        ingest(settings, path, batch_rows=3)
    folder = Path(settings.data.feedback)
    (folder / ".part-20260101T000000000000Z-abc-00001.parquet.x1y2.tmp").write_bytes(b"junk")
    partial = read_store(folder)
    assert partial["source_row"].tolist() == [2, 3, 4]

    monkeypatch.setattr(fb, "write_part", real_write)
    summary = ingest(settings, path, batch_rows=3)
    assert summary.line() == "feedback: 4 new, 3 already stored, 0 rejected"
    assert len(summary.parts) == 2  # 3 + 1 rows
    store = read_store(folder)
    assert store["source_row"].tolist() == list(range(2, 9))
    assert not store.duplicated(["source_digest", "source_row"]).any()


def report_xlsx(path: Path, explore: bool = True) -> Path:
    book = Workbook()
    book.active.title = "Summary"
    sheet = book.create_sheet("Scores")
    sheet.append(["Lead scores for week 5"])  # a title row above the header
    header = ["Rank", "Lead", "Score", "Sales feedback", "Feedback date"]
    sheet.append(header + (["Explore"] if explore else []))
    rows = [
        [1, "L1", 91, "Won", pd.Timestamp("2026-01-10").to_pydatetime(), "no"],  # row 3
        [2, "L2", 80, None, None, "no"],  # row 4: no feedback, ignored
        [3, "L3", 75, "meeting_held", "2026-01-12", True],  # row 5
        [4, "L4", 60, "lost", None, "FALSE"],  # row 6: missing date
        [5, 7, 50, "disqualified", "2026-01-15", "yes"],  # row 7: numeric id, unknown
        [6, "L6", 40, None, "2026-01-15", "no"],  # row 8: date without feedback
        [7, "L8", 30, "disqualified", "2026-03-01", "no"],  # row 9: future
    ]
    for row in rows:
        sheet.append(row if explore else row[:-1])
    book.save(path)
    return path


def test_xlsx_report_is_read_with_sheet_row_numbers(tmp_path):
    settings = settings_for(tmp_path)
    path = report_xlsx(tmp_path / "report.xlsx")
    summary = ingest(settings, path)
    assert summary.line() == "feedback: 2 new, 0 already stored, 3 rejected"
    assert [(p.row, p.column, p.message) for p in summary.problems] == [
        (6, "Feedback date", "missing date"),
        (7, "Lead", "unknown lead id"),
        (9, "Feedback date", "date is in the future (after 2026-02-01)"),
    ]
    assert summary.problems[1].value == "7"
    assert [(w.row, w.column) for w in summary.warnings] == [(8, "Feedback date")]
    store = read_store(settings.data.feedback)
    assert store[["lead_id", "outcome", "source_row"]].values.tolist() == [
        ["L1", "won", 3],
        ["L3", "meeting_held", 5],
    ]
    assert store["date"].tolist() == [pd.Timestamp("2026-01-10"), pd.Timestamp("2026-01-12")]
    assert store["explore"].tolist() == [False, True]
    assert ingest(settings, path).line() == "feedback: 0 new, 2 already stored, 3 rejected"


def test_xlsx_without_explore_column_and_bad_layouts(tmp_path):
    settings = settings_for(tmp_path)
    good = report_xlsx(tmp_path / "plain.xlsx", explore=False)
    book = Workbook()
    book.active.title = "Other"
    book.save(tmp_path / "nosheet.xlsx")
    missing = write_csv(tmp_path, "x.csv", [])
    missing.write_text("lead,when\nL1,2026-01-01\n")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    summary = ingest(
        settings,
        good,
        tmp_path / "nosheet.xlsx",
        missing,
        tmp_path / "gone.csv",
        tmp_path / "a.pdf",
    )
    assert summary.files == 5 and summary.readable_files == 1
    assert summary.new == 2 and read_store(settings.data.feedback)["explore"].isna().all()
    messages = [str(p) for p in summary.problems if p.row is None]
    assert any("nosheet.xlsx" in m and "no sheet named 'Scores'" in m for m in messages)
    assert any("x.csv" in m and "'outcome'" in m and "missing column" in m for m in messages)
    assert any("gone.csv" in m and "file not found" in m for m in messages)
    assert any("a.pdf" in m and "unknown file type" in m for m in messages)
    nothing = ingest(settings, tmp_path / "gone.csv")
    assert nothing.readable_files == 0


def test_lead_ids_default_to_the_configured_leads_file(tmp_path):
    settings = settings_for(tmp_path, "lead_id,created_at\nA1,2025-01-01\nA2,2025-01-02\n")
    path = write_csv(tmp_path, "fb.csv", ["A1,won,2026-01-05,,", "L1,won,2026-01-05,,"])
    summary = ingest_feedback(settings, [path], now=NOW)
    assert summary.line() == "feedback: 1 new, 0 already stored, 1 rejected"
    assert summary.problems[0].row == 3


def test_unreadable_part_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "part-20260101T000000000000Z-abc-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(FeedbackError, match=r"part-20260101T000000000000Z-abc-00000\.parquet"):
        read_store(folder)


def test_report_drop_down_offers_exactly_what_leadscore_feedback_accepts(tmp_path):
    """The outcomes in the report's "Sales feedback" drop-down, read from the xlsx itself, are
    each accepted by `leadscore feedback`, and its error for anything else lists the same ones."""
    import yaml
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from leadscore.cli import app
    from leadscore.data.schema import SHEET_SCORES
    from leadscore.reporting.summary import ReportContext
    from leadscore.reporting.xlsx import write_report_xlsx

    n = 7
    ids = [f"L{i}" for i in range(1, n + 1)]
    scores = pd.DataFrame(
        {
            "lead_id": ids,
            "p_won": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01],
            "score": [90, 80, 70, 60, 50, 40, 30],
            "grade": ["A", "A", "B", "B", "C", "D", "D"],
        }
    )
    report = write_report_xlsx(scores, tmp_path / "report.xlsx", ReportContext())
    book = load_workbook(report)
    ws = book[SHEET_SCORES]
    header = [c.value for c in ws[1]]
    outcome_col = header.index("Sales feedback") + 1
    (drop_down,) = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    letter = ws.cell(row=1, column=outcome_col).column_letter
    assert str(drop_down.sqref) == f"{letter}2:{letter}{n + 1}"
    offered = drop_down.formula1.strip('"').split(",")
    assert len(offered) == len(set(offered)) >= 1 and len(offered) < n
    filled = [*offered, "not_an_outcome"]  # one lead each, the last one with a made-up outcome
    for row, outcome in enumerate(filled, start=2):
        ws.cell(row, outcome_col, outcome)
        ws.cell(row, outcome_col + 1, "2025-06-02")
    book.save(report)

    (tmp_path / "leads.csv").write_text(
        "lead_id,created_at\n" + "".join(f"{i},2025-01-01\n" for i in ids)
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"data": {"leads": str(tmp_path / "leads.csv"), "feedback": str(tmp_path / "store")}}
        )
    )
    result = CliRunner().invoke(app, ["feedback", str(report), "-c", str(config)])
    assert result.exit_code == 0, result.output
    notes = "2 not used as labels: no_response 1, score_wrong 1"
    assert f"feedback: {len(offered)} new ({notes}), 0 already stored, 1 rejected" in result.output
    stored = read_store(tmp_path / "store")
    assert sorted(stored["outcome"]) == sorted(offered)
    summary = ingest_feedback(settings_for(tmp_path), [report], now=NOW, lead_ids=pd.Series(ids))
    (problem,) = summary.problems
    assert problem.value == "not_an_outcome"
    expected = re.search(r"expected one of ([^)]*)\)", problem.message)
    assert expected and expected.group(1).split(", ") == offered


def test_workbook_notes_and_comments_round_trip_and_never_become_labels(tmp_path):
    """The new outcomes (no_response, score_wrong) and the Comment column of the workbook are
    read back, stored with the comment as note, counted, and never applied as outcomes; a
    comment without an outcome is noted and left out."""
    from openpyxl import load_workbook

    from leadscore.data.schema import COMMENT_HEADER
    from leadscore.feedback.apply import apply_feedback
    from leadscore.reporting.summary import ReportContext
    from leadscore.reporting.xlsx import write_report_xlsx

    ids = ["L1", "L2", "L3", "L4", "L5"]
    scores = pd.DataFrame(
        {
            "lead_id": ids,
            "owner": ["Ann", "Ann", "Bob", "Bob", None],
            "score": [90, 80, 70, 60, 50],
            "grade": ["A", "A", "B", "B", "C"],
        }
    )
    context = ReportContext(owner_column="owner")
    report = write_report_xlsx(scores, tmp_path / "report.xlsx", context)
    book = load_workbook(report)
    ws = book["Scores"]
    names = [c.value for c in ws[1]]
    at = {
        name: names.index(name) + 1 for name in ("Sales feedback", "Feedback date", COMMENT_HEADER)
    }
    filled = {
        "L1": ("no_response", "2026-01-10", "3 calls, voicemail"),
        "L2": ("Score wrong", "2026-01-11", "looks like a competitor"),
        "L3": ("meeting_held", "2026-01-12", "demo booked"),
        "L4": (None, None, "call back in March"),
    }
    for row in range(2, 7):
        lead = ws.cell(row, 1).value
        outcome, day, comment = filled.get(lead, (None, None, None))
        for name, value in zip(at, (outcome, day, comment), strict=True):
            ws.cell(row, at[name], value)
    book.save(report)

    summary = ingest(settings_for(tmp_path), report)
    assert summary.line() == (
        "feedback: 3 new (2 not used as labels: no_response 1, score_wrong 1), "
        "0 already stored, 0 rejected"
    )
    (note,) = summary.warnings
    assert note.column == COMMENT_HEADER and note.value == "call back in March"
    assert note.message.startswith("a comment without sales feedback; row ignored")
    store = read_store(tmp_path / "store").set_index("lead_id")
    assert store.loc["L1", "outcome"] == "no_response"
    assert store.loc["L1", "note"] == "3 calls, voicemail"
    assert store.loc["L2", "outcome"] == "score_wrong"
    assert store.loc["L2", "note"] == "looks like a competitor"
    assert store.loc["L3", "note"] == "demo booked"
    leads = pd.DataFrame(
        {
            "lead_id": pd.Series(ids, dtype="string"),
            "created_at": pd.Timestamp("2025-12-01"),
            "meeting_at": pd.NaT,
            "won_at": pd.NaT,
            "lost_at": pd.NaT,
        }
    )
    labelled, counts = apply_feedback(leads, store.reset_index())
    assert counts.applied == 1 and counts.not_labels == 2
    assert labelled["meeting_at"].notna().tolist() == [False, False, True, False, False]
    assert labelled[["won_at", "lost_at"]].isna().all(axis=None)


def test_repeated_notes_for_a_lead_are_kept_unless_exact_repeats(tmp_path):
    path = write_csv(
        tmp_path,
        "fb.csv",
        [
            "L1,no_response,2026-01-05,Ann,",
            "L1,no_response,2026-01-12,Ann,second try",
            "L1,no_response,2026-01-12,Ann,",
            "L1,meeting_held,2026-01-20,Ann,",
        ],
    )
    summary = ingest(settings_for(tmp_path), path)
    assert summary.line() == (
        "feedback: 3 new (2 not used as labels: no_response 2), 0 already stored, 1 rejected"
    )
    (problem,) = summary.problems
    assert problem.row == 4 and problem.message.startswith("repeats row 3")
