"""The compliance report as one self-contained HTML page (and, through WeasyPrint, PDF).

No scripts and no outside resources: the page renders the same in a browser, in
WeasyPrint and years later. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Final

_COLOURS: Final = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "no_evidence": "#9a6700",
    "not_applicable": "#57606a",
}
_LABELS: Final = {
    "pass": "PASS",
    "fail": "FAIL",
    "no_evidence": "NO EVIDENCE",
    "not_applicable": "N/A",
}
_STYLE: Final = """
body { font-family: sans-serif; font-size: 10pt; margin: 1.5em; color: #1f2328; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.6em; } h3 { font-size: 11pt; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; } /* ids and hashes wrap: a page fits the reader's window */
.status { color: white; font-weight: bold; padding: 1px 6px; border-radius: 3px; }
.calendar td { width: 10px; height: 12px; padding: 0; font-size: 7pt; text-align: center; }
.ok { background: #2da44e; } .missed { background: #cf222e; } .none { background: #eaeef2; }
.small { font-size: 8pt; color: #57606a; }
@page { size: A4 landscape; margin: 1cm; }
"""


def _status(value: str) -> str:
    colour = _COLOURS.get(value, "#57606a")
    label = escape(_LABELS.get(value, value))
    return f'<span class="status" style="background:{colour}">{label}</span>'


def _summary(document: dict[str, Any]) -> list[str]:
    period = document["period"]
    audit = document["audit_trail"]
    parts = [
        f"<h1>strongroom compliance report: {_status(document['status'])}</h1>",
        "<table>",
        f"<tr><th>period</th><td>{escape(period['start'])} to {escape(period['end'])}</td></tr>",
        f"<tr><th>generated</th><td>{escape(document['generated_at'])} by "
        f"{escape(document['generated_by'])}</td></tr>",
        f"<tr><th>catalog</th><td>{escape(document['catalog'])}</td></tr>",
        f"<tr><th>audit trail</th><td>{'intact' if audit['intact'] else 'ALTERED'}, "
        f"{audit['entries']} entries, head {audit['head_seq']} "
        f"<span class='small'>{escape(str(audit['head_hash']))}</span></td></tr>",
        "</table>",
        "<table><tr><th>framework</th><th>status</th></tr>",
    ]
    for framework in document["frameworks"]:
        parts.append(
            f"<tr><td>{escape(framework['title'])}</td><td>{_status(framework['status'])}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _framework(framework: dict[str, Any]) -> list[str]:
    parts = [f"<h2>{escape(framework['title'])} {_status(framework['status'])}</h2>"]
    for requirement in framework["requirements"]:
        parts.append(
            f"<h3>{escape(requirement['text'])} {_status(requirement['status'])}</h3>"
            "<table><tr><th>control</th><th>status</th><th>summary</th><th>findings</th>"
            "<th>evidence</th></tr>"
        )
        for control in requirement["controls"]:
            findings = "".join(f"<li>{escape(item)}</li>" for item in control["findings"])
            evidence = "".join(
                f"<li>{escape(item['kind'])} <code>{escape(item['ref'])}</code> "
                f"{escape(item['note'])}</li>"
                for item in control["evidence"][:50]
            )
            more = len(control["evidence"]) - 50
            if more > 0:
                evidence += f"<li>… and {more} more (see the JSON report)</li>"
            parts.append(
                f"<tr><td>{escape(control['title'])}<br><span class='small'>"
                f"{escape(control['control'])}</span></td><td>{_status(control['status'])}</td>"
                f"<td>{escape(control['summary'])}</td><td><ul>{findings}</ul></td>"
                f"<td class='small'><ul>{evidence}</ul></td></tr>"
            )
        parts.append("</table>")
    return parts


def _calendar(coverage: dict[str, Any]) -> list[str]:
    days = coverage["days"]
    if not days or not coverage["resources"]:
        return []
    parts = [
        "<h2>Backup coverage by day</h2>",
        f"<p class='small'>{escape(days[0])} to {escape(days[-1])}; green: a completed "
        "backup, red: none, grey: not declared yet.</p><table class='calendar'>",
    ]
    for name, counts in coverage["resources"].items():
        cells = []
        for day, count in zip(days, counts, strict=True):
            kind = "none" if count is None else "ok" if count else "missed"
            cells.append(f"<td class='{kind}' title='{escape(day)}: {count}'></td>")
        parts.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    parts.append("</table>")
    return parts


def _restore_tests(tests: list[dict[str, Any]]) -> list[str]:
    if not tests:
        return ["<h2>Restore tests</h2><p>No restore test is recorded.</p>"]
    rows = "".join(
        f"<tr><td>{escape(test['at'][:19])}</td><td>{escape(test['resource'])}</td>"
        f"<td><code>{escape(test['point_id'])}</code></td>"
        f"<td><code>{escape(str(test['job_id']))}</code></td>"
        f"<td>{_status('pass' if test['ok'] else 'fail')}</td></tr>"
        for test in tests
    )
    return [
        "<h2>Restore tests</h2><table><tr><th>when</th><th>resource</th><th>point</th>"
        f"<th>job</th><th>result</th></tr>{rows}</table>"
    ]


def render(document: dict[str, Any]) -> str:
    """Return the report document as a complete HTML page."""
    body = _summary(document)
    body += _calendar(document["charts"]["coverage"])
    body += _restore_tests(document["charts"]["restore_tests"])
    for framework in document["frameworks"]:
        body += _framework(framework)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>strongroom compliance report {escape(document['period']['end'][:10])}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_pdf(document: dict[str, Any], path: Path) -> None:
    """Render the report as PDF at ``path`` (WeasyPrint, imported here: it is slow to load)."""
    from weasyprint import HTML

    HTML(string=render(document)).write_pdf(str(path))
