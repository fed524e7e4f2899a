"""The one-page HTML report: run summary, score chart and the top leads with their reasons."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.io import write_text
from leadscore.data.schema import LEAD_ID_HEADER
from leadscore.reporting.summary import (
    COLUMNS,
    DEFAULT_TITLE,
    DEFAULT_TOP_N,
    DROP_WHEN_BLANK,
    GRADE_COLOURS,
    READING_GUIDE,
    REASONS_AGAINST_HEADER,
    REASONS_FOR_HEADER,
    ReportContext,
    RunSummary,
    context_value,
    date_text,
    is_blank,
    reason_columns,
    sort_scores,
    summary_items,
)


def score_chart_png(score_hist: tuple[int, ...], thresholds: Mapping[str, float]) -> bytes:
    """Histogram of scores (0-100) with the grade thresholds, as PNG bytes (matplotlib Agg).

    ``score_hist[s]`` is the number of leads with score ``s`` (`RunSummary.score_hist`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(
        np.arange(len(score_hist)),
        bins=np.arange(0, 105, 5),
        weights=np.asarray(score_hist, float),
        color="#4472C4",
        edgecolor="white",
    )
    for grade in "ABC":
        x = float(thresholds[grade])
        ax.axvline(x, color="#666666", linestyle="--", linewidth=1)
        ax.text(
            x + 1,
            1,
            f"{grade} from {x:g}",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="#444444",
        )
    ax.set_xlim(0, 100)
    ax.set_xlabel("Score")
    ax.set_ylabel("Leads")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:24px;
color:#222;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#1F4E78;color:#fff;position:sticky;top:0}
td.num{text-align:right;white-space:nowrap}
.summary td{border:none;padding:2px 12px 2px 0}.summary td:first-child{font-weight:600}
ul{margin:0;padding-left:16px}li{margin:0 0 2px}
.for li{color:#1e6b2e}.against li{color:#9c0006}
.grade{font-weight:700;text-align:center;border-radius:3px}
.gA{background:#C6EFCE;color:#006100}.gB{background:#E2EFDA;color:#375623}
.gC{background:#FFEB9C;color:#9C5700}.gD{background:#FFC7CE;color:#9C0006}
.guide li{color:#333;margin-bottom:4px}
.tag{font-size:11px;background:#eee;color:#555;border-radius:3px;padding:1px 4px}
.warning{background:#FFC7CE;color:#9C0006;font-weight:600;padding:8px 12px;border-radius:3px}
"""


def _esc(value: object) -> str:
    """HTML-escaped text of a value (missing: empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _percent(value: object) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{100 * number:.1f}%"


def _number(value: object, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else format(number, fmt)


def _truthy(value: object) -> bool:
    """A flag's value, with missing values as False."""
    return bool(value) if not pd.isna(value) else False


def _reason_list(row: pd.Series, cols: list[str], css: str) -> str:
    items = [f"<li>{_esc(row[c])}</li>" for c in cols if isinstance(row[c], str) and row[c]]
    return f'<ul class="{css}">{"".join(items)}</ul>' if items else ""


def leads_table_html(top: pd.DataFrame) -> str:
    """The top leads as an HTML table (every data value escaped)."""
    pos, neg = reason_columns(top, "pos"), reason_columns(top, "neg")
    cols: list[tuple[str, str]] = [("lead_id", LEAD_ID_HEADER), ("score", "Score")]
    cols += [
        (c, h)
        for c, h, _ in COLUMNS[2:]
        if c in top and c != "explore" and not (c in DROP_WHEN_BLANK and is_blank(top[c]))
    ]
    head = "".join(f"<th>{_esc(h)}</th>" for _, h in cols)
    head += f"<th>{REASONS_FOR_HEADER}</th><th>{REASONS_AGAINST_HEADER}</th>"
    body = []
    for _, row in top.iterrows():
        cells = []
        for col, _ in cols:
            value = row[col]
            if col == "grade":
                grade = _esc(value)
                css = f"grade g{grade}" if grade in GRADE_COLOURS else "grade"
                cells.append(f'<td class="{css}">{grade}</td>')
            elif col in ("p_meeting", "p_won"):
                cells.append(f'<td class="num">{_percent(value)}</td>')
            elif col == "expected_value":
                cells.append(f'<td class="num">{_number(value, ",.0f")}</td>')
            elif col in ("fit_score", "engagement_score"):
                cells.append(f'<td class="num">{_number(value, "+.1f")}</td>')
            elif col == "score":
                cells.append(f'<td class="num">{_number(value, ".0f")}</td>')
            elif col == "lead_id" and "explore" in top and _truthy(row["explore"]):
                cells.append(f'<td>{_esc(value)} <span class="tag">explore</span></td>')
            else:
                cells.append(f"<td>{_esc(value)}</td>")
        cells.append(f"<td>{_reason_list(row, pos, 'for')}</td>")
        cells.append(f"<td>{_reason_list(row, neg, 'against')}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report_html(
    scores: pd.DataFrame,
    path: str | Path,
    context: ReportContext,
    summary: RunSummary | None = None,
) -> Path:
    """Write one self-contained HTML page: run summary, score chart, top leads with reasons.

    No network resources: inline CSS, the chart as a base64 PNG ``data:`` URI, no scripts or
    fonts. Every data value is HTML-escaped. ``context.top_n`` leads are listed (default 200).
    The summary, chart and warnings come from ``summary`` (the whole run; default: ``scores``).
    """
    ordered = sort_scores(scores)
    run = summary or RunSummary.of(scores, context.n_scored)
    top_n = int(context.top_n or DEFAULT_TOP_N)
    title = str(context.title or DEFAULT_TITLE)
    warnings = "".join(f'<p class="warning">Warning: {_esc(w)}</p>' for w in run.warnings)
    items = summary_items(scores, context, run)
    summary_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in items)
    chart = ""
    if sum(run.score_hist):
        png = base64.b64encode(score_chart_png(run.score_hist, context.thresholds)).decode("ascii")
        chart = (
            "<h2>Score distribution</h2>"
            f'<img alt="Histogram of lead scores" src="data:image/png;base64,{png}">'
        )
    shown = min(top_n, len(ordered))
    guide = "".join(f"<li>{_esc(line)}</li>" for line in READING_GUIDE[:5])
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">{_esc(context_value(context, scores, "model_name"))} '
        f"{_esc(context_value(context, scores, 'model_version'))}, "
        f"as of {_esc(date_text(context_value(context, scores, 'as_of')))}</p>"
        f"{warnings}"
        f'<table class="summary">{summary_rows}</table>'
        f"{chart}"
        f"<h2>Top {shown:,} leads of {run.n_scored:,}</h2>"
        f"{leads_table_html(ordered.iloc[:shown])}"
        f'<h2>How to read it</h2><ul class="guide">{guide}</ul>'
        "</body></html>\n"
    )
    return write_text(path, page)
