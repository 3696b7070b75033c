"""Chaos layer: the real Toxiproxy (network faults) and process faults.

See docs/chaos.md for the public API and how scenarios use it.
"""

from chaos.faults import FaultBackend, LocalProcessBackend, ProcessChaos, UnknownTarget
from chaos.network import ActiveFault, ChaosError, NetworkChaos, ProxyInfo, ServerProxies
from chaos.processes import FakeServerInfo, FakeServerProcess, ManagedProcess, ProcessFailed
from chaos.recording import (
    ClockedTimeline,
    FaultLog,
    ListSink,
    NullSink,
    RecordSink,
    TimelineSink,
    as_sink,
)
from chaos.toxics import (
    TOXIC_TYPES,
    BandwidthToxic,
    LatencyToxic,
    LimitDataToxic,
    ResetPeerToxic,
    SlicerToxic,
    SlowCloseToxic,
    TimeoutToxic,
    ToxicSpec,
    ToxicSpecError,
    parse_toxic,
    scale_duration,
    scale_rate,
)
from chaos.toxiproxy_api import (
    ProxyExists,
    ProxyNotFound,
    ToxicRejected,
    ToxiproxyApi,
    ToxiproxyError,
)
from chaos.toxiproxy_server import ToxiproxyServer, ToxiproxyUnavailable, find_binary, free_port

__all__ = [
    "TOXIC_TYPES",
    "ActiveFault",
    "BandwidthToxic",
    "ChaosError",
    "ClockedTimeline",
    "FakeServerInfo",
    "FakeServerProcess",
    "FaultBackend",
    "FaultLog",
    "LatencyToxic",
    "LimitDataToxic",
    "ListSink",
    "LocalProcessBackend",
    "ManagedProcess",
    "NetworkChaos",
    "NullSink",
    "ProcessChaos",
    "ProcessFailed",
    "ProxyExists",
    "ProxyInfo",
    "ProxyNotFound",
    "RecordSink",
    "ResetPeerToxic",
    "ServerProxies",
    "SlicerToxic",
    "SlowCloseToxic",
    "TimelineSink",
    "TimeoutToxic",
    "ToxicRejected",
    "ToxicSpec",
    "ToxicSpecError",
    "ToxiproxyApi",
    "ToxiproxyError",
    "ToxiproxyServer",
    "ToxiproxyUnavailable",
    "UnknownTarget",
    "as_sink",
    "find_binary",
    "free_port",
    "parse_toxic",
    "scale_duration",
    "scale_rate",
]
