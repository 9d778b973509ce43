"""The human-readable drift report: one self-contained HTML page (inline CSS and SVG, no
script, no external asset), per feature a histogram of reference vs current shares."""

from __future__ import annotations

from html import escape
from typing import Any

REFERENCE_COLOR = "#5b7fa3"
CURRENT_COLOR = "#e0803a"
CHART_WIDTH = 560
CHART_HEIGHT = 150
MAX_BARS = 40


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def histogram_svg(labels: list[str], reference: list[float], current: list[float]) -> str:
    """Paired bars per bin; a bin's label and both shares are in its <title> tooltip."""
    bins = min(len(labels), MAX_BARS)
    if bins == 0:
        return ""
    top = max([*reference[:bins], *current[:bins], 1e-12])
    slot = CHART_WIDTH / bins
    bar = max(slot / 2 - 1, 0.5)
    parts = [
        f'<svg class="histogram" width="{CHART_WIDTH}" height="{CHART_HEIGHT + 4}" viewBox="0 0 {CHART_WIDTH} '
        f'{CHART_HEIGHT + 4}" role="img" aria-label="reference vs current shares">'
    ]
    for i in range(bins):
        for offset, shares, color, who in (
            (0.0, reference, REFERENCE_COLOR, "reference"),
            (bar, current, CURRENT_COLOR, "current"),
        ):
            share = shares[i] if i < len(shares) else 0.0
            height = CHART_HEIGHT * share / top
            x = i * slot + offset
            parts.append(
                f'<rect x="{x:.1f}" y="{CHART_HEIGHT - height:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{color}"><title>{escape(str(labels[i]))}: {who} {share:.2%}</title></rect>'
            )
    parts.append(f'<line x1="0" y1="{CHART_HEIGHT}" x2="{CHART_WIDTH}" y2="{CHART_HEIGHT}" stroke="#999"/></svg>')
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    details: dict[str, Any] = report.get("details", {})
    title = f"Drift report: {report.get('model', '')} v{report.get('version', '')} — {report.get('date', '')}"
    verdict = "DRIFT" if report.get("dataset_drift") else "no dataset drift"
    rows = []
    sections = []
    names = list(report.get("features", {}))
    if report.get("prediction"):
        names.append("prediction")
    for name in names:
        feature = (
            report["prediction"]
            if name == "prediction" and name not in report["features"]
            else report["features"][name]
        )
        detail = details.get(name, {})
        state = "drifted" if feature.get("drifted") else "ok"
        rows.append(
            f'<tr class="{state}"><td>{escape(name)}</td><td>{_number(feature.get("test"))}</td>'
            f"<td>{_number(feature.get('statistic'))}</td><td>{_number(feature.get('p_value'))}</td>"
            f"<td>{_number(feature.get('psi'))}</td><td>{_number(detail.get('current_missing_rate'))}</td>"
            f"<td>{'DRIFT' if feature.get('drifted') else 'ok'}</td></tr>"
        )
        histogram = detail.get("histogram") or {}
        note = f'<p class="note">{escape(detail["note"])}</p>' if detail.get("note") else ""
        sections.append(
            f"<section><h3>{escape(name)} <small>{escape(str(detail.get('kind', '')))}"
            f"{' — DRIFT' if feature.get('drifted') else ''}</small></h3>{note}"
            + histogram_svg(histogram.get("labels", []), histogram.get("reference", []), histogram.get("current", []))
            + "</section>"
        )
    meta = report.get("current_rows", {})
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>"
        "body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse}"
        "td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}tr.drifted td{background:#fde8e0}"
        f".key span{{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}}.note{{color:#a00}}"
        "</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p><strong>{verdict}</strong>: {len(report.get('drifted_features', []))} of "
        f"{len(report.get('features', {}))} features drifted (share {_number(report.get('share_drifted'))}, "
        f"dataset drift at {_number(report.get('drift_share'))}). Window {escape(str(report.get('window_start', '')))} "
        f"to {escape(str(report.get('window_end', '')))}; current rows: captured {_number(meta.get('captured'))}, "
        f"batch {_number(meta.get('batch'))}. Reference: {escape(str(report.get('reference', '')))}.</p>"
        f'<p class="key"><span style="background:{REFERENCE_COLOR}"></span>reference'
        f'<span style="background:{CURRENT_COLOR}"></span>current</p>'
        "<table><thead><tr><th>feature</th><th>test</th><th>statistic</th><th>p-value</th><th>PSI</th>"
        "<th>missing (current)</th><th>verdict</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + "".join(sections)
        + "</body></html>"
    )
