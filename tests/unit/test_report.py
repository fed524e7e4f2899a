"""Report files: formula-safe text, the sales workbook with its feedback columns, safe HTML."""

from __future__ import annotations

import csv
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from leadscore.data.io import write_csv
from leadscore.data.schema import (
    COMMENT_HEADER,
    FEEDBACK_COLUMNS,
    FEEDBACK_OUTCOMES,
    LEAD_ID_HEADER,
    OWNER_HEADER,
    SHEET_SCORES,
)
from leadscore.reporting.html import FILTER_SCRIPT, write_report_html
from leadscore.reporting.safe_text import restore_text, safe_frame, safe_text
from leadscore.reporting.summary import (
    NO_OWNER,
    SHEET_ABOUT,
    SHEET_OWNERS,
    ReportContext,
    RunSummary,
    summary_items,
)
from leadscore.reporting.xlsx import write_report_xlsx

INJECTIONS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tfoo", "\rbar"]
MINUS = "\u2212"
META = ReportContext(
    model_name="leadscore-test",
    model_version="7",
    run_id="run-abc",
    as_of="2025-03-03",
    n_skipped=4,
    grade_thresholds={"A": 75, "B": 50, "C": 25},
)


def scores_frame() -> pd.DataFrame:
    """Scores as the scorer produces them, with hostile lead ids and reasons."""
    n = len(INJECTIONS) + 2
    lead_ids = [*INJECTIONS, "L-7", "<script>alert(1)</script>"]
    return pd.DataFrame(
        {
            "lead_id": lead_ids,
            "p_meeting": np.linspace(0.1, 0.7, n),
            "p_won": np.linspace(0.01, 0.3, n),
            "score": [10, 80, 55, 30, 95, 5, 60, 90],
            "grade": ["D", "A", "B", "C", "A", "D", "B", "D"],
            "fit_score": np.linspace(-5.5, 3.0, n),
            "engagement_score": np.linspace(2.0, -4.0, n),
            "reason_pos_1": ["Job level is VP (+4.2 pts)", *INJECTIONS, "<b>bold</b>"],
            "reason_pos_2": ["Viewed the pricing page 3 times in the last 30 days (+6.1 pts)"]
            + [""] * (n - 1),
            "reason_pos_3": [""] * n,
            "reason_neg_1": [f"No activity for 45 days ({MINUS}2.3 pts)"] * n,
            "reason_neg_2": ["<script>alert('x')</script>"] + [""] * (n - 1),
            "reason_neg_3": [""] * n,
            "expected_value": [np.nan, 1200.0, -50.0, 3.0, 4.0, 0.0, 10.0, 2.0],
            "trend": ["up", "", "down", "", "", "", "", ""],
            "explore": [False, True, False, False, False, False, False, False],
            "model_name": "leadscore-test",
            "model_version": "7",
            "run_id": "run-abc",
            "as_of": pd.Timestamp("2025-03-03"),
        }
    )


def test_safe_text_neutralises_formulas_only_in_text():
    out = safe_text(pd.Series([*INJECTIONS, "Job level is VP", None, "'=x", "a=b"], dtype=object))
    assert list(out[:6]) == ["'" + s for s in INJECTIONS]
    assert out[6] == "Job level is VP"
    assert out[7] is None
    assert out[8] == "''=x"  # so that restore_text is exact
    assert out[9] == "a=b"
    numbers = pd.Series([-1.5, 2.0, np.nan])
    assert safe_text(numbers) is numbers
    mixed = safe_text(pd.Series(["-1", -1, 2.5], dtype=object))
    assert list(mixed) == ["'-1", -1, 2.5]


def test_safe_text_handles_string_and_categorical_dtypes():
    strings = safe_text(pd.Series(["=1", "ok", None], dtype="string"))
    assert list(strings.fillna("NA")) == ["'=1", "ok", "NA"]
    cats = safe_text(pd.Series(["@x", "y"], dtype="category"))
    assert list(cats) == ["'@x", "y"]


def test_restore_text_is_the_inverse():
    original = pd.Series([*INJECTIONS, "'=x", "'", "''", "plain", None], dtype=object)
    assert restore_text(safe_text(original)).tolist() == original.tolist()


def test_csv_cells_are_inert_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame({"lead_id": INJECTIONS, "fit_score": [-1.5, -2.0, 3.0, 0.0, -0.1, 7.0]})
    path = write_csv(safe_frame(frame), tmp_path / "scores.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["lead_id", "fit_score"]
    assert [r[0] for r in rows[1:]] == ["'" + s for s in INJECTIONS]
    assert [float(r[1]) for r in rows[1:]] == [-1.5, -2.0, 3.0, 0.0, -0.1, 7.0]
    raw = path.read_text(encoding="utf-8")
    assert "\n-1.5" not in raw and ",-1.5" in raw  # a bare number, not quoted text


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlsx") / "report.xlsx"
    write_report_xlsx(scores_frame(), path, META)
    return load_workbook(path), path


def header(ws) -> list:
    return [c.value for c in ws[1]]


def column(ws, name: str) -> list:
    j = header(ws).index(name)
    return [row[j] for row in ws.iter_rows(min_row=2)]


def test_xlsx_sheets_headers_and_order(workbook):
    wb, _ = workbook
    assert wb.sheetnames == [SHEET_SCORES, SHEET_ABOUT]
    ws = wb[SHEET_SCORES]
    assert header(ws) == [
        LEAD_ID_HEADER,
        "Grade",
        "Score",
        "P(meeting)",
        "P(won)",
        "Trend",
        "Top reasons for",
        "Top reasons against",
        *FEEDBACK_COLUMNS,
        COMMENT_HEADER,
        "Expected value",
        "Fit (pts)",
        "Engagement (pts)",
        "Explore",
    ]
    scores = [c.value for c in column(ws, "Score")]
    assert scores == sorted(scores, reverse=True) and len(scores) == 8


def test_xlsx_text_is_inert(workbook):
    wb, _ = workbook
    ws = wb[SHEET_SCORES]
    leads = {c.value: c for c in column(ws, LEAD_ID_HEADER)}
    for text in INJECTIONS:
        cell = leads["'" + text.replace("\r", "\n")]  # XML stores a carriage return as \n
        assert cell.data_type != "f" and cell.value.startswith("'")
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
    reasons = [c.value for c in column(ws, "Top reasons for") if c.value]
    assert "'+1+1" in reasons
    joined = [r for r in reasons if "pricing" in r]
    assert joined == [
        "Job level is VP (+4.2 pts)\nViewed the pricing page 3 times in the last 30 days (+6.1 pts)"
    ]


def test_xlsx_numbers_stay_numbers(workbook):
    wb, _ = workbook
    ws = wb[SHEET_SCORES]
    fits = column(ws, "Fit (pts)")
    assert all(c.data_type == "n" and isinstance(c.value, int | float) for c in fits)
    assert min(c.value for c in fits) == pytest.approx(-5.5)
    values = [c.value for c in column(ws, "Expected value")]
    assert -50 in values and None in values
    p_won = column(ws, "P(won)")
    assert p_won[0].number_format == "0.0%" and isinstance(p_won[0].value, float)


def test_xlsx_feedback_columns_frozen_header_and_filter(workbook):
    wb, _ = workbook
    ws = wb[SHEET_SCORES]
    assert ws.freeze_panes == "B2"  # the lead id column and the header
    last = ws.cell(row=1, column=ws.max_column).column_letter
    assert ws.auto_filter.ref == f"A1:{last}9"
    names = header(ws)
    feedback = ws.cell(row=1, column=names.index("Sales feedback") + 1).column_letter
    date_col = ws.cell(row=1, column=names.index("Feedback date") + 1).column_letter
    validations = {dv.type: dv for dv in ws.data_validations.dataValidation}
    outcomes = validations["list"]
    assert outcomes.formula1.strip('"').split(",") == list(FEEDBACK_OUTCOMES)
    assert FEEDBACK_OUTCOMES == (
        "meeting_held",
        "disqualified",
        "won",
        "lost",
        "no_response",
        "score_wrong",
    )
    assert str(outcomes.sqref) == f"{feedback}2:{feedback}9"
    assert str(validations["date"].sqref) == f"{date_col}2:{date_col}9"
    assert ws.column_dimensions[date_col].number_format == "yyyy-mm-dd"
    assert all(c.value is None for c in column(ws, "Sales feedback"))


def test_xlsx_grades_are_colour_coded(workbook):
    wb, _ = workbook
    grades = column(wb[SHEET_SCORES], "Grade")
    fills = {c.value: c.fill.fgColor.rgb[-6:] for c in grades}
    assert fills["A"] == "C6EFCE"  # green
    assert fills["D"] == "FFC7CE"  # red
    assert len(set(fills.values())) == len(fills)


def test_xlsx_about_sheet(workbook):
    wb, _ = workbook
    about = {r[0]: r[1] for r in wb[SHEET_ABOUT].iter_rows(values_only=True) if r and r[0]}
    assert about["Model"] == "leadscore-test"
    assert about["Model version"] == "7"
    assert about["Run id"] == "run-abc"
    assert about["As of"] == "2025-03-03"
    assert about["Leads scored"] == "8" and about["Leads skipped"] == "4"
    assert about["Grades"].startswith("A: score >= 75")
    text = " ".join(str(v) for r in wb[SHEET_ABOUT].iter_rows(values_only=True) for v in r if v)
    assert "percentage points" in text


def test_xlsx_written_atomically(workbook):
    _, path = workbook
    assert [p.name for p in path.parent.iterdir()] == ["report.xlsx"]


def test_xlsx_control_characters_cannot_unmask_a_formula(tmp_path):
    scores = scores_frame().iloc[:2].assign(lead_id=["\x01=1+1", "ok\x02"])
    path = write_report_xlsx(scores, tmp_path / "r.xlsx", ReportContext())
    ws = load_workbook(path)[SHEET_SCORES]
    cells = column(ws, LEAD_ID_HEADER)
    assert sorted(c.value for c in cells) == ["'=1+1", "ok"]
    assert all(c.data_type == "s" for c in cells)


def test_xlsx_optional_columns_may_be_absent(tmp_path):
    scores = scores_frame().drop(columns=["p_meeting", "trend", "explore", "expected_value"])
    scores = scores.drop(columns=["reason_pos_3", "reason_neg_2", "reason_neg_3"])
    path = write_report_xlsx(scores, tmp_path / "r.xlsx", ReportContext())
    ws = load_workbook(path)[SHEET_SCORES]
    names = header(ws)
    assert "P(meeting)" not in names and "Trend" not in names and "Explore" not in names
    assert names[:3] == [LEAD_ID_HEADER, "Grade", "Score"]
    reasons_end = names.index("Top reasons against") + 1
    assert names[reasons_end : reasons_end + 3] == [*FEEDBACK_COLUMNS, COMMENT_HEADER]


def test_xlsx_max_rows_keeps_the_top(tmp_path):
    path = write_report_xlsx(scores_frame(), tmp_path / "r.xlsx", META, max_rows=3)
    wb = load_workbook(path)
    assert [c.value for c in column(wb[SHEET_SCORES], "Score")] == [95, 90, 80]
    notes = [r[1] for r in wb[SHEET_ABOUT].iter_rows(values_only=True) if r[1]]
    assert any("top 3 of 8" in str(n) for n in notes)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_report_html(scores_frame(), path, replace(META, top_n=5))
    return path.read_text(encoding="utf-8")


def test_html_has_no_external_resources(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    assert 'src="data:image/png;base64,' in page


def test_html_escapes_data(page):
    assert page.lower().count("<script") == 1  # the filter's own inline script, nothing else
    assert "<script>" + FILTER_SCRIPT + "</script>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page


def test_html_content(page):
    assert "leadscore-test" in page and "7" in page and "2025-03-03" in page
    assert "Leads skipped" in page and "Explore share" in page
    assert "Call list: the top 5 of 8 leads (5 listed)" in page
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr ") == 5
    assert page.index("Call list") < page.index("This run") < page.index("Score distribution")
    assert f"No activity for 45 days ({MINUS}2.3 pts)" in page
    assert page.count('class="tag">explore</span>') == 1  # the one explore lead in the top 5


def test_html_without_optional_columns(tmp_path):
    scores = scores_frame().drop(columns=["p_meeting", "p_won", "trend", "explore"])
    path = write_report_html(scores, tmp_path / "r.html", ReportContext())
    text = path.read_text(encoding="utf-8")
    assert "<th>P(won)</th>" not in text and "Explore share" not in text
    assert "<th>Grade</th>" in text
    assert "Call list: all 8 leads" in text


def test_summary_describes_the_whole_run_when_only_the_top_rows_are_listed(tmp_path):
    hist = [0] * 101
    hist[3], hist[40], hist[60], hist[90] = 900, 50, 30, 20
    run = RunSummary(1_000, {"A": 20, "B": 30, "C": 50, "D": 900}, tuple(hist), ("no data",))
    html_path = write_report_html(scores_frame(), tmp_path / "r.html", META, summary=run)
    page = html_path.read_text(encoding="utf-8")
    assert "<td>Leads per grade</td><td>A: 20, B: 30, C: 50, D: 900</td>" in page
    assert "<td>Leads scored</td><td>1,000</td>" in page
    assert "top 8 of 1,000" in page and "the top 200 of 1,000 leads (8 listed)" in page
    assert '<p class="warning">Warning: no data</p>' in page
    book = load_workbook(write_report_xlsx(scores_frame(), tmp_path / "r.xlsx", META, 3, run))
    about = {r[0]: r[1] for r in book[SHEET_ABOUT].iter_rows(values_only=True) if r and r[0]}
    assert about["Leads per grade"] == "A: 20, B: 30, C: 50, D: 900"
    assert about["Leads listed"] == "top 3 of 1,000 (highest scores)"
    assert about["Warning"] == "no data"
    assert book.active.title == SHEET_ABOUT


IDENTITY = ReportContext(
    model_name="leadscore-test",
    display_columns=("company_name", "contact_name"),
    owner_column="owner",
    currency="EUR",
    mean_won_amount=12_345.0,
)


def identity_frame() -> pd.DataFrame:
    """`scores_frame` with who each lead is and whose it is (one lead has no owner)."""
    frame = scores_frame()
    n = len(frame)
    frame.insert(
        1, "company_name", [f"=Company {i}" if i == 0 else f"Company {i}" for i in range(n)]
    )
    frame.insert(2, "contact_name", [f"Contact {i}" for i in range(n)])
    frame.insert(3, "owner", ["Ann", "Bob", "Ann", None, "Bob", "Ann", "Bob", "Ann"])
    return frame


@pytest.fixture(scope="module")
def identity_book(tmp_path_factory):
    path = tmp_path_factory.mktemp("identity") / "report.xlsx"
    write_report_xlsx(identity_frame(), path, IDENTITY)
    return load_workbook(path)


def test_xlsx_reads_identity_then_rank_then_reasons_then_feedback(identity_book):
    ws = identity_book[SHEET_SCORES]
    names = header(ws)
    assert names[:9] == [
        LEAD_ID_HEADER,
        "Company name",
        "Contact name",
        OWNER_HEADER,
        "Grade",
        "Score",
        "P(meeting)",
        "P(won)",
        "Trend",
    ]
    assert names[9:14] == ["Top reasons for", "Top reasons against", *FEEDBACK_COLUMNS, "Comment"]
    assert names[14] == "Expected value (EUR)"
    first = {name: ws.cell(row=2, column=j + 1).value for j, name in enumerate(names)}
    assert first[LEAD_ID_HEADER] == "'\tfoo" and first["Company name"] == "Company 4"
    assert first[OWNER_HEADER] == "Bob" and first["Contact name"] == "Contact 4"
    assert "'=Company 0" in [c.value for c in column(ws, "Company name")]  # formula guard


def test_xlsx_freezes_identity_and_header_wraps_reasons_and_prints_landscape(identity_book):
    ws = identity_book[SHEET_SCORES]
    assert ws.freeze_panes == "E2"  # right of lead, company, contact and owner; below the header
    reasons = column(ws, "Top reasons for")
    assert all(c.alignment.wrap_text for c in reasons)
    (joined,) = [c.row for c in reasons if c.value and "pricing" in c.value]  # 2 reasons, 3 lines
    assert ws.row_dimensions[joined].height == 45
    assert ws.row_dimensions[joined + 1].height is None  # one line: the default height
    assert all(c.alignment.wrap_text for c in column(ws, "Top reasons against"))
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"
    comment = ws.cell(row=1, column=header(ws).index("Comment") + 1).column_letter
    assert ws.print_area == f"'{SHEET_SCORES}'!$A$1:${comment}$9"


def test_xlsx_owners_sheet_counts_grades_value_and_top_leads(identity_book):
    assert identity_book.sheetnames == [SHEET_SCORES, SHEET_OWNERS, SHEET_ABOUT]
    rows = list(identity_book[SHEET_OWNERS].iter_rows(values_only=True))
    assert rows[1] == (
        OWNER_HEADER,
        "Leads",
        "A",
        "B",
        "C",
        "D",
        "Expected value (EUR)",
        "Top leads",
    )
    table = {r[0]: r for r in rows[2:]}
    assert list(table) == ["Ann", "Bob", NO_OWNER]
    frame = identity_frame()
    ann = frame[frame["owner"] == "Ann"]
    assert table["Ann"][1] == len(ann) == 4
    assert table["Ann"][2:6] == tuple(int((ann["grade"] == g).sum()) for g in "ABCD")
    assert table["Ann"][6] == pytest.approx(ann["expected_value"].sum())
    top = ann.sort_values("score", ascending=False).iloc[0]
    assert table["Ann"][7].split("\n")[0] == (
        f"{top['company_name']} ({top['lead_id']}): {top['grade']}, score {top['score']}"
    )
    assert table[NO_OWNER][1] == 1


def test_expected_value_says_how_it_was_computed_or_why_it_is_empty(tmp_path):
    about = dict(summary_items(identity_frame(), IDENTITY))
    assert "average won deal in training (EUR 12,345)" in about["Expected value (EUR)"]
    blank = identity_frame().assign(expected_value=np.nan)
    no_amounts = replace(IDENTITY, mean_won_amount=None)
    note = dict(summary_items(blank, no_amounts))["Expected value (EUR)"]
    assert note.startswith("not shown: no deal amounts are known")
    path = write_report_xlsx(blank, tmp_path / "r.xlsx", no_amounts)
    assert "Expected value (EUR)" not in header(load_workbook(path)[SHEET_SCORES])
    page = write_report_html(blank, tmp_path / "r.html", no_amounts).read_text(encoding="utf-8")
    assert "not shown: no deal amounts are known" in page


def test_html_call_list_shows_identity_owner_and_filters(tmp_path):
    path = write_report_html(identity_frame(), tmp_path / "r.html", IDENTITY)
    page = path.read_text(encoding="utf-8")
    calls, rest = page.split("<h2>This run</h2>", 1)
    assert "<th>Owner</th>" in calls and "<b>Company 4</b>" in calls and "Contact 4" in calls
    assert "&#x27;" not in calls.split("<tbody>")[1][:200]  # no formula guard in HTML
    assert '<option value="Ann">Ann (4)</option>' in calls
    assert f'<option value="{NO_OWNER}">{NO_OWNER} (1)</option>' in calls
    rows = re.findall(r'<tr data-rank="(\d+)" data-grade="(\w)" data-owner="([^"]*)"', calls)
    assert [int(r[0]) for r in rows] == list(range(1, 9))
    assert rows[0][1:] == ("A", "Bob") and (NO_OWNER in [r[2] for r in rows])
    assert "Leads per owner" in rest and "Score distribution" in rest


def test_html_lists_each_owners_top_leads(tmp_path):
    frame = identity_frame()
    path = write_report_html(frame, tmp_path / "r.html", replace(IDENTITY, top_n=2))
    page = path.read_text(encoding="utf-8")
    owners = re.findall(r'data-owner="([^"]*)"', page)
    assert sorted(owners) == sorted(["Ann", "Ann", "Bob", "Bob", NO_OWNER])
    assert "the top 2 per owner of 8 leads (5 listed)" in page
