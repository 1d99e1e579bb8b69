"""The history matrix as one static page: release x phase, each cell the verdict and the check that decided it,
linked to that campaign's report. Self-contained like shipgate/evidence/report: inline CSS, no scripts, no
external assets, a Content-Security-Policy that forbids every fetch."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from shipgate.evidence.models.release_history import HistoryCell, HistoryRow, ReleaseHistoryReport
from shipgate.evidence.report.render import CSP, clean_text
from shipgate.proof.history_record import PHASES

# The words of the outputs, shared with the Markdown (shipgate.proof.history).
OUTCOME_TEXT = {"as_expected": "as expected", "surprise": "SURPRISE", "error": "ERROR", "not_run": "not run"}
CELL_TEXT = {"expected_red": "red, as recorded", "expected_green": "green, as expected", "surprise": "SURPRISE",
             "error": "ERROR", "not_run": "not run"}


def cell_summary(cell: Any) -> str:
    """'fail: catchup.after_restart' — the verdict and the check(s) that decided it."""
    if cell.status == "not_run":
        return "·"
    ids = list(dict.fromkeys(c.id for c in cell.decisive))
    if cell.status == "pass":
        return f"pass ({cell.checks_total} check{'' if cell.checks_total == 1 else 's'})"
    more = f" +{len(ids) - 3}" if len(ids) > 3 else ""
    return f"{cell.status}: {', '.join(ids[:3])}{more}" if ids else cell.status


def mmss(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


DEFECT_TEXT = {"caught": "caught", "missed": "**GAP** (missed)", "uncovered": "no check yet",
               "undetermined": "undetermined", "not_observable": "not on the lab", "out_of_scope": "not exercised"}


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #c8ccd1;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f3f4f6}
td.c{min-width:11em}
.expected_red{background:#fde2e1}.expected_green{background:#dcf5e3}
.surprise{background:#ffe8a3;font-weight:600}.error{background:#e8d9f7}.not_run{color:#777}
.as_expected{background:#dcf5e3}
.why{color:#444;font-size:.9em}.ids{font-family:ui-monospace,monospace;font-size:.88em}
code{font-family:ui-monospace,monospace;font-size:.92em}
.banner{padding:.6em 1em;border-radius:4px;margin-bottom:1em}
.b0{background:#dcf5e3}.b1{background:#ffe8a3}.b2{background:#e8d9f7}
"""


def _e(text: object) -> str:
    return escape(clean_text(str(text)), quote=True)


def _href(row: HistoryRow) -> str | None:
    return f"{quote(row.run_dir)}/index.html" if row.run_dir else None


def _cell(row: HistoryRow, cell: HistoryCell) -> str:
    title = "; ".join(f"{c.artifact} {c.id}: {c.detail or c.status}" for c in cell.decisive[:4])
    text = _e(cell_summary(cell))
    href = _href(row)
    if href and cell.status != "not_run":
        anchor = (cell.decisive[0].artifact.removesuffix(".json") if cell.decisive
                  else "phase1-node-a" if cell.phase == 1 else f"phase{cell.phase}")
        text = f'<a href="{href}#{quote(anchor)}">{text}</a>'
    extra = ""
    if cell.explained_by:
        extra += f'<div class="why">explained: {_e(", ".join(cell.explained_by))}</div>'
    if cell.gaps:
        extra += f'<div class="why">gap: {_e(", ".join(cell.gaps))}</div>'
    if cell.unexplained:
        extra += f'<div class="why">unexplained: <span class="ids">{_e(", ".join(cell.unexplained))}</span></div>'
    return (f'<td class="c {cell.outcome}" title="{_e(title)}"><span class="ids">{text}</span>'
            f'<div class="why">{_e(CELL_TEXT[cell.outcome])}</div>{extra}</td>')


def _matrix(report: ReleaseHistoryReport) -> str:
    head = "".join(f"<th>phase {p}</th>" for p in PHASES)
    lines = [f"<table><thead><tr><th>release</th>{head}<th>outcome</th><th>wall</th></tr></thead><tbody>"]
    for row in report.rows:
        by = {c.phase: c for c in row.cells}
        if row.cells:
            cells = "".join(_cell(row, by[p]) if p in by else '<td class="not_run">·</td>' for p in PHASES)
        else:
            cells = f'<td colspan="4" class="{row.outcome}">{_e(row.reason or row.status)}</td>'
        href = _href(row)
        name = f'<a href="{href}">{_e(row.version)}</a>' if href else _e(row.version)
        lines.append(f'<tr id="r-{_e(row.version)}"><th>{name}</th>{cells}'
                     f'<td class="{row.outcome}"><a href="#d-{_e(row.version)}">{_e(OUTCOME_TEXT[row.outcome])}</a>'
                     f'</td><td>{_e(mmss(row.wall_s))}</td></tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _details(row: HistoryRow) -> str:
    out = [f'<h2 id="d-{_e(row.version)}">{_e(row.version)} — {_e(OUTCOME_TEXT[row.outcome])}</h2>']
    if row.run_dir:
        out.append(f'<p>Campaign <a href="{_href(row)}"><code>{_e(row.run_dir)}</code></a>: {_e(row.verdict)} '
                   f'(exit {_e(row.exit_code)}).</p>')
    if row.reason:
        out.append(f"<p>Reason: {_e(row.reason)}</p>")
    if row.expected_current_gate:
        out.append(f'<p class="why">The record\'s prediction: {_e(row.expected_current_gate)}</p>')
    if row.surprises:
        out.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in row.surprises) + "</ul>")
    if row.defects:
        out.append("<table><thead><tr><th>defect</th><th>fixed in</th><th>check</th><th>outcome</th><th>why</th>"
                   "<th>record</th></tr></thead><tbody>")
        for d in row.defects:
            cls = "surprise" if d.surprise else "expected_red" if d.outcome == "caught" else ""
            out.append(f'<tr><td><code>{_e(d.id)}</code></td><td>{_e(d.fixed_in)}</td>'
                       f'<td class="ids">{_e(", ".join(d.patterns) or "–")}{" (proposed)" if d.proposed else ""}</td>'
                       f'<td class="{cls}">{_e(DEFECT_TEXT[d.outcome].replace("**", ""))}</td>'
                       f'<td class="why">{_e(d.why)}</td><td class="why">{_e(d.source)}</td></tr>')
        out.append("</tbody></table>")
    return "\n".join(out)


def render_html(report: ReleaseHistoryReport) -> str:
    banner = (f"{len(report.rows)} release(s): {report.as_expected} as the record expects, {report.surprises} with "
              f"a surprise, {report.errors} not judged — exit {report.exit_code}"
              + (" (interrupted)" if report.interrupted else ""))
    body = [f'<div class="banner b{report.exit_code}"><h1>ai-memory release history: {_e(report.history_id)}</h1>'
            f"<p>{_e(banner)}</p>"
            f"<p>Shape {_e(report.shape)}: {_e(report.shape_description)}. Record <code>{_e(report.record)}</code> "
            f"(sha256 {_e(report.record_sha256[:12])}). {_e(report.selection)}. Wall time "
            f"{_e(mmss(report.duration_s))}.</p></div>",
            _matrix(report),
            '<p class="why">Each cell: the phase\'s verdict and the check(s) that decided it (hover for details, '
            "click for the campaign's report), then the comparison with the record.</p>",
            *[_details(r) for r in report.rows]]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>ai-memory release history · {_e(report.history_id)}</title>\n<style>{CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
