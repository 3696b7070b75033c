"""A timeline picture of one scenario run (matplotlib, Agg, PNG).

Lanes over run time, top to bottom: the scenario's steps, the fault windows,
then per server its connection status, its banner and its queue depth.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from reports.timeline_data import Lanes, Segment, build_lanes

STATUS_COLORS = {
    "connecting": "#f6d55c",
    "syncing": "#8ecae6",
    "connected": "#52b788",
    "disconnected": "#f4a261",
    "reconnecting": "#e9c46a",
    "error": "#e63946",
    "none": "#dddddd",
}
BANNER_COLORS = {"yellow": "#ffd60a", "green": "#70e000", "red": "#ef233c", "none": "#f1f1f1"}
FAULT_COLORS = {
    "latency": "#9d4edd",
    "bandwidth": "#7b2cbf",
    "slow_close": "#c77dff",
    "timeout": "#3a0ca3",
    "reset_peer": "#d00000",
    "slicer": "#4895ef",
    "limit_data": "#f72585",
    "down": "#222222",
    "kill": "#6a040f",
    "freeze": "#48cae4",
    "restart": "#ff8800",
}
FIG_WIDTH = 15.0  # inches
CHARS_ACROSS = 190  # about how many 7pt characters fit across the time axis


def render_timeline_png(records: Iterable[Any], out: Path, title: str = "", dpi: int = 110) -> Path:
    """Draw the run's lanes into `out` (a .png) and return its path."""
    lanes = build_lanes(records)
    span = max(lanes.end, 1e-3)
    rows = _layout(lanes)
    heights = [height for _, height, _ in rows]
    fig_height = min(40.0, 1.2 + sum(heights) * 0.55 + _step_legend_lines(lanes) * 0.16)
    fig = plt.figure(figsize=(FIG_WIDTH, fig_height))
    legend_share = (_step_legend_lines(lanes) * 0.16 + 0.3) / fig_height
    grid = fig.add_gridspec(
        len(rows), 1, height_ratios=heights, hspace=0.35,
        left=0.13, right=0.98, top=1 - 0.5 / fig_height, bottom=legend_share,
    )  # fmt: skip
    axes: list[Axes] = []
    for index, (label, _, draw) in enumerate(rows):
        ax = fig.add_subplot(grid[index], sharex=axes[0] if axes else None)
        axes.append(ax)
        draw(ax, lanes, span)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xlim(0, span * 1.01)
        ax.tick_params(axis="x", labelbottom=False, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        for step in lanes.steps:  # step starts as faint guides across every lane
            ax.axvline(step.start, color="#999999", lw=0.5, ls=":", zorder=0)
    axes[-1].tick_params(axis="x", labelbottom=True)
    axes[-1].set_xlabel("run time (s)", fontsize=8)
    fig.suptitle(title or "scenario timeline", fontsize=10, x=0.13, ha="left")
    _step_legend(fig, lanes)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- layout


def _layout(lanes: Lanes) -> list[tuple[str, float, Any]]:
    rows: list[tuple[str, float, Any]] = [("steps", 0.8, _draw_steps)]
    rows.append(("faults", max(0.8, 0.45 * len(lanes.faults)), _draw_faults))
    for server in lanes.servers:
        rows.append((f"{server}\nstatus", 0.8, _status_drawer(server)))
        rows.append((f"{server}\nbanner", 0.8, _banner_drawer(server)))
        if server in lanes.queue:
            rows.append((f"{server}\nqueue", 1.0, _queue_drawer(server)))
    return rows


def _segments(ax: Axes, segments: list[Segment], colors: dict[str, str], span: float) -> None:
    for seg in segments:
        width = max(seg.end - seg.start, span * 0.002)
        color = colors.get(seg.value, "#bbbbbb")
        ax.broken_barh([(seg.start, width)], (0.1, 0.8), facecolors=color, edgecolor="white")
        _label(ax, seg.start, width, 0.5, seg.label, span)
    ax.set_ylim(0, 1)
    ax.set_yticks([])


def _label(ax: Axes, start: float, width: float, y: float, text: str, span: float) -> None:
    """Write `text` inside a bar, cut to what fits; nothing when almost nothing fits."""
    fits = int(width / span * CHARS_ACROSS)
    if not text or fits < 3:
        return
    shown = text if len(text) <= fits else text[: max(1, fits - 1)] + "…"
    ax.text(start + width * 0.01, y, shown, va="center", ha="left", fontsize=7, clip_on=True)


def _draw_steps(ax: Axes, lanes: Lanes, span: float) -> None:
    last_x, level = -span, 0
    for step in lanes.steps:
        end = step.end if step.end is not None else lanes.end
        width = max(end - step.start, span * 0.003)
        color = {True: "#95d5b2", False: "#e63946", None: "#adb5bd"}[step.ok]
        ax.broken_barh([(step.start, width)], (0.15, 0.7), facecolors=color, edgecolor="#555555")
        # Instant steps pile up at one time: stagger their numbers over three heights.
        level = (level + 1) % 3 if step.start - last_x < span * 0.015 else 1
        last_x = step.start
        ax.text(step.start, (0.27, 0.5, 0.73)[level], f" {step.index + 1}", va="center",
                ha="left", fontsize=6.5, clip_on=True)  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_yticks([])


def _draw_faults(ax: Axes, lanes: Lanes, span: float) -> None:
    if not lanes.faults:
        ax.text(0.5, 0.5, "no faults", transform=ax.transAxes, ha="center", va="center",
                fontsize=7, color="#888888")  # fmt: skip
    for row, fault in enumerate(reversed(lanes.faults)):
        width = max(fault.end - fault.start, span * 0.003)
        color = FAULT_COLORS.get(fault.name, "#666666")
        ax.broken_barh(
            [(fault.start, width)], (row + 0.15, 0.7), facecolors=color, alpha=0.85,
            hatch="//" if fault.open_ended else None, edgecolor="white",
        )  # fmt: skip
        text = f"{fault.name} {fault.target} {fault.detail}".strip()
        # Labels sit to the right of short bars, so they stay readable.
        inside = width / span * CHARS_ACROSS >= len(text)
        x = fault.start + (span * 0.003 if inside else width + span * 0.004)
        light = inside and _is_light(color)
        ax.text(x, row + 0.5, text, va="center", ha="left", fontsize=7, clip_on=True,
                color="white" if inside and not light else "black")  # fmt: skip
    ax.set_ylim(0, max(1, len(lanes.faults)))
    ax.set_yticks([])


def _is_light(color: str) -> bool:
    red, green, blue = matplotlib.colors.to_rgb(color)
    return 0.299 * red + 0.587 * green + 0.114 * blue > 0.6


def _status_drawer(server: str) -> Any:
    def draw(ax: Axes, lanes: Lanes, span: float) -> None:
        _segments(ax, lanes.status.get(server, []), STATUS_COLORS, span)

    return draw


def _banner_drawer(server: str) -> Any:
    def draw(ax: Axes, lanes: Lanes, span: float) -> None:
        segments = lanes.banners.get(server, [])
        if not segments:
            ax.text(0.5, 0.5, "no view records", transform=ax.transAxes, ha="center",
                    va="center", fontsize=7, color="#888888")  # fmt: skip
        _segments(ax, segments, BANNER_COLORS, span)

    return draw


def _queue_drawer(server: str) -> Any:
    def draw(ax: Axes, lanes: Lanes, span: float) -> None:
        points = lanes.queue.get(server, [])
        times = [0.0] + [t for t, _ in points] + [lanes.end]
        depths = [0] + [d for _, d in points] + [points[-1][1] if points else 0]
        ax.step(times, depths, where="post", color="#1d3557", lw=1.2)
        ax.fill_between(times, depths, step="post", color="#a8dadc", alpha=0.6)
        top = max([*depths, 1])
        ax.set_ylim(0, top * 1.25)
        ax.set_yticks([0, top])

    return draw


# --------------------------------------------------------------------------- legend


def _step_legend_lines(lanes: Lanes) -> int:
    return len(lanes.steps) + 2


def _step_legend(fig: Any, lanes: Lanes) -> None:
    """The numbered steps as text under the lanes, and the colour keys."""
    lines = []
    for step in lanes.steps:
        verdict = {True: "ok", False: "FAILED", None: "not finished"}[step.ok]
        end = f"{step.end:.2f}" if step.end is not None else "…"
        lines.append(
            f"{step.index + 1:>2}. [{step.start:.2f}–{end}s] {step.text[:150]}  ({verdict})"
        )
    if lines:
        fig.text(0.25, 0.12, "\n".join(lines), fontsize=7, family="monospace",
                 va="bottom", ha="left", transform=fig.dpi_scale_trans)  # fmt: skip
    keys = [Patch(color=c, label=s) for s, c in STATUS_COLORS.items()]
    keys += [Patch(color=c, label=f"banner {b}") for b, c in BANNER_COLORS.items() if b != "none"]
    fig.legend(handles=keys, loc="upper right", ncol=(len(keys) + 1) // 2, fontsize=6,
               frameon=False, bbox_to_anchor=(0.98, 1.0))  # fmt: skip
