"""Charts as inline SVG, drawn on the server: no chart library, no script.

The sync page's chart: one bar per run for the records it sent (created + updated), coloured
by outcome, and a line for the run's duration on its own scale. Each bar has a ``<title>``
(a tooltip) with the run's numbers.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from ticketbridge.engine.state.base import RunRow

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 16, 28
COLOURS = {"ok": "#2e7d32", "partial": "#ef6c00", "failed": "#c62828", "crashed": "#6a1b9a"}


def _seconds(run: RunRow) -> float:
    if run.finished_at is None:
        return 0.0
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def _nice(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def runs_chart(runs: list[RunRow]) -> Markup:
    """The chart of ``runs`` (oldest first); an empty note when there are none."""
    if not runs:
        return Markup('<p class="muted">No runs to chart yet.</p>')
    sent = [r.counters.created + r.counters.updated for r in runs]
    took = [_seconds(r) for r in runs]
    top_sent = max(max(sent), 1)
    top_took = max(max(took), 0.1)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    step = plot_w / len(runs)
    bar = min(24.0, max(1.0, step * 0.7))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Records sent and duration of the last {len(runs)} runs" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#999"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" class="axis">'
        f"{_nice(top_sent)}</text>",
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" class="axis">0</text>',
        f'<text x="{LEFT + plot_w + 6}" y="{TOP + 10}" class="axis">{_nice(top_took)} s</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}" class="axis">'
        f"{runs[0].started_at:%Y-%m-%d %H:%M}</text>",
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 8}" text-anchor="end" class="axis">'
        f"{runs[-1].started_at:%Y-%m-%d %H:%M}</text>",
    ]
    points = []
    for i, (run, n, secs) in enumerate(zip(runs, sent, took, strict=True)):
        x = LEFT + i * step + (step - bar) / 2
        h = plot_h * n / top_sent
        colour = COLOURS.get(run.outcome, "#757575")
        label = escape(
            f"run {run.id} ({run.kind}, {run.outcome}) {run.started_at:%Y-%m-%d %H:%M}: "
            f"{n} sent, {run.counters.rejected} rejected, {secs:.1f} s"
        )
        parts.append(
            f'<a href="/runs/{run.id}"><rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{bar:.1f}" height="{max(h, 0.5):.1f}" fill="{colour}">'
            f"<title>{label}</title></rect></a>"
        )
        points.append(f"{x + bar / 2:.1f},{TOP + plot_h - plot_h * secs / top_took:.1f}")
    parts.append(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
    )
    parts.append("</svg>")
    # Safe: every value in it is a number, a date or escaped above.
    return Markup("".join(parts))  # noqa: S704
