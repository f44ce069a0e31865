"""report.html: one self-contained page that shows what a run's summary.json says.

The page must open anywhere, offline, from a file:// URL, and years later: so it has
no scripts, no external CSS, fonts or images. The chart is SVG drawn here in Python.
A Content-Security-Policy meta tag makes the browser refuse any network fetch, should
anything ever slip in. Every piece of text comes from the run (file names, error
messages) and is escaped.

Stdlib only: this is imported by the driver after a run, and by people reading an old
summary.json on a laptop without Ray or Paddle.
"""

from __future__ import annotations

import html
import logging
import math
import os

from ray_ocr.io.outputs import atomic_write_text

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"

# Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito,
# then Tableau): actor N always gets colour N % len within one page.
_PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
            "#000000", "#8c564b", "#7f7f7f", "#bcbd22")

_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #666; margin: 0 0 16px; }
.warn { background: #fff3cd; border: 1px solid #e0c36a; padding: 6px 10px; }
.stats { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
.stats div { border: 1px solid #ddd; border-radius: 4px; padding: 6px 12px; min-width: 90px; }
.stats dt { color: #666; font-size: 12px; }
.stats dd { margin: 0; font-size: 20px; font-variant-numeric: tabular-nums; }
.stats .bad dd { color: #b00020; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
.n { text-align: right; }
td.n { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.msg { word-break: break-word; font-family: ui-monospace, monospace; font-size: 12px; }
.ratio { display: inline-block; width: 60px; height: 8px; background: #eee;
         margin-left: 6px; vertical-align: middle; }
.ratio span { display: block; height: 100%; background: #9ab; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 4px 0 0 60px; }
.swatch { display: inline-block; width: 14px; height: 3px; vertical-align: middle;
          margin-right: 6px; }
.none { color: #666; font-style: italic; }
svg.chart { max-width: 100%; height: auto; }
svg text { font-size: 11px; fill: #444; }
"""

# The page may load nothing at all; inline styles are its only resource.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def _rate(value) -> str:
    """2 decimals, but keep 3 significant digits for slow runs (0.0123 files/s)."""
    if not _is_num(value):
        return "—"
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def _seconds(value) -> str:
    return f"{value:.1f}" if _is_num(value) else "—"


def _short_node(node) -> str:
    """Ray node ids are 56 hex digits; 8 are enough to tell nodes apart on one page."""
    node = "" if node is None else str(node)
    return node[:8] + "…" if len(node) > 12 else (node or "—")


# -- failures -------------------------------------------------------------------

def _failure_rows(summary: dict) -> list[dict]:
    return [r for r in summary.get("failure_records") or [] if isinstance(r, dict)]


# -- chart ----------------------------------------------------------------------

def _nice_step(span: float, target_ticks: int = 6) -> float:
    """A 1/2/5 x 10^k step giving about `target_ticks` ticks over `span`."""
    raw = span / max(target_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _ticks(top: float, round_up: bool = True) -> tuple[list[float], float]:
    """Ticks from 0, and the axis end: the first tick at or above `top`, or `top`
    itself (the time axis ends when the run did, not at the next round number)."""
    top = top if top > 0 else 1.0
    step = _nice_step(top)
    count = math.ceil(top / step - 1e-9) if round_up else math.floor(top / step + 1e-9)
    return [i * step for i in range(count + 1)], count * step if round_up else top


def _tick_label(value: float) -> str:
    # Ticks are 1/2/5 steps, so whole numbers above 1: "1,500,000", never "1.5e+06".
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _chart(summary: dict, actor_names: list[str]) -> str:
    events = [ev for ev in summary.get("timeline") or [] if isinstance(ev, dict)]
    if not events:
        return '<p class="none">No timeline in this summary.</p>'
    # Pages is what an OCR run is paid for; a run with no pages (all failed) still
    # shows its progress in files.
    unit = "pages" if any(ev.get("pages") for ev in events) else "files"
    series: dict[str, list[tuple[float, float]]] = {name: [(0.0, 0.0)] for name in actor_names}
    for ev in sorted(events, key=lambda ev: float(ev.get("t") or 0)):
        points = series.setdefault(str(ev.get("actor")), [(0.0, 0.0)])
        points.append((float(ev.get("t") or 0), points[-1][1] + float(ev.get(unit) or 0)))
    last_t = max(t for points in series.values() for t, _ in points)
    wall = summary.get("wall_seconds")
    x_end_raw = max(last_t, float(wall) if _is_num(wall) else 0.0)
    # Each line runs on flat to the end of the run, so idle tails stay visible.
    for points in series.values():
        points.append((x_end_raw, points[-1][1]))

    x_ticks, x_end = _ticks(x_end_raw, round_up=False)
    y_ticks, y_end = _ticks(max(y for points in series.values() for _, y in points))
    width, height, left, right, top, bottom = 900, 320, 60, 20, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(t: float) -> float:
        return left + plot_w * t / x_end

    def sy(v: float) -> float:
        return top + plot_h * (1 - v / y_end)

    bottom_y = top + plot_h
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="cumulative {unit} per actor over time">']
    for v in y_ticks:  # gridline and label
        y = sy(v)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick_label(v)}</text>')
    for t in x_ticks:  # tick mark and label
        x = sx(t)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom_y}" y2="{bottom_y + 4}" stroke="#444"/>'
            f'<text x="{x:.1f}" y="{bottom_y + 16}" text-anchor="middle">{_tick_label(t)}</text>')
    parts.append(
        f'<path d="M{left},{top}V{bottom_y}H{width - right}" fill="none" stroke="#444"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
        'seconds since start</text>'
        f'<text transform="translate(14,{top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f'cumulative {unit}</text>')
    legend = []
    for i, (name, points) in enumerate(series.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in points)
        parts.append(
            f'<polyline class="series" data-actor="{_e(name)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="2" stroke-linejoin="round">'
            f'<title>{_e(name)}: {_tick_label(points[-1][1])} {unit}</title></polyline>')
        legend.append(f'<span><span class="swatch" style="background:{colour}"></span>'
                      f'{_e(name)}</span>')
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


# -- page -----------------------------------------------------------------------

def _stats(summary: dict) -> str:
    cells = [
        ("inputs", "inputs", _int(summary.get("inputs"))),
        ("succeeded", "succeeded", _int(summary.get("succeeded"))),
        ("failed", "failed", _int(summary.get("failed"))),
        ("skipped", "skipped", _int(summary.get("skipped"))),
        ("pages", "pages", _int(summary.get("pages"))),
        ("wall_seconds", "wall seconds", _seconds(summary.get("wall_seconds"))),
        ("files_per_second", "files/s", _rate(summary.get("files_per_second"))),
        ("pages_per_second", "pages/s", _rate(summary.get("pages_per_second"))),
    ]
    out = []
    for key, label, value in cells:
        bad = ' class="bad"' if key == "failed" and summary.get("failed") else ""
        out.append(f'<div{bad}><dt>{_e(label)}</dt><dd id="stat-{key}">{_e(value)}</dd></div>')
    return f'<dl class="stats">{"".join(out)}</dl>'


def _actor_table(actors: dict, wall) -> str:
    if not actors:
        return '<p class="none">No actors in this summary.</p>'
    rows = []
    for name, stats in actors.items():
        stats = stats if isinstance(stats, dict) else {}
        busy = stats.get("busy_seconds")
        ratio_cell = "—"
        if _is_num(busy) and _is_num(wall) and wall > 0:
            ratio = busy / wall
            # Bar capped at 100%: rounding can put busy a hair above wall.
            bar = min(ratio, 1) * 100
            ratio_cell = (f'{ratio:.0%}<span class="ratio">'
                          f'<span style="width:{bar:.0f}%"></span></span>')
        gpus = ",".join(str(g) for g in stats.get("gpu_ids") or []) or "—"
        node = stats.get("node")
        cvd = stats.get("cuda_visible_devices")
        cvd = "(unset)" if cvd is None else cvd
        rows.append(
            f"<tr><td>{_e(name)}</td>"
            f'<td title="{_e(node or "")}">{_e(_short_node(node))}</td>'
            f'<td title="CUDA_VISIBLE_DEVICES={_e(cvd)}">{_e(gpus)}</td>'
            f'<td class="n">{_e(_int(stats.get("batches")))}</td>'
            f'<td class="n">{_e(_seconds(busy))}</td>'
            f'<td class="n">{ratio_cell}</td>'
            f'<td class="n">{_e(_int(stats.get("restarts")))}</td></tr>')
    return ('<table id="actors"><thead><tr><th>actor</th><th>node</th><th>GPU ids</th>'
            '<th class="n">batches</th><th class="n">busy s</th><th class="n">busy ratio</th>'
            '<th class="n">restarts</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _failure_table(rows: list[dict]) -> str:
    if not rows:
        return '<p class="none">No failures.</p>'
    body = "".join(
        f'<tr><td>{_e(r.get("key", "—"))}</td><td>{_e(r.get("stage", "—"))}</td>'
        f'<td>{_e(r.get("error_type", "—"))}</td><td class="msg">{_e(r.get("message", ""))}</td>'
        f'<td class="n">{_e(r.get("attempts", "—"))}</td></tr>'
        for r in rows)
    return ('<table id="failures"><thead><tr><th>file</th><th>stage</th><th>error type</th>'
            '<th>message</th><th class="n">attempts</th></tr></thead>'
            f'<tbody>{body}</tbody></table>')


def render_report(summary: dict) -> str:
    """The HTML page for one summary.json dict; missing keys render as "—" or a note."""
    actors = summary.get("actors") if isinstance(summary.get("actors"), dict) else {}
    failures = _failure_rows(summary)
    title = f"ray_ocr run: {summary.get('pipeline') or 'unknown pipeline'}"
    sub = f"device {summary.get('device') or '—'}"
    if summary.get("recycled_actors"):
        sub += f" · actors recycled: {summary['recycled_actors']}"
    warn = ('<p class="warn">This run was interrupted: the numbers cover only what finished.</p>'
            if summary.get("interrupted") else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">{_e(sub)}</p>
{warn}
{_stats(summary)}
<h2>Throughput per actor</h2>
{_chart(summary, list(actors))}
<h2>Actors ({len(actors)})</h2>
{_actor_table(actors, summary.get("wall_seconds"))}
<h2>Failures ({len(failures)})</h2>
{_failure_table(failures)}
</body>
</html>
"""


def write_report(output_dir: str, summary: dict) -> str:
    """Write report.html next to summary.json (atomically: a reader never sees half a
    page) and return its path."""
    path = os.path.join(output_dir, REPORT_NAME)
    atomic_write_text(path, render_report(summary))
    logger.debug("wrote %s", path)
    return path
