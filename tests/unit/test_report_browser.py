"""report.html in a real browser: headless Chromium lays the page out at a laptop's, a small
laptop's and a phone's width; the top lead is on the first screen at each, nothing runs off the
side, and the offline filter by owner, grade and text hides exactly the other leads.

The page is measured from a test page that frames it (file access between local files allowed),
so the report carries no test code. Skipped only where Chromium is missing (`make test` installs
Debian's `chromium` when apt-get is available).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.reporting.html import write_report_html
from leadscore.reporting.summary import ReportContext, RunSummary

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not found: `make test` installs Debian's chromium where apt-get is "
        "available (apt-get update && apt-get install chromium)",
    ),
]

FIRST_SCREEN = 700  # px: what a laptop shows below its browser's bars
WIDTHS = (1400, 1000, 400)
WARNING = (
    "stale data: the newest record in the leads and events is from 2026-10-24, 8 days "
    "before the as-of date 2026-11-01"
)
CONTEXT = ReportContext(
    model_name="leadscore",
    model_version="3",
    as_of="2026-11-01",
    display_columns=("company_name", "contact_name"),
    owner_column="owner",
    currency="USD",
    mean_won_amount=12_000.0,
    headline_target="won",
)


def scores(n: int = 400) -> pd.DataFrame:
    """Scores as the scorer writes them: three owners and leads without one, long reasons."""
    rng = np.random.default_rng(5)
    score = rng.permutation(np.linspace(0, 100, n).round().astype(int))
    owners = np.array(["Alex Morgan", "Sam Patel", "Jordan Lee", None], dtype=object)
    minus = "\u2212"
    return pd.DataFrame(
        {
            "lead_id": [f"L{i:07d}" for i in range(n)],
            "company_name": [f"Meridian Logistics International {i}" for i in range(n)],
            "contact_name": [f"Ximena Virtanen-Okafor {i}" for i in range(n)],
            "owner": owners[rng.integers(0, len(owners), n)],
            "p_meeting": rng.random(n) * 0.6,
            "p_won": rng.random(n) * 0.2,
            "score": score,
            "grade": np.select([score >= 75, score >= 50, score >= 25], ["A", "B", "C"], "D"),
            "fit_score": rng.normal(0, 3, n),
            "engagement_score": rng.normal(0, 3, n),
            "reason_pos_1": "Viewed the pricing page 8 times in the last 90 days (+10.5 pts)",
            "reason_pos_2": "New lead: created 8 days ago, last activity less than a day ago "
            "(+5.0 pts)",
            "reason_pos_3": "Submitted forms 4 times in the last 30 days (+2.1 pts)",
            "reason_neg_1": f"Annual revenue is 558,467,000 ({minus}1.2 pts)",
            "reason_neg_2": f"Requested a demo 1 time in the last 90 days, none in the last 30 "
            f"days ({minus}0.2 pts)",
            "reason_neg_3": f"Job function is Executive ({minus}0.2 pts)",
            "expected_value": rng.random(n) * 5_000,
            "trend": rng.choice(["up", "down", "steady", "new"], n),
            "trend_reason": "Viewed the pricing page 8 times in the last 90 days: +3.1 pts "
            "since last week",
            "dormant": rng.random(n) < 0.1,
            "explore": rng.random(n) < 0.05,
        }
    )


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once with a throwaway profile and no network chatter."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


PROBE = """
function probe(frame){
  var d=frame.contentDocument, rows=[].slice.call(d.querySelectorAll('#leads tbody tr'));
  var first=rows[0], box=first.getBoundingClientRect();
  var reasons=first.querySelector('.reasons').getBoundingClientRect();
  return {id:first.querySelector('.id').textContent, name:first.querySelector('b').textContent,
    rows:rows.length, top:box.top, bottom:box.bottom, reasons_bottom:reasons.bottom,
    reasons_right:reasons.right, page_width:d.documentElement.scrollWidth,
    view_width:frame.contentWindow.innerWidth, view_height:frame.contentWindow.innerHeight};
}
function shown(frame){
  var d=frame.contentDocument;
  return [].slice.call(d.querySelectorAll('#leads tbody tr')).filter(function(r){
    return !r.hidden && r.getBoundingClientRect().height>0;}).map(function(r){
    return [r.getAttribute('data-owner'), r.getAttribute('data-grade'),
      r.querySelector('.id').textContent];});
}
function set(frame, id, value){
  var e=frame.contentDocument.getElementById(id); e.value=value;
  e.dispatchEvent(new Event('input'));
}
window.addEventListener('load', function(){
  var frames=[].slice.call(document.querySelectorAll('iframe')), out={layout:[]};
  frames.forEach(function(f){out.layout.push(probe(f));});
  var f=frames[0];
  set(f,'f-owner','Sam Patel'); set(f,'f-grade','A');
  out.owner_grade=shown(f);
  out.count=f.contentDocument.getElementById('f-count').textContent;
  set(f,'f-owner','(no owner)'); set(f,'f-grade','');
  out.no_owner=shown(f);
  set(f,'f-owner',''); set(f,'f-text','l0000007');
  out.text=shown(f);
  document.body.setAttribute('data-result', JSON.stringify(out));
});
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[pd.DataFrame, dict, Path]:
    """The report of `scores()` laid out by Chromium at `WIDTHS`, then filtered."""
    folder = tmp_path_factory.mktemp("browser")
    frame = scores()
    summary = replace(RunSummary.of(frame, None, "owner"), warnings=(WARNING,))
    page = write_report_html(frame, folder / "report.html", CONTEXT, summary)
    frames = "".join(
        f'<iframe src="{page.name}" style="width:{w}px;height:{FIRST_SCREEN}px;border:0"></iframe>'
        for w in WIDTHS
    )
    probe = folder / "probe.html"
    probe.write_text(
        f"<!DOCTYPE html><html><body style='margin:0'>{frames}<script>{PROBE}</script>"
        "</body></html>",
        encoding="utf-8",
    )
    done = chromium(
        "--allow-file-access-from-files", "--window-size=1500,900", "--dump-dom", probe.as_uri()
    )
    found = re.search(r'data-result="([^"]*)"', done.stdout)
    assert found, f"no result from Chromium: {done.stderr[-2000:]}"
    return frame, json.loads(html.unescape(found.group(1))), page


def test_the_top_lead_is_on_the_first_screen_at_every_width(rendered):
    frame, result, _ = rendered
    top = frame.sort_values("score", ascending=False, kind="stable").iloc[0]
    for width, box in zip(WIDTHS, result["layout"], strict=True):
        assert box["view_width"] == width and box["view_height"] == FIRST_SCREEN
        assert box["id"] == top["lead_id"] and box["name"] == top["company_name"]
        # the whole first lead, its reasons included, below the title, filters and warning
        assert 0 < box["top"] < box["bottom"] <= FIRST_SCREEN, (width, box)
        assert box["reasons_bottom"] <= FIRST_SCREEN, (width, box)
        assert box["page_width"] <= width, f"{width}px: the page runs off the side"
        assert box["reasons_right"] <= width
    # the list holds each owner's top leads: every lead here (fewer than 200 per owner)
    assert result["layout"][0]["rows"] == len(frame)


def test_filters_by_owner_grade_and_text_work_offline(rendered):
    frame, result, _ = rendered
    owner = frame["owner"].fillna("(no owner)")
    wanted = frame[(owner == "Sam Patel") & (frame["grade"] == "A")]
    assert sorted(r[2] for r in result["owner_grade"]) == sorted(wanted["lead_id"])
    assert {(r[0], r[1]) for r in result["owner_grade"]} == {("Sam Patel", "A")}
    assert result["count"] == f"{len(wanted)} of {len(frame)} leads shown"
    assert sorted(r[2] for r in result["no_owner"]) == sorted(
        frame.loc[owner.eq("(no owner)"), "lead_id"]
    )
    assert sorted(r[2] for r in result["text"]) == sorted(
        i for i in frame["lead_id"] if "l0000007" in i.lower()
    )


def png_pixels(path: Path) -> np.ndarray:
    """A PNG's RGB pixels (height, width, 3); Pillow comes with matplotlib."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("width", [1400, 400])
def test_screenshot_shows_the_top_leads_grade_on_the_first_screen(rendered, tmp_path, width):
    _, _, page = rendered
    shot = tmp_path / f"report-{width}.png"
    done = chromium(f"--window-size={width},{FIRST_SCREEN}", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = png_pixels(shot)
    assert pixels.shape[:2] == (FIRST_SCREEN, width)
    grade_a = np.array([0xC6, 0xEF, 0xCE])  # the A badge of the top lead
    warning = np.array([0xFF, 0xC7, 0xCE])  # the stale-data warning's background
    assert (pixels == grade_a).all(axis=2).sum() > 100
    assert (pixels == warning).all(axis=2).sum() > 100
