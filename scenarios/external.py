"""An external Accord server as a scenario's server: the third server backend.

Where `process` and `docker` start fake servers, `external` points the run at a server
the rig does not control: its URL, and accounts on it (given, or registered fresh per
run). Only what any client can do is used: REST and the gateway. So

- plain `http://`: the rig's TLS front (chaos.tls_front, a certificate of the rig's
  test CA for the host the client dials) sits between Toxiproxy and the server, so the
  client's verified-HTTPS path stays real; `https://`: Toxiproxy forwards to the server
  directly and the client trusts `--server-ca`;
- with `--server-command`, the rig starts the server itself, once per scenario server,
  from a command template (`{port}`, `{work}`, `{timescale}`, `{heartbeat_ms}`), and
  kill / freeze / thaw / restart work on that process by signal;
- another user's posts, edits and deletes are REST calls as another account, and the
  delivery checker reads the channels' messages over REST at the end of the run.

What a scenario needs beyond that (scenarios.needs) is offered or not: `offered()`.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import yaml

from chaos.faults import NamedTargets
from chaos.processes import FakeServerInfo, ManagedProcess, ProcessFailed
from chaos.tls_front import TlsFront
from chaos.toxiproxy_server import free_port
from conform.wire import API, Account, ProbeError, Server, SetupError, Target, User
from scenarios.errors import UsageError
from scenarios.needs import ALL_NEEDS, Need, scenario_requirements, unmet

if TYPE_CHECKING:
    from scenarios.loader import LoadedScenario

PLACEHOLDERS = ("port", "work", "timescale", "heartbeat_ms")
READY_TIMEOUT = 20.0
"""Real seconds for a server the rig started to accept connections."""
LIST_PAGES = 50
"""At most this many pages of 100 when listing a channel's messages."""


def _account_entry(user: str, value: Any, where: str) -> Account:
    if isinstance(value, str):
        try:
            return Account.parse(value)
        except ValueError:
            raise UsageError(f"{where}: {user}: expected NAME:PASSWORD") from None
    if isinstance(value, Mapping) and {"username", "password"} <= set(value):
        return Account(str(value["username"]), str(value["password"]))
    raise UsageError(
        f"{where}: {user}: expected NAME:PASSWORD or {{username: NAME, password: PASSWORD}}"
    )


def load_accounts(path: Path) -> dict[str, Account]:
    """An accounts file: scenario user name (alice, bob, ...) -> an account on the server."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--accounts {path}: {exc}") from None
    if not isinstance(data, Mapping) or not data:
        raise UsageError(f"--accounts {path}: expected a mapping user -> NAME:PASSWORD")
    return {str(user): _account_entry(str(user), v, str(path)) for user, v in data.items()}


@dataclass(frozen=True)
class ExternalTarget:
    """How to reach (and perhaps start) the external server of a run."""

    url: str
    """http(s)://HOST:PORT; `{port}` in it (with a command) is a free port the rig picks."""
    command: str | None = None
    ca: Path | None = None
    accounts: Mapping[str, Account] = field(default_factory=dict)
    register: bool = False
    timescale: float = 1.0
    """The server's timescale when the rig cannot set it (no {timescale} in the command)."""

    @classmethod
    def create(
        cls,
        url: str | None,
        *,
        command: str | None = None,
        ca: str | None = None,
        accounts: str | None = None,
        account_entries: Mapping[str, str] | None = None,
        register: bool = False,
        timescale: float | None = None,
        check_ca: bool = True,
    ) -> ExternalTarget:
        """From the command-line options (or a scenario's `external:`, whose accounts are
        `account_entries`); UsageError naming the option that is wrong."""
        if not url:
            raise UsageError("--target external needs --server-url URL")
        if command is not None:
            try:
                words = shlex.split(command)
            except ValueError as exc:
                raise UsageError(f"--server-command: {exc}") from None
            if not words:
                raise UsageError("--server-command: empty")
            try:
                command.format(**dict.fromkeys(PLACEHOLDERS, ""))
            except (KeyError, IndexError, ValueError) as exc:
                raise UsageError(
                    f"--server-command: unknown placeholder {exc} "
                    f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                ) from None
        if "{port}" in url and (command is None or "{port}" not in command):
            raise UsageError("--server-url: {port} needs a --server-command that takes {port}")
        try:
            parsed = Target.parse(url.replace("{port}", "1"))
        except ValueError as exc:
            raise UsageError(f"--server-url: {exc}") from None
        ca_path = Path(ca) if ca else None
        if ca_path is not None:
            if not parsed.origin.startswith("https:"):
                raise UsageError("--server-ca: only for an https:// --server-url")
            if check_ca and not ca_path.is_file():
                raise UsageError(f"--server-ca {ca_path}: no such file")
        given = load_accounts(Path(accounts)) if accounts else {}
        for user, entry in (account_entries or {}).items():
            given[user] = _account_entry(user, entry, "accounts")
        if not given and not register:
            raise UsageError("--target external needs --accounts FILE or --register")
        return cls(
            url=url.rstrip("/").removesuffix(API),
            command=command,
            ca=ca_path,
            accounts=given,
            register=register,
            timescale=timescale or 1.0,
        )

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    @property
    def sets_timescale(self) -> bool:
        return self.command is not None and "{timescale}" in self.command

    def offered(self) -> frozenset[Need]:
        """What this target offers of scenarios.needs.Need."""
        offered: set[Need] = set()
        if self.command is not None:
            offered.add(Need.OWN_PROCESS)
            if "{heartbeat_ms}" in self.command:
                offered.add(Need.SET_HEARTBEAT)
            if "{port}" in self.command:
                offered.add(Need.SERVER_PER_NAME)
        return frozenset(offered)

    def run_timescale(self, wanted: float) -> float:
        """The run's timescale: the scenario's when the rig starts the server with it,
        else the server's own."""
        return wanted if self.sets_timescale else self.timescale

    def describe(self) -> str:
        started = f", started by the rig ({self.command})" if self.command else ""
        return f"external server {self.url}{started}"


class _ExternalSpec(Protocol):
    """scenarios.schema.ExternalServerSpec, as this module reads it."""

    url: str
    command: str | None
    ca: str | None
    accounts: dict[str, str]
    register_accounts: bool
    timescale: float | None


def external_target(spec: _ExternalSpec, base: Path | None) -> ExternalTarget:
    """A scenario server's `external:` as a target; `base` is the scenario file's folder
    (None: at validation, when the CA file is not looked for). ValueError if unusable."""
    ca = spec.ca if spec.ca is None or base is None else str(base / spec.ca)
    try:
        return ExternalTarget.create(
            spec.url, command=spec.command, ca=ca, account_entries=spec.accounts,
            register=spec.register_accounts, timescale=spec.timescale,
            check_ca=base is not None,
        )
    except UsageError as exc:
        # The option names are the CLI's; in a scenario they are external's fields.
        text = str(exc).replace("--server-", "").replace("--target external", "external")
        text = text.replace("--accounts FILE or --register", "accounts or register")
        raise ValueError(text) from None


def server_targets(
    loaded: LoadedScenario, run_target: ExternalTarget | None
) -> dict[str, ExternalTarget | None]:
    """Each scenario server's external target: its own `external:`, else the run's
    (`--target external`), else None (a fake server)."""
    base = loaded.path.parent
    targets: dict[str, ExternalTarget | None] = {}
    for name, setup in loaded.scenario.setup.servers.items():
        if setup.external is None:
            targets[name] = run_target
            continue
        try:
            targets[name] = external_target(setup.external, base)
        except ValueError as exc:  # the CA file is only looked for now
            line = loaded.lines.line_of(("setup", "servers", name, "external"))
            raise UsageError(
                f"{loaded.path}:{line}: setup.servers.{name}.external: {exc}"
            ) from None
    return targets


def needs_missing(
    loaded: LoadedScenario, run_target: ExternalTarget | None
) -> tuple[str, list[str]]:
    """(why the scenario cannot be played on these targets, '' if it can; the timeline
    assertions that cannot be judged there). A need that names no server (several
    servers) is the run target's to meet."""
    targets = server_targets(loaded, run_target)
    sharing = [name for name, target in targets.items() if target is run_target]

    def offered(server: str | None) -> frozenset[Need]:
        if server is None:  # several servers: a problem only if they share the run's
            target = run_target if len(sharing) > 1 else None
        else:
            target = targets.get(server)
        return ALL_NEEDS if target is None else target.offered()

    play, judged = scenario_requirements(loaded)
    missing = unmet(play, offered)
    return (missing[0].reason if missing else ""), [r.reason for r in unmet(judged, offered)]


def _accepting(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ExternalServer:
    """One scenario server on an external target: perhaps a process the rig starts,
    perhaps behind the rig's TLS front. Loop-independent (blocking, bounded calls)."""

    def __init__(
        self,
        target: ExternalTarget,
        name: str,
        work: Path,
        *,
        timescale: float,
        heartbeat_ms: int,
        front_host: str,
        log_path: Path,
    ) -> None:
        self.target = target
        self.name = name
        self.work = work
        self.timescale = timescale
        self.heartbeat_ms = heartbeat_ms
        self.front_host = front_host
        self.log_path = log_path
        self.info: FakeServerInfo | None = None
        self._port: int | None = None
        self._process: ManagedProcess | None = None
        self._front: TlsFront | None = None
        self._front_ca = Path()
        parts = urlsplit(target.url.replace("{port}", "1"))
        self.server_host = parts.hostname or "127.0.0.1"
        self.host = front_host if target.plain_http else self.server_host

    # ----------------------------------------------------------------- where

    @property
    def server_port(self) -> int:
        if "{port}" in self.target.url:
            if self._port is None:
                self._port = free_port(self.server_host)
            return self._port
        parts = urlsplit(self.target.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def origin(self) -> str:
        """The server itself (not through Toxiproxy): for another user's REST calls."""
        return self.target.url.replace("{port}", str(self.server_port))

    def rest_target(self) -> Target:
        return Target.parse(self.origin, self.target.ca)

    @property
    def alive(self) -> bool:
        return self._process.alive if self._process is not None else True

    # ----------------------------------------------------------------- life

    def start(self) -> FakeServerInfo:
        self.work.mkdir(parents=True, exist_ok=True)
        if self.target.command is not None:
            self._start_process()
        if self.target.plain_http:
            if self._front is None:
                from fake_server.tls import ensure_test_pki  # the rig's test CA

                pki = ensure_test_pki(self.work / "front-tls", (self.front_host,))
                assert pki.ca is not None
                self._front_ca = pki.ca
                self._front = TlsFront(
                    self.server_host, self.server_port, pki.cert, pki.key, host=self.front_host
                )
                self._front.start()
            port, ca = self._front.port, str(self._front_ca)
        else:
            port, ca = self.server_port, str(self.target.ca or "")
        origin = f"https://{self.host}:{port}"
        self.info = FakeServerInfo(
            rest=origin + API, gateway=f"wss://{self.host}:{port}/ws", control="",
            control_token="", ca=ca, health="",
        )
        return self.info

    def _start_process(self) -> None:
        assert self.target.command is not None
        values = {
            "port": self.server_port if "{port}" in self.target.command else "",
            "work": str(self.work),
            "timescale": repr(self.timescale),
            "heartbeat_ms": str(self.heartbeat_ms),
        }
        argv = shlex.split(self.target.command.format(**values))
        self._process = ManagedProcess(argv, log_path=self.log_path)
        self._process.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not _accepting(self.server_host, self.server_port):
            if not self._process.alive:
                tail = self._process.stderr_tail()[-600:].strip()
                raise ProcessFailed(
                    f"server command exited with code {self._process.returncode}"
                    + (f"; stderr: {tail}" if tail else "") + f" (log: {self.log_path})"
                )
            if time.monotonic() > deadline:
                self._process.stop()
                raise ProcessFailed(
                    f"server command: nothing accepts on {self.server_host}:{self.server_port} "
                    f"within {READY_TIMEOUT:g}s (log: {self.log_path})"
                )
            time.sleep(0.05)  # polling the port: the server says nothing when it is ready

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
        if self._front is not None:
            self._front.stop()
            self._front = None

    # ----------------------------------------------------------------- faults

    def _own(self, what: str) -> ManagedProcess:
        if self._process is None:
            raise ProcessFailed(f"cannot {what} {self.name}: the rig did not start it "
                                "(give --server-command)")
        return self._process

    def kill(self) -> None:
        self._own("kill").kill()

    def freeze(self) -> None:
        self._own("freeze").freeze()

    def thaw(self) -> None:
        self._own("thaw").thaw()

    def revive(self) -> None:
        """A server the rig started and a fault left frozen or dead: running again."""
        if self._process is None:
            return
        if self._process.frozen:
            self._process.thaw()
        if not self._process.alive:
            self._start_process()

    def restart(self) -> None:
        """Stop the process and start it again on the same port; the front stays."""
        self._own("restart").stop()
        self._start_process()


class ExternalProcessBackend(NamedTargets[ExternalServer]):
    """kill / freeze / thaw / restart on the servers the rig started from the command."""

    what = "external server"

    async def restart(self, target: str) -> None:
        import asyncio

        await asyncio.to_thread(self.target(target).restart)


# --------------------------------------------------------------------------- REST


class ExternalRest:
    """Another user's REST calls and the message lists, as any client makes them."""

    def __init__(self, server: ExternalServer, run_id: str) -> None:
        self.server = server
        self.run_id = run_id
        self._http: aiohttp.ClientSession | None = None
        self._wire: Server | None = None
        self.users: dict[str, User] = {}  # scenario user name -> signed-in account
        self._channels: dict[tuple[str, str], str] = {}  # (space slug, name) -> id
        # Each channel's newest message id before the run: a shared server keeps what
        # earlier runs stored, and none of it is this run's to judge.
        self._before: dict[str, str] = {}

    @property
    def wire(self) -> Server:
        if self._wire is None:
            self._http = aiohttp.ClientSession()
            self._wire = Server(self.server.rest_target(), self._http, self.run_id)
        return self._wire

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._wire = None

    async def sign_in(self, names: list[str]) -> None:
        """An account for each scenario user: the accounts file's, else a fresh one
        (`<user><run id>`, a random password) registered over REST."""
        target = self.server.target
        for name in names:
            if name in self.users:
                continue
            account = target.accounts.get(name)
            try:
                if account is not None:
                    self.users[name] = await self.wire.login(account, setup=True)
                elif target.register:
                    fresh = Account(f"{name}{self.run_id}", secrets.token_hex(12))
                    self.users[name] = await self.wire.register(fresh)
                else:
                    raise SetupError(
                        f"no account for user {name!r} on {self.server.origin} "
                        "(add it to --accounts, or give --register)"
                    )
            except ProbeError as exc:
                raise SetupError(str(exc)) from None

    async def channel_id(self, user: str, space: str, channel: str) -> str:
        key = (space, channel)
        if key not in self._channels:
            await self._list_channels(user, space)
            if key not in self._channels:
                raise ProbeError(f"space {space!r} has no channel {channel!r}")
        return self._channels[key]

    async def _list_channels(self, user: str, space: str) -> None:
        who = self.users[user]
        reply = await self.wire.rest("GET", "/users/@me/spaces", user=who)
        spaces = [s for s in reply.data or [] if space in (s.get("slug"), s.get("name"))]
        if not spaces:
            raise ProbeError(f"{user} is in no space {space!r} on {self.server.origin}")
        reply = await self.wire.rest("GET", f"/spaces/{spaces[0]['id']}/channels", user=who)
        for c in reply.data or []:
            self._channels[(space, str(c.get("name")))] = str(c["id"])

    async def mark_start(self, user: str, space: str) -> None:
        """Remember each channel's newest message of `space`, as `user` sees it."""
        try:
            await self._list_channels(user, space)
            for (slug, _name), cid in self._channels.items():
                if slug != space or cid in self._before:
                    continue
                reply = await self.wire.rest(
                    "GET", f"/channels/{cid}/messages?limit=1", user=self.users[user]
                )
                if reply.status != 200 or not isinstance(reply.data, list):
                    raise ProbeError(f"GET /channels/{cid}/messages?limit=1: HTTP {reply.status}")
                self._before[cid] = str(reply.data[0]["id"]) if reply.data else "0"
        except ProbeError as exc:
            raise SetupError(str(exc)) from None

    def newest_before(self, channel_id: str) -> int:
        """The channel's newest message id before the run (0: none, or not seen)."""
        return int(self._before.get(channel_id, "0"))

    async def act(
        self, user: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        reply = await self.wire.rest(method, path, user=self.users[user], json_body=body)
        if not 200 <= reply.status < 300:
            raise ProbeError(f"{user}: {method} {path}: HTTP {reply.status} {reply.text[:120]!r}")
        return reply.data

    async def messages(self, user: str, channel_id: str) -> list[dict[str, Any]]:
        """Every message of a channel stored since the run began, oldest first (pages
        of 100 after the newest one before it)."""
        out: list[dict[str, Any]] = []
        after = self._before.get(channel_id, "0")
        for _ in range(LIST_PAGES):
            reply = await self.wire.rest(
                "GET", f"/channels/{channel_id}/messages?limit=100&after={after}",
                user=self.users[user],
            )
            if reply.status != 200 or not isinstance(reply.data, list):
                raise ProbeError(f"GET /channels/{channel_id}/messages: HTTP {reply.status}")
            page = sorted(reply.data, key=lambda m: int(str(m["id"])))
            out += page
            body = reply.json() or {}
            cursor = body.get("cursor") or {}
            if not page or not cursor.get("has_more"):
                break
            after = str(page[-1]["id"])
        return out
