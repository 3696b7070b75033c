"""What the user could see at one instant, in the rig's own terms.

Conditions and timeline assertions are written against `Observation`, not against
the view models' dicts, so that the scenario language stays stable while the
client's UI code evolves; `scenarios.observe` builds observations from a timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BannerSeen:
    color: str | None  # None = hidden
    text: str = ""
    button: str | None = None

    def __str__(self) -> str:
        if self.color is None:
            return "hidden"
        button = f" [{self.button}]" if self.button else ""
        return f"{self.color} {self.text!r}{button}"


HIDDEN = BannerSeen(None)


@dataclass(frozen=True)
class ServerSeen:
    status: str  # connecting|connected|syncing|disconnected|reconnecting|error|none
    banner: BannerSeen = HIDDEN
    dot: str | None = None
    queue: int = 0


@dataclass(frozen=True)
class ComposerSeen:
    enabled: bool
    placeholder: str
    label: str = ""
    text: str = ""


@dataclass(frozen=True)
class MessageSeen:
    text: str
    failed: bool = False
    message_id: str | None = None


@dataclass(frozen=True)
class Observation:
    """The state at time `t` (run seconds)."""

    t: float
    mode: str = "CONNECTING"
    servers: dict[str, ServerSeen] = field(default_factory=dict)
    screen_server: str | None = None  # whose banner is on screen
    selected_channel: str | None = None  # SERVER/CHANNEL
    composer: ComposerSeen | None = None
    message_view: str = ""  # loading / failure text; "" when messages show
    messages: dict[str, tuple[MessageSeen, ...]] = field(default_factory=dict)  # by SERVER/CHANNEL
    inline_errors: tuple[str, ...] = ()  # "Edit failed: ..." / "Delete failed: ..." now shown
    editing: bool = False  # a message of the selected server is in edit mode

    def server(self, name: str) -> ServerSeen:
        return self.servers.get(name, ServerSeen("none"))
