"""The timeline picture renders from a synthetic timeline."""

from __future__ import annotations

import struct
from pathlib import Path

from synthetic_timeline import outage_timeline

from reports.timeline_png import render_timeline_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_renders_a_readable_png(tmp_path: Path) -> None:
    out = render_timeline_png(outage_timeline(), tmp_path / "sub" / "timeline.png", "outage")
    width, height = _png_size(out)
    assert 1200 <= width <= 2400 and 400 <= height <= 4000
    assert out.stat().st_size > 20_000  # lanes, bars and text, not a blank canvas


def test_more_servers_make_a_taller_picture(tmp_path: Path) -> None:
    one = [r for r in outage_timeline() if "beta" not in str(r["data"])]
    _, short = _png_size(render_timeline_png(one, tmp_path / "one.png"))
    _, tall = _png_size(render_timeline_png(outage_timeline(), tmp_path / "two.png"))
    assert tall > short


def test_an_empty_or_failed_run_still_renders(tmp_path: Path) -> None:
    assert _png_size(render_timeline_png([], tmp_path / "empty.png"))[0] > 0
    failed = outage_timeline(failed_last_step=True)[:-1]  # ends inside nothing
    assert _png_size(render_timeline_png(failed, tmp_path / "failed.png"))[0] > 0
