"""`backtest.html`: the report card a sales manager reads, one section per scored cohort.

Each section says in one sentence how the best grade did ("Of the A leads scored on 1 May
2026, 9.0% were won within 180 days, 3.2x the average; ..."), shows per grade the realized rate
(with its 95% interval) beside the expected one, the calibration chart, and the table. The page
is self-contained (inline CSS, charts as base64 PNG, no scripts) and drawn from the same dicts
as `backtest.json` (`card.cohort_card`).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore import __version__
from leadscore.data.io import write_text
from leadscore.reporting.html import CSS
from leadscore.reporting.summary import GRADE_COLOURS

TITLE = "Backtest report card"
# per target: what a converted lead did, and what the conversions are called
VERBS = {"meeting": ("got a meeting", "meetings"), "won": ("were won", "wins")}
EXTRA_CSS = """
section{margin:0 0 32px;padding:0 0 8px;border-bottom:2px solid #1F4E78}
.headline{font-size:16px;margin:8px 0 12px}
.status{font-size:12px;border-radius:3px;padding:2px 6px;margin-left:8px;vertical-align:middle}
.matured{background:#C6EFCE;color:#006100}.partial{background:#FFEB9C;color:#9C5700}
.note{background:#FFF4CE;color:#6b4e00;padding:6px 10px;border-radius:3px;margin:4px 0}
.charts img{max-width:49%;height:auto}
"""
REALIZED_COLOUR = "#1F4E78"
EXPECTED_COLOUR = "#A6A6A6"


def _esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def day_text(iso: str) -> str:
    """'2026-05-01' as '1 May 2026'."""
    stamp = pd.Timestamp(iso)
    return f"{stamp.day} {stamp:%B %Y}"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def grade_chart_png(card: Mapping) -> bytes:
    """Per grade: realized rate (bar, 95% interval) beside the expected rate (grey bar)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grades = [g for g, row in card["grades"].items() if row["n"]]
    rows = [card["grades"][g] for g in grades]
    realized = np.array([r["rate"] or 0.0 for r in rows]) * 100
    expected = np.array([r["expected_rate"] or 0.0 for r in rows]) * 100
    low = np.array([r["rate_low"] or 0.0 for r in rows]) * 100
    high = np.array([r["rate_high"] or 0.0 for r in rows]) * 100
    fig = Figure(figsize=(5.2, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(grades))
    ax.bar(
        x - 0.2,
        realized,
        0.4,
        color=REALIZED_COLOUR,
        label="realized",
        yerr=[np.maximum(realized - low, 0), np.maximum(high - realized, 0)],
        capsize=3,
        error_kw={"ecolor": "#555555", "linewidth": 1},
    )
    ax.bar(x + 0.2, expected, 0.4, color=EXPECTED_COLOUR, label="expected (mean P)")
    ax.set_xticks(x, [f"{g}\n{r['n']:,} leads" for g, r in zip(grades, rows, strict=True)])
    verb = VERBS.get(card["target"], ("converted", "conversions"))[0]
    ax.set_ylabel(f"% {verb}")
    ax.set_title(f"{card['window_days']} days after scoring", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def headline(card: Mapping) -> str:
    """One sentence on the best grade with leads: its rate, its lift, its share of conversions."""
    grades = [(g, row) for g, row in card["grades"].items() if row["n"]]
    if not grades:
        return "No scored lead could be followed up."
    grade, row = grades[0]
    verb, nouns = VERBS.get(card["target"], ("converted", "conversions"))
    if card["matured"]:
        within = f"within {card['window_days']} days"
    else:
        within = (
            f"so far ({card['observed_share']:.0%} of the {card['window_days']}-day window "
            "has passed)"
        )
    lift = "" if row["lift"] is None else f", {row['lift']:.1f}x the average"
    share = ""
    if row["share_of_conversions"] is not None:
        share = (
            f"; they were {_pct(row['share_of_leads'], 0)} of the leads and brought "
            f"{_pct(row['share_of_conversions'], 0)} of the {nouns}"
        )
    return (
        f"Of the {grade} leads scored on {day_text(card['as_of'])}, {_pct(row['rate'])} "
        f"{verb} {within}{lift}{share}."
    )


def grade_table_html(card: Mapping) -> str:
    head = (
        "<tr><th>Grade</th><th>Leads</th><th>Share of leads</th><th>Converted</th>"
        "<th>Realized rate (95% interval)</th><th>Expected rate</th>"
        "<th>Share of conversions</th><th>Lift</th></tr>"
    )
    body = []
    for grade, row in card["grades"].items():
        css = f"grade g{grade}" if grade in GRADE_COLOURS else "grade"
        interval = (
            ""
            if row["rate_low"] is None
            else f" ({_pct(row['rate_low'], 2)}–{_pct(row['rate_high'], 2)})"
        )
        lift = "–" if row["lift"] is None else f"{row['lift']:.2f}x"
        body.append(
            f'<tr><td class="{css}">{_esc(grade)}</td>'
            f'<td class="num">{row["n"]:,}</td>'
            f'<td class="num">{_pct(row["share_of_leads"])}</td>'
            f'<td class="num">{row["converted"]:,}</td>'
            f'<td class="num">{_pct(row["rate"], 2)}{interval}</td>'
            f'<td class="num">{_pct(row["expected_rate"], 2)}</td>'
            f'<td class="num">{_pct(row["share_of_conversions"])}</td>'
            f'<td class="num">{lift}</td></tr>'
        )
    total = (
        f'<tr><td><b>All</b></td><td class="num"><b>{card["n"]:,}</b></td>'
        f'<td class="num">100.0%</td><td class="num"><b>{card["converted"]:,}</b></td>'
        f'<td class="num"><b>{_pct(card["rate"], 2)}</b></td>'
        f'<td class="num">{_pct(card["expected_rate"], 2)}</td>'
        f'<td class="num">100.0%</td><td class="num">{"1.00x" if card["converted"] else "–"}</td>'
        "</tr>"
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}{total}</tbody></table>"


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _metric(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def cohort_section(card: Mapping, charts: Mapping[str, bytes]) -> str:
    """One cohort and target: headline, status, notes, charts and the per-grade table."""
    verb = VERBS.get(card["target"], ("converted", ""))[0]
    status = (
        '<span class="status matured">window passed</span>'
        if card["matured"]
        else f'<span class="status partial">partial: {card["observed_share"]:.0%} of the '
        "window observed</span>"
    )
    model = card.get("model") or {}
    model_text = model.get("name") or "unknown"
    if model.get("version"):
        model_text += f" version {model['version']}"
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in card["notes"])
    return (
        "<section>"
        f"<h2>Scored on {_esc(day_text(card['as_of']))}: leads that {_esc(verb)} within "
        f"{card['window_days']} days{status}</h2>"
        f'<p class="headline">{_esc(headline(card))}</p>'
        f'<p class="meta">{card["n"]:,} leads scored by model {_esc(model_text)}; '
        f"outcomes known up to {_esc(day_text(card['observed_until']))}. "
        f"Ranking: ROC AUC {_metric(card['roc_auc'], '.3f')}, PR AUC "
        f"{_metric(card['pr_auc'], '.3f')}; calibration error (ECE) "
        f"{_metric(card['ece'], '.4f')}.</p>"
        f"{notes}"
        '<div class="charts">'
        f"{_img(charts.get('grades'), 'Realized and expected rate per grade')}"
        f"{_img(charts.get('calibration'), 'Calibration: realized rate against probability')}"
        "</div>"
        f"{grade_table_html(card)}"
        "</section>"
    )


GUIDE = (
    "Realized rate: the share of the grade's leads that converted within the window after the "
    "day they were scored, with its 95% interval (the range the true rate lies in, given how "
    "few leads a grade may have).",
    "Expected rate: the average probability the model gave those leads. Realized close to "
    "expected means the probabilities can be taken at face value.",
    "Lift: the grade's rate against the average of all scored leads; share of conversions: how "
    "much of what converted came from the grade.",
    "Partial: the window has not passed yet; the rates will still rise.",
)


def write_backtest_html(
    cards: Sequence[Mapping],
    charts: Sequence[Mapping[str, bytes]],
    skipped: Sequence[Mapping],
    path: str | Path,
) -> Path:
    """Write the report card: one section per card (with its charts), then what was skipped."""
    sections = "".join(cohort_section(c, ch) for c, ch in zip(cards, charts, strict=True))
    skipped_html = ""
    if skipped:
        items = "".join(
            f"<li>{_esc(s['as_of'])} {_esc(s['target'])}: {_esc(s['reason'])}</li>" for s in skipped
        )
        skipped_html = f"<h2>Not backtested</h2><ul>{items}</ul>"
    guide = "".join(f"<li>{_esc(line)}</li>" for line in GUIDE)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title><style>{CSS}{EXTRA_CSS}</style></head><body>"
        f"<h1>{TITLE}</h1>"
        f'<p class="meta">How the scores of earlier weeks turned out, grade by grade '
        f"(leadscore {_esc(__version__)}).</p>"
        f"{sections}{skipped_html}"
        f'<h2>How to read it</h2><ul class="guide">{guide}</ul>'
        "</body></html>\n"
    )
    return write_text(path, page)
