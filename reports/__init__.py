"""Reports from timelines: timeline PNGs, Allure steps and attachments, the
terminal summary and the HTML report (docs/reports.md)."""

from reports.redact import redact
from reports.timeline_data import (
    FaultWindow,
    Lanes,
    Segment,
    StepMark,
    TimelineFormatError,
    build_lanes,
    load_records,
)

__all__ = [
    "FaultWindow",
    "Lanes",
    "Segment",
    "StepMark",
    "TimelineFormatError",
    "build_lanes",
    "load_records",
    "redact",
]
