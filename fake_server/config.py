"""Server settings. Durations are real-client time; `scaled` applies the timescale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fake_server.behaviours import parse_behaviours
from fake_server.ratelimit import RATE_LIMIT

# Reference values (accord-protocol.md s.2), all in real-client time.
HEARTBEAT_INTERVAL_MS = 45_000
RESUME_WINDOW_S = 60.0
REPLAY_BUFFER = 256
HANDSHAKE_TIMEOUT_S = 30.0
SILENCE_DROP_S = 90.0
MAX_FRAME_BYTES = 1024 * 1024
# After READY: more than this many frames other than HEARTBEAT within the window -> 4008.
INBOUND_FRAME_LIMIT = 120
INBOUND_FRAME_WINDOW_S = 60.0


@dataclass(frozen=True)
class ServerConfig:
    db: Path = Path("fake-server.db")
    host: str = "127.0.0.1"
    port: int = 0
    control_host: str = "127.0.0.1"
    control_port: int | None = 0
    """None: no control HTTP listener (the Python API still works)."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    timescale: float = 1.0
    replay_buffer: int = REPLAY_BUFFER
    resume_window_s: float = RESUME_WINDOW_S
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    silence_drop_s: float = SILENCE_DROP_S
    control_token: str | None = None
    rate_limit: int | None = RATE_LIMIT
    """REST requests per 60 s (real-client time) per Authorization value; None = off."""
    behaviours: frozenset[str] = frozenset()
    """Opt-in behaviours by name (fake_server.behaviours.BEHAVIOURS)."""
    tls_names: tuple[str, ...] = ()
    """Extra DNS names in the generated certificate (besides 127.0.0.1 and localhost)."""
    plain_http: bool = False
    """Serve REST and the gateway in plain HTTP (http://, ws://), as the real server does
    behind its operators' TLS proxy; no TLS material is made or read."""
    history: str = "full"
    """`light`: frame and HTTP records are counted, not written (fake_server.history)."""

    def __post_init__(self) -> None:
        parse_behaviours(self.behaviours)  # raises naming the unknown one
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"rate_limit must be >= 1 or None (off), got {self.rate_limit}")
        if self.timescale <= 0:
            raise ValueError(f"timescale must be > 0, got {self.timescale}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.plain_http and self.tls_cert is not None:
            raise ValueError("plain_http serves no TLS: give no tls_cert / tls_key")

    def scaled(self, seconds: float) -> float:
        return seconds * self.timescale

    def has(self, behaviour: str) -> bool:
        parse_behaviours([behaviour])  # a misspelt name in the code fails loudly
        return behaviour in self.behaviours

    def scaled_ms(self, ms: int) -> int:
        # HELLO carries integer ms; never announce 0.
        return max(1, round(ms * self.timescale))

    @property
    def history_path(self) -> Path:
        return self.db.with_name(self.db.stem + ".history.jsonl")

    @property
    def tls_dir(self) -> Path:
        return self.db.with_name(self.db.stem + "-tls")
