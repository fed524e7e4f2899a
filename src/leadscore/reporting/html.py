"""The one-page HTML report: the call list first, then the run, the score chart and the owners.

The first screen is the call list: each lead's identity (its display columns and id), owner,
grade, score, probabilities, trend and top reasons, highest score first, with a filter by owner,
grade and text that works offline (one small inline script; nothing is fetched). Below it: the
run's summary, the score distribution coloured by grade, leads per owner and how to read it. At
phone width each lead is a block: its identity and numbers on top, the reasons wrapped under it.
"""

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
from leadscore.data.schema import LEAD_ID_HEADER, OWNER_HEADER
from leadscore.reporting.summary import (
    ACCOUNTS_IN_HTML,
    DEFAULT_TITLE,
    DEFAULT_TOP_N,
    GRADE_COLOURS,
    READING_GUIDE,
    ReportContext,
    RunSummary,
    context_value,
    date_text,
    grade_counts_text,
    is_blank,
    money_text,
    owner_labels,
    reason_columns,
    sort_scores,
    summary_items,
)

TAGGED = ("dormant", "explore")  # flags shown as a tag beside the lead id, not as a column
MAX_LISTED = 5_000  # leads on the page at most (top_n per owner can add up)
# bar colours of the score chart per grade (the table's grade fills are too pale for bars)
CHART_COLOURS = {"A": "#2E7D32", "B": "#8BC34A", "C": "#F2B600", "D": "#D9534F"}
NUMBERS: tuple[tuple[str, str], ...] = (  # (column, header) of the call list's number cells
    ("score", "Score"),
    ("p_meeting", "P(meeting)"),
    ("p_won", "P(won)"),
)


def score_chart_png(score_hist: tuple[int, ...], thresholds: Mapping[str, float]) -> bytes:
    """Leads per score (0-100), each bar coloured by its grade, as PNG bytes (matplotlib Agg).

    ``score_hist[s]`` is the number of leads with score ``s`` (`RunSummary.score_hist`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    counts = np.asarray(score_hist, float)
    x = np.arange(len(counts))
    a, b, c = (float(thresholds[g]) for g in "ABC")
    grades = np.select([x >= a, x >= b, x >= c], ["A", "B", "C"], "D")
    fig = Figure(figsize=(7, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(x, counts, width=1.0, color=[CHART_COLOURS[g] for g in grades], linewidth=0)
    per_grade = {g: int(counts[grades == g].sum()) for g in "ABCD"}
    bounds = {"A": f">= {a:g}", "B": f"{b:g}-{a:g}", "C": f"{c:g}-{b:g}", "D": f"< {c:g}"}
    handles = [
        Patch(color=CHART_COLOURS[g], label=f"{g} ({bounds[g]}): {per_grade[g]:,}") for g in "ABCD"
    ]
    ax.legend(
        handles=handles,
        fontsize=8,
        frameon=False,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=4,
        handlelength=1,
    )
    ax.set_xlim(-0.5, 100.5)
    ax.set_xlabel("Score")
    ax.set_ylabel("Leads")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# shared with the backtest report card (`leadscore.backtest.html`)
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

REPORT_CSS = """
body{margin:12px 16px}h1{font-size:19px;display:inline;margin-right:8px}
.meta{display:inline;color:#555}.warning{margin:8px 0}
img{max-width:100%;height:auto}
.filters{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:center;margin:8px 0}
.filters select,.filters input{font-size:14px;padding:3px 4px}
.filters .count{color:#555}
table.leads td{padding:5px 6px}
table.leads .who b{display:block}
table.leads .who .sub{color:#555;font-size:12px}
table.leads .id{color:#777;font-size:12px}
table.leads .detail{color:#555;font-size:12px;margin-top:2px}
table.leads ul{padding-left:14px}
table.leads tr[hidden]{display:none}
.wide{overflow-x:auto}
@media (min-width:1200px){table.leads .rs{display:grid;grid-template-columns:1fr 1fr;gap:0 16px}}
@media (max-width:700px){
body{margin:8px}
table.leads thead{display:none}
table.leads tr{display:flex;flex-wrap:wrap;align-items:baseline;border-bottom:1px solid #bbb;
padding:6px 0}
table.leads td{border:none;padding:1px 6px 1px 0}
table.leads td.who{flex:1 1 100%}
table.leads td.reasons{flex:1 1 100%}
table.leads td[data-label]:not(.grade)::before{content:attr(data-label) ": ";color:#777;
font-size:12px}
table.leads td.grade{min-width:22px}
}
"""

FILTER_SCRIPT = """
(function(){
var rows=[].slice.call(document.querySelectorAll('#leads tbody tr'));
var owner=document.getElementById('f-owner'),grade=document.getElementById('f-grade'),
text=document.getElementById('f-text'),count=document.getElementById('f-count');
function apply(){
var o=owner?owner.value:'',g=grade.value,q=text.value.trim().toLowerCase(),n=0;
rows.forEach(function(r){
var show=(!o||r.getAttribute('data-owner')===o)&&(!g||r.getAttribute('data-grade')===g)&&
(!q||r.getAttribute('data-text').indexOf(q)>=0);
r.hidden=!show;if(show){n++;}});
count.textContent=n.toLocaleString('en-US')+' of '+rows.length.toLocaleString('en-US')+
' leads shown';}
[owner,grade,text].forEach(function(e){if(e){e.addEventListener('input',apply);
e.addEventListener('change',apply);}});
apply();})();
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


def _text(value: object) -> str:
    """A value as plain text (missing: empty)."""
    return "" if value is None or value is pd.NA or pd.isna(value) else str(value).strip()


def _reason_list(row: pd.Series, cols: list[str], css: str) -> str:
    items = [f"<li>{_esc(row[c])}</li>" for c in cols if isinstance(row[c], str) and row[c]]
    return f'<ul class="{css}">{"".join(items)}</ul>' if items else ""


def listed_leads(ordered: pd.DataFrame, top_n: int, owner_column: str | None) -> pd.DataFrame:
    """The leads the page lists, highest score first: each owner's top ``top_n`` with an owner
    column, else the top ``top_n``; at most `MAX_LISTED`."""
    if owner_column and owner_column in ordered:
        owners = owner_labels(ordered[owner_column])
        return ordered.groupby(owners, sort=False).head(top_n).iloc[:MAX_LISTED]
    return ordered.iloc[: min(top_n, MAX_LISTED)]


def _identity_cell(row: pd.Series, context: ReportContext, flags: list[str]) -> str:
    """Who the lead is: its first display value in bold, the others below, then its id."""
    values = [_text(row.get(c)) for c in context.display_columns if c in row.index]
    values = [v for v in values if v]
    lead = _text(row.get("lead_id"))
    tags = "".join(f' <span class="tag">{tag}</span>' for tag in flags)
    if not values:
        return f'<td class="who">{_esc(lead)}{tags}</td>'
    others = "".join(f'<span class="sub">{_esc(v)}</span> &middot; ' for v in values[1:])
    return (
        f'<td class="who"><b>{_esc(values[0])}</b>{others}'
        f'<span class="id">{_esc(lead)}</span>{tags}</td>'
    )


def _details(row: pd.Series, columns: set[str], context: ReportContext) -> str:
    """The small print under the reasons: trend reason, expected value, fit and engagement."""
    bits = []
    if "account_grade" in columns and _text(row["account_grade"]):
        bits.append(f"Account grade {_esc(row['account_grade'])}")
    if "trend_reason" in columns and _text(row["trend_reason"]):
        bits.append(f"Trend: {_esc(row['trend_reason'])}")
    if "expected_value" in columns and _number(row["expected_value"], ",.0f"):
        value = money_text(float(row["expected_value"]), context.currency)
        bits.append(f"Expected value {_esc(value)}")
    for col, label in (("fit_score", "Fit"), ("engagement_score", "Engagement")):
        if col in columns and _number(row[col], "+.1f"):
            bits.append(f"{label} {_number(row[col], '+.1f')} pts")
    return f'<div class="detail">{" &middot; ".join(bits)}</div>' if bits else ""


def leads_table_html(top: pd.DataFrame, context: ReportContext | None = None) -> str:
    """The call list as an HTML table (every data value escaped): identity, owner, grade,
    score, probabilities, trend, reasons with the details under them."""
    context = context or ReportContext()
    pos, neg = reason_columns(top, "pos"), reason_columns(top, "neg")
    owner = context.owner_column if context.owner_column in top else None
    numbers = [(c, h) for c, h in NUMBERS if c in top]
    trend = "trend" in top and not is_blank(top["trend"])
    present = {c for c in top.columns if not is_blank(top[c])}
    owner_keys = owner_labels(top[owner]).tolist() if owner else [""] * len(top)
    head = [f"<th>{LEAD_ID_HEADER}</th>"]
    head += [f"<th>{OWNER_HEADER}</th>"] if owner else []
    head += ["<th>Grade</th>"] if "grade" in top else []
    head += [f"<th>{_esc(h)}</th>" for _, h in numbers]
    head += ["<th>Trend</th>"] if trend else []
    head.append("<th>Top reasons</th>")
    body = []
    rows = zip(top.iterrows(), owner_keys, strict=True)
    for rank, ((_, row), owner_key) in enumerate(rows, start=1):
        flags = [t for t in TAGGED if t in top and _truthy(row[t])]
        owner_text = _text(row[owner]) if owner else ""
        grade = _esc(row["grade"]) if "grade" in top else ""
        searchable = " ".join(
            _text(row.get(c)) for c in ("lead_id", *context.display_columns) if c in top
        )
        cells = [_identity_cell(row, context, flags)]
        if owner:
            shown = _esc(owner_text) or f'<span class="id">{_esc(owner_key)}</span>'
            cells.append(f'<td class="owner" data-label="{OWNER_HEADER}">{shown}</td>')
        if "grade" in top:
            css = f"grade g{grade}" if grade in GRADE_COLOURS else "grade"
            cells.append(f'<td class="{css}" data-label="Grade">{grade}</td>')
        for col, header in numbers:
            value = _number(row[col], ".0f") if col == "score" else _percent(row[col])
            cells.append(f'<td class="num" data-label="{_esc(header)}">{value}</td>')
        if trend:
            trend_text = _text(row["trend"]).replace("_", " ")  # "model changed" can wrap
            cells.append(f'<td data-label="Trend">{_esc(trend_text)}</td>')
        reasons = _reason_list(row, pos, "for") + _reason_list(row, neg, "against")
        reasons = f'<div class="rs">{reasons}</div>'
        cells.append(f'<td class="reasons">{reasons}{_details(row, present, context)}</td>')
        attrs = (
            f'data-rank="{rank}" data-grade="{grade}" '
            f'data-owner="{_esc(owner_key)}" '
            f'data-text="{_esc(searchable.lower())}"'
        )
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return (
        f'<table class="leads" id="leads"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _filters_html(listed: pd.DataFrame, context: ReportContext) -> str:
    """The owner and grade drop-downs, the search box and the count the script keeps."""
    parts = []
    if context.owner_column and context.owner_column in listed:
        counts = owner_labels(listed[context.owner_column]).value_counts()
        names = sorted(counts.index, key=lambda o: (o.startswith("("), o.casefold()))
        options = "".join(
            f'<option value="{_esc(o)}">{_esc(o)} ({int(counts[o]):,})</option>' for o in names
        )
        parts.append(
            f'<label>{OWNER_HEADER} <select id="f-owner"><option value="">All owners</option>'
            f"{options}</select></label>"
        )
    grades = "".join(f'<option value="{g}">{g}</option>' for g in "ABCD")
    parts.append(
        f'<label>Grade <select id="f-grade"><option value="">All grades</option>{grades}'
        "</select></label>"
    )
    parts.append(
        '<input id="f-text" type="search" placeholder="Search name or id" '
        'aria-label="Search name or id">'
    )
    parts.append(f'<span class="count" id="f-count">{len(listed):,} leads</span>')
    return f'<form class="filters" onsubmit="return false">{"".join(parts)}</form>'


def _owners_html(run: RunSummary, context: ReportContext) -> str:
    """Leads per owner and grade with their expected value, over the whole run."""
    if not run.owners:
        return ""
    with_value = any(o.expected_value is not None for o in run.owners)
    head = f"<th>{OWNER_HEADER}</th><th>Leads</th>" + "".join(f"<th>{g}</th>" for g in "ABCD")
    head += f"<th>{_esc(context.value_header)}</th>" if with_value else ""
    rows = []
    for o in run.owners:
        cells = [f"<td>{_esc(o.owner)}</td>", f'<td class="num">{o.n:,}</td>']
        cells += [f'<td class="num">{o.grade_counts.get(g, 0):,}</td>' for g in "ABCD"]
        if with_value:
            value = "" if o.expected_value is None else f"{o.expected_value:,.0f}"
            cells.append(f'<td class="num">{value}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<h2>Leads per owner</h2><div class="wide"><table class="owners">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def accounts_html(accounts: pd.DataFrame | None, context: ReportContext, note: str | None) -> str:
    """The top accounts: who, grade, score, P(won), open leads, the top lead, buying-group
    coverage and the reasons ("" without account scoring)."""
    if accounts is None or accounts.empty:
        return ""
    shown = accounts.iloc[:ACCOUNTS_IN_HTML]
    body = []
    for _, row in shown.iterrows():
        names = [_text(row.get(c)) for c in context.account_display if c in row.index]
        names = [n for n in names if n]
        who = f"<b>{_esc(names[0])}</b> " if names else ""
        grade = _text(row.get("grade"))
        roles = _text(row.get("roles_engaged"))
        missing = _text(row.get("roles_missing"))
        coverage = _esc(roles or "no role known")
        if missing:
            coverage += f'<div class="detail">Missing: {_esc(missing)}</div>'
        body.append(
            f'<tr><td class="who">{who}<span class="id">{_esc(row["account_id"])}</span></td>'
            f'<td class="grade g{_esc(grade)}">{_esc(grade)}</td>'
            f"<td>{_esc(_text(row.get('score')))}</td>"
            f"<td>{_percent(row.get('p_won'))}</td>"
            f"<td>{_esc(_text(row.get('n_open_leads')))}, "
            f"top {_esc(_text(row.get('top_lead_id')))}</td>"
            f"<td>{coverage}</td>"
            f"<td>{_reason_list(row, reason_columns(shown, 'pos'), 'pos')}"
            f"{_reason_list(row, reason_columns(shown, 'neg'), 'neg')}</td></tr>"
        )
    heading = f"<h2>Accounts: the top {len(shown):,} of {len(accounts):,} with open leads</h2>"
    warn = f'<p class="warning">Note: {_esc(note)}</p>' if note else ""
    return (
        f'{heading}{warn}<div class="wide"><table class="accounts"><thead><tr><th>Account</th>'
        "<th>Grade</th><th>Score</th><th>P(won)</th><th>Open leads</th><th>Roles engaged</th>"
        f"<th>Reasons</th></tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def write_report_html(
    scores: pd.DataFrame,
    path: str | Path,
    context: ReportContext,
    summary: RunSummary | None = None,
    accounts: pd.DataFrame | None = None,
    accounts_note: str | None = None,
) -> Path:
    """Write one self-contained HTML page: the call list first, then the run's summary, the
    score chart, leads per owner and how to read it.

    No network resources: inline CSS, the chart as a base64 PNG ``data:`` URI, one inline
    script for the filter (the list is complete without it), no fonts. Every data value is
    HTML-escaped. ``context.top_n`` leads (default 200) are listed, per owner when the context
    names an owner column. The summary, chart and warnings come from ``summary`` (the whole
    run; default: ``scores``); the warnings stand at the top. ``accounts`` (account scoring,
    highest score first) add a section of the top accounts after the call list, headed by
    ``accounts_note`` when given.
    """
    ordered = sort_scores(scores)
    run = summary or RunSummary.of(scores, context.n_scored, context.owner_column)
    top_n = int(context.top_n or DEFAULT_TOP_N)
    title = str(context.title or DEFAULT_TITLE)
    listed = listed_leads(ordered, top_n, context.owner_column)
    per_owner = bool(context.owner_column and context.owner_column in ordered)
    which = f"the top {top_n:,} per owner" if per_owner else f"the top {top_n:,}"
    listing = (
        f"all {run.n_scored:,} leads"
        if len(listed) >= run.n_scored
        else f"{which} of {run.n_scored:,} leads ({len(listed):,} listed)"
    )
    warnings = "".join(f'<p class="warning">Warning: {_esc(w)}</p>' for w in run.warnings)
    how = "each owner's highest scores" if per_owner else "highest scores"
    items = summary_items(scores, context, run, listed=len(listed), listed_how=how)
    summary_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in items)
    chart = ""
    if sum(run.score_hist):
        png = base64.b64encode(score_chart_png(run.score_hist, context.thresholds)).decode("ascii")
        alt = f"Leads per score, coloured by grade ({grade_counts_text(run.grade_counts)})"
        chart = (
            f'<h2>Score distribution</h2><img alt="{_esc(alt)}" '
            f'src="data:image/png;base64,{png}" width="700" height="260">'
        )
    # the guide's last line is about the workbook's feedback columns
    guide = "".join(f"<li>{_esc(line)}</li>" for line in READING_GUIDE[:-1])
    model = context_value(context, scores, "model_name")
    version = context_value(context, scores, "model_version")
    as_of = date_text(context_value(context, scores, "as_of"))
    sections = [
        f"<h1>{_esc(title)}</h1>"
        f'<p class="meta">as of {_esc(as_of)} &middot; model {_esc(model)} {_esc(version)}</p>',
        warnings,
        f"<h2>Call list: {listing}, highest score first</h2>",
        _filters_html(listed, context),
        leads_table_html(listed, context),
        accounts_html(accounts, context, accounts_note),
        f'<h2>This run</h2><table class="summary">{summary_rows}</table>',
        chart,
        # the grade table (share, conversion rate and lift per grade) goes here
        _owners_html(run, context),
        f'<h2>How to read it</h2><ul class="guide">{guide}</ul>',
    ]
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}{REPORT_CSS}</style></head><body>"
        f"{''.join(sections)}<script>{FILTER_SCRIPT}</script></body></html>\n"
    )
    return write_text(path, page)
