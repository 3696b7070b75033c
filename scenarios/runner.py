"""Plays one scenario: fake servers behind Toxiproxy, the client in-process, the steps
in order, then the verdict over the recorded timeline.

Everything a run starts it also stops, in `finally`, whatever happened (a failed
step, an exception, Ctrl-C): the client, the run's proxies (deleted from
Toxiproxy), the fake-server processes. Each run has its own temporary folder,
database, proxies and ports, so runs can go in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from chaos import (
    FakeServerInfo,
    NetworkChaos,
    ProcessChaos,
    ServerProxies,
    ToxiproxyServer,
)
from client.core import actions as act
from client.core.timings import Timings
from client.timeline import Record, Timeline
from client.ui.texts import LOADING
from scenarios.conditions import (
    SignalSeenAt,
    check,
    condition_lines,
    first_hold,
)
from scenarios.delivery import DeliveryReport, attribute_sends, check_delivery, compare_lists
from scenarios.durations import Duration
from scenarios.events import RunRecords, describe_event, event_times
from scenarios.external import (
    ExternalRest,
    ExternalServer,
    ExternalTarget,
    needs_missing,
    server_targets,
)
from scenarios.fake_control import (
    FakeServerControl,
    read_history,
    stored_messages,
    user_id,
)
from scenarios.harness import ClientHarness
from scenarios.loader import LoadedScenario
from scenarios.observation import MessageSeen, Observation
from scenarios.observe import Observer
from scenarios.records import signals
from scenarios.schema import (
    STEP_KINDS,
    TOXIC_ATTRIBUTES,
    AddServerSpec,
    BugSpec,
    Condition,
    DeleteSpec,
    EditSpec,
    MessageRef,
    Scenario,
    SendSpec,
    ServerSetup,
    Step,
    WaitFor,
    step_kind,
    step_value,
)
from scenarios.server_backends import EXTERNAL, FakeServerHandle, ServerBackend, default_backend
from scenarios.timeline_checks import EPSILON, judge_run
from scenarios.timescale import (
    CLIENT_TIMEOUT_FLOOR,
    DEADLINE_FLOOR,
    DEFAULT_HEARTBEAT,
    DEFAULT_SEED,
    DEFAULT_TIMESCALE,
    scaled_deadline,
    scaled_pause,
)
from scenarios.verdict import (
    Failure,
    Seen,
    ServerWiring,
    banner_series,
    composer_series,
    dot_series,
    judge_server,
    status_series,
)


class StepFailed(Exception):
    def __init__(self, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass
class RunOptions:
    toxiproxy: ToxiproxyServer
    work_dir: Path
    timescale: float | None = None  # None: the scenario's, else DEFAULT_TIMESCALE
    seed: int | None = None
    deadline_floor: float = DEADLINE_FLOOR
    client_floor: float = CLIENT_TIMEOUT_FLOOR  # real seconds under the client's I/O timeouts
    bugs: tuple[int, ...] = ()  # regression switches on for every scenario (mutation runs)
    servers: str = field(default_factory=default_backend)  # "process" or "docker"
    external: ExternalTarget | None = None  # set: every server without its own `external:`


@dataclass
class StepOutcome:
    index: int
    kind: str
    line: int
    text: str
    start: float
    end: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class ScenarioResult:
    loaded: LoadedScenario
    timescale: float
    seed: int
    timeline: Timeline
    steps: list[StepOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    error: str = ""  # a failure of the rig itself (not of the client)
    timeline_path: Path | None = None
    histories: dict[str, Path] = field(default_factory=dict)  # fake-server history files
    skipped: str = ""  # why the scenario was not played (what it needs is missing)
    unjudged: list[str] = field(default_factory=list)  # assertions the target cannot answer

    @property
    def passed(self) -> bool:
        """No failure and no error (a skipped scenario has neither: it is not failed)."""
        return not self.failures and not self.error

    @property
    def records(self) -> list[Record]:
        """The timeline in time order (the servers' histories are merged in at the end)."""
        return sorted(self.timeline.records, key=lambda r: r.t)


@dataclass
class ServerRig:
    name: str
    setup: ServerSetup
    process: FakeServerHandle
    db: Path
    control: FakeServerControl | None = None
    proxies: ServerProxies | None = None
    ca: str = ""
    control_tokens: list[str] = field(default_factory=list, repr=False)  # one per start
    open_faults: dict[str, str] = field(default_factory=dict)  # fault id -> kind, standing
    rest: ExternalRest | None = None  # an external server: accounts and REST as any client

    @property
    def history_path(self) -> Path:
        return self.db.with_name(self.db.stem + ".history.jsonl")


def step_text(step: Step) -> str:
    """A step as one line of YAML, for reports."""
    dumped = step.model_dump(
        mode="json", by_alias=True, exclude_defaults=True, exclude_none=True
    )
    return str(
        yaml.safe_dump(
            dumped, default_flow_style=True, width=1000, allow_unicode=True, sort_keys=False
        )
    ).strip()[1:-1]


class _Sink:
    """Chaos records go on the run's timeline, stamped now."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline

    def add(self, src: str, kind: str, name: str, data: Any) -> object:
        return self._timeline.add(self._timeline.now(), src, kind, name, dict(data))


CHAOS_STEPS = ("toxic", "proxy_down", "kill_server", "freeze_server", "thaw_server")


HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[None]])


def plays(*kinds: str) -> Callable[[HandlerT], HandlerT]:
    """Tie a ScenarioRun method to step kinds: it becomes their registry entry's handler."""

    def tie(method: HandlerT) -> HandlerT:
        for kind in kinds:
            entry = STEP_KINDS[kind]
            if entry.handler is not None:
                raise ValueError(f"step kind {kind!r} already has a handler")
            entry.handler = method
        return method

    return tie


class ScenarioRun:
    """One play of one scenario. Use `await ScenarioRun(...).run()`."""

    def __init__(self, loaded: LoadedScenario, options: RunOptions) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        setup = self.scenario.setup
        self.timescale = options.timescale or setup.timescale or DEFAULT_TIMESCALE
        # Each server's external target (None: a fake server).
        self.targets = server_targets(loaded, options.external)
        for target in self.targets.values():
            if target is not None:  # a server the rig cannot set sets the run's timescale
                self.timescale = target.run_timescale(self.timescale)
        self.seed = (
            options.seed
            if options.seed is not None
            else (setup.seed if setup.seed is not None else DEFAULT_SEED)
        )
        self.options = options
        self.timeline = Timeline()
        floor = options.client_floor
        if setup.client_floor is not None:  # a scenario may ask for more, never less
            floor = max(floor, setup.client_floor.seconds)
        self.timings = Timings(scale=self.timescale, floor=floor)
        self.observer = Observer(self.timings)
        self._fed = 0  # timeline records already given to the observer
        self._signals: list[SignalSeenAt] = []
        # A `signal` check looks back to the end of the previous check (wait_for or
        # expect), so the signal an action step caused at once still counts.
        self._checked_at = 0.0
        self.servers: dict[str, ServerRig] = {}
        self.network: NetworkChaos | None = None
        self.processes: ProcessChaos | None = None
        self.client: ClientHarness | None = None
        self.server_backend: ServerBackend | None = None
        self.result = ScenarioResult(loaded, self.timescale, self.seed, self.timeline)
        self._final_lists: dict[tuple[str, str], list[str]] = {}
        self._named: dict[str, NamedMessage] = {}  # `as:` names
        self._listed: dict[str, list[dict[str, Any]]] = {}  # external servers, read at the end

    # ------------------------------------------------------------------ run

    async def run(self) -> ScenarioResult:
        self.result.skipped, self.result.unjudged = needs_missing(
            self.loaded, self.options.external
        )
        if self.result.skipped:
            return self.result
        try:
            await self._start()
            await self._play()
        except StepFailed as exc:
            self.result.failures.append(exc.failure or Failure(str(exc)))
        except Exception as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            self.result.error = "interrupted"
            raise
        finally:
            # Also on Ctrl-C: asyncio.run cancels this task once; awaiting here is fine.
            await self._stop()
        if not self.result.error:
            try:
                self._judge()
            except Exception as exc:  # a broken verdict is the rig's failure, reported as such
                self.result.error = f"verdict: {type(exc).__name__}: {exc}"
        path = self.options.work_dir / "timeline.jsonl"
        path.write_text("".join(r.to_json() + "\n" for r in self.result.records), encoding="utf-8")
        self.result.timeline_path = path
        return self.result

    def _record_run(self, t: float, wall: float, **extra: Any) -> None:
        """The run record every report starts from (the simulator adds its mode)."""
        self.timeline.add(t, "rig", "log", "run", {
            "scenario": self.scenario.name,
            "file": str(self.loaded.path),
            "timescale": self.timescale,
            "seed": self.seed,
            # The client's open/HELLO/READY/REST timeouts are max(scaled, floor).
            "client_floor": self.timings.floor,
            "wall": wall,
            **extra,
        })

    async def _start(self) -> None:
        work = self.options.work_dir
        work.mkdir(parents=True, exist_ok=True)
        self._record_run(self.timeline.now(), time.time())
        sink = _Sink(self.timeline)
        toxiproxy = self.options.toxiproxy
        self.network = NetworkChaos(
            toxiproxy.api(),
            timescale=self.timescale,
            sink=sink,
            run_id=f"rig{secrets.token_hex(4)}",
            host=toxiproxy.host,
            listen_host=toxiproxy.proxy_listen_host,
        )
        all_external = all(t is not None for t in self.targets.values())
        backend = await asyncio.to_thread(
            ServerBackend, EXTERNAL if all_external else self.options.servers, toxiproxy
        )
        self.server_backend = backend
        self.processes = ProcessChaos(backend.faults, faults=self.network.faults)
        for name, server_setup in self.scenario.setup.servers.items():
            db = work / f"{name}.db"
            extra = server_args(server_setup)
            process = backend.new_server(
                name,
                db,
                timescale=self.timescale,
                extra_args=extra,
                log_path=work / f"{name}.log",
                heartbeat_ms=round(self._heartbeat_of(server_setup) * 1000),
                external=self.targets[name],
            )
            rig = ServerRig(name, server_setup, process, db)
            self.servers[name] = rig
            info = await asyncio.to_thread(process.start)
            self._connect_control(rig, info)
            if isinstance(process, ExternalServer):
                rig.rest = ExternalRest(process, self.network.run_id)
                await rig.rest.sign_in(self._users_of(name))
                await rig.rest.mark_start(server_setup.user, server_setup.space)
            self.result.histories[name] = rig.history_path
            rig.ca = info.ca
            rig.proxies = await self.network.add_server(name, info.port, process.host)
        self.client = ClientHarness(
            self.timeline,
            self.timings,
            seed=self.seed,
            bugs=sorted({*self.scenario.setup.bugs, *self.options.bugs}),
            ca_files=[rig.ca for rig in self.servers.values() if rig.setup.trusted and rig.ca],
            instance=self.network.run_id,
        )
        await self.client.start()

    def _connect_control(self, rig: ServerRig, info: FakeServerInfo) -> None:
        """The fake's control API, when the server has one (an external server has none)."""
        if info.control:
            rig.control = FakeServerControl(info.control, info.control_token)
            rig.control_tokens.append(info.control_token)

    async def _stop(self) -> None:
        problems: list[str] = []
        if self.client is not None:
            self._final_lists = self._client_lists()
            try:
                await self.client.close()
            except Exception as exc:
                problems.append(f"client: {exc}")
        for rig in self.servers.values():
            if rig.control is not None:
                with contextlib.suppress(Exception):
                    await rig.control.close()
            if rig.rest is not None:
                try:
                    self._listed[rig.name] = await self._read_server_messages(rig)
                except Exception as exc:
                    problems.append(f"{rig.name}: listing its messages over REST: {exc}")
                await rig.rest.close()
        for rig in self.servers.values():
            self._end_server_faults(rig, "cleanup")
        if self.network is not None:
            try:
                await self.network.close()
            except Exception as exc:
                problems.append(f"proxies: {exc}")
            self.network = None
        if self.processes is not None:
            self.processes.close()
        for rig in self.servers.values():
            try:
                await asyncio.to_thread(rig.process.stop)
            except Exception as exc:
                problems.append(f"fake server {rig.name}: {exc}")
        if self.server_backend is not None:
            try:
                await asyncio.to_thread(self.server_backend.close)
            except Exception as exc:
                problems.append(f"servers: {exc}")
        self.client = None
        if problems and not self.result.error:
            self.result.error = "cleanup: " + "; ".join(problems)

    def secrets(self) -> list[str]:
        """Strings no report may show (the fake servers' control tokens)."""
        return [token for rig in self.servers.values() for token in rig.control_tokens]

    # ------------------------------------------------------------------ steps

    async def _play(self) -> None:
        for index, step in enumerate(self.scenario.steps):
            kind = step_kind(step)
            outcome = StepOutcome(
                index, kind, self.loaded.step_line(index), step_text(step), self.timeline.now()
            )
            self.timeline.add(
                outcome.start,
                "rig",
                "step",
                kind,
                {"phase": "start", "index": index, "line": outcome.line, "text": outcome.text},
            )
            try:
                await self._do(step, kind, step_value(step), outcome)
            except StepFailed as exc:
                outcome.ok, outcome.detail = False, str(exc)
                if exc.failure is None:  # a step that could not be done at all
                    message = self._where(outcome) + str(exc)
                    raise StepFailed(message, Failure(message)) from exc
                raise
            except Exception as exc:
                outcome.ok, outcome.detail = False, f"{type(exc).__name__}: {exc}"
                raise StepFailed(
                    self._where(outcome) + outcome.detail,
                    Failure(self._where(outcome) + outcome.detail),
                ) from exc
            finally:
                outcome.end = self.timeline.now()
                self.timeline.add(
                    outcome.end,
                    "rig",
                    "step",
                    kind,
                    {
                        "phase": "end",
                        "index": index,
                        "line": outcome.line,
                        "text": outcome.text,
                        "start": outcome.start,
                        "ok": outcome.ok,
                        "detail": outcome.detail,
                    },
                )
                self.result.steps.append(outcome)

    def _where(self, outcome: StepOutcome) -> str:
        return f"step {outcome.index + 1} (line {outcome.line}) {outcome.kind}: "

    def _heartbeat(self) -> float:
        return self._heartbeat_of(next(iter(self.scenario.setup.servers.values())))

    @staticmethod
    def _heartbeat_of(setup: ServerSetup) -> float:
        return setup.heartbeat.resolve(DEFAULT_HEARTBEAT) if setup.heartbeat else DEFAULT_HEARTBEAT

    def _users_of(self, server: str) -> list[str]:
        """The scenario's users on one server: the client's, then the other users'."""
        users = [self.servers[server].setup.user]
        for step in self.scenario.steps:
            value = step_value(step)
            other = step_kind(step) in ("user_post", "user_edit", "user_delete")
            if other and value.channel.split("/", 1)[0] == server:
                users.append(value.user)
        return list(dict.fromkeys(users))

    def _server_config(self, name: str, url: str | None = None) -> act.ServerConfig:
        rig = self.servers[name]
        assert rig.proxies is not None
        username, password = rig.setup.user, rig.setup.password
        if rig.rest is not None:
            account = rig.rest.users[rig.setup.user].account
            # A scenario's own password is a wrong one on purpose (bad_credentials).
            username = account.name
            password = account.password if password == DEFAULT_PASSWORD else password
        return act.ServerConfig(
            name=name,
            base_url=url or rig.proxies.base_url,
            username=username,
            password=password,
            space=rig.setup.space,
            gateway_url=None if url else rig.proxies.gateway_url,
        )

    def _selected(self) -> str:
        self._catch_up()
        selected = self.observer.series[-1].selected_channel
        if selected is None:
            raise StepFailed("no channel is selected: name one with `channel:`")
        return selected

    def _named_id(self, name: str) -> str:
        """The id of a message named with `as:` (the server's, once it stored it)."""
        named = self._named[name]
        if named.message_id is None and named.nonce is not None:
            self._catch_up()
            named.message_id = next(
                (str(s.args[3]) for s in reversed(self._signals)
                 if s.name == "message_sent" and len(s.args) > 3 and s.args[2] == named.nonce),
                None,
            )
        if named.message_id is None and named.nonce is not None:
            rig = self.servers[named.server]
            stored = [m for m in self._stored(rig) if m.get("nonce") == named.nonce]
            if stored:
                named.message_id = str(stored[-1]["id"])
        if named.message_id is None:
            raise StepFailed(f"the message named {name!r} ({named.text!r}) has no id yet")
        return named.message_id

    def _message_id(self, channel_ref: str, text: str | MessageRef) -> str:
        assert self.client is not None
        if isinstance(text, MessageRef):
            return self._named_id(text.ref)
        server, channel = channel_ref.split("/", 1)
        channel_id = self.client.core.channel_id(server, channel)
        matches = [
            m
            for m in self.client.core.messages(server, channel_id or channel)
            if m.get("content") == text
        ]
        if not matches:
            raise StepFailed(f"the client shows no message {text!r} in {channel_ref}")
        return str(matches[-1]["id"])

    async def _server_message_id(
        self, rig: ServerRig, channel: str, text: str | MessageRef
    ) -> str:
        if isinstance(text, MessageRef):
            return self._named_id(text.ref)
        if rig.rest is not None:
            user = rig.setup.user
            cid = await rig.rest.channel_id(user, rig.setup.space, channel)
            stored = [{**m, "channel": channel} for m in await rig.rest.messages(user, cid)]
        else:
            stored = self._stored(rig)
        matches = [m for m in stored if m.get("channel") == channel and m.get("content") == text]
        if not matches:
            raise StepFailed(f"{rig.name} has no message {text!r} in {channel}")
        return str(matches[-1]["id"])

    async def _do(self, step: Step, kind: str, value: Any, outcome: StepOutcome) -> None:
        handler = STEP_KINDS[kind].handler
        assert handler is not None  # every kind has one: checked at import (_check_plays)
        await handler(self, value, outcome)

    # ------------------------------------------------------------------ step handlers
    # One per step kind (scenarios.schema.STEP_KINDS), tied to it by @plays.

    @property
    def _client(self) -> ClientHarness:
        assert self.client is not None
        return self.client

    @plays("connect")
    async def _connect(self, value: str, outcome: StepOutcome) -> None:
        await self._client.act(act.AddServer(self._server_config(value)))

    @plays("add_server")
    async def _add_server(self, value: AddServerSpec, outcome: StepOutcome) -> None:
        await self._client.act(act.AddServer(self._server_config(value.server, value.url)))

    @plays("connect_saved")
    async def _connect_saved(self, value: str, outcome: StepOutcome) -> None:
        await self._client.act(act.ConfigureServer(self._server_config(value)))
        await self._client.act(act.ConnectServer(value))

    @plays("select_channel")
    async def _select_channel(self, value: str, outcome: StepOutcome) -> None:
        server, channel = value.split("/", 1)
        await self._client.act(act.SelectChannel(server, channel))

    @plays("send")
    async def _send(self, value: SendSpec, outcome: StepOutcome) -> None:
        server, channel = (value.channel or self._selected()).split("/", 1)
        for text in value.texts():
            await self._client.act(act.SendMessage(server, channel, text))
        if value.as_ is not None:
            self._named[value.as_] = NamedMessage(
                server, channel, text, nonce=self._nonce_of(server, text)
            )

    @plays("edit")
    async def _edit(self, value: EditSpec, outcome: StepOutcome) -> None:
        ref = value.channel or self._selected()
        message_id = self._message_id(ref, value.message)
        await self._client.act(act.EditMessage(ref.split("/")[0], message_id, value.text))

    @plays("delete")
    async def _delete(self, value: DeleteSpec, outcome: StepOutcome) -> None:
        ref = value.channel or self._selected()
        message_id = self._message_id(ref, value.message)
        await self._client.act(act.DeleteMessage(ref.split("/")[0], message_id))

    @plays("fetch", "click_retry")
    async def _fetch(self, value: str, outcome: StepOutcome) -> None:
        server, channel = value.split("/", 1)
        await self._client.act(act.FetchMessages(server, channel))

    @plays("reconnect")
    async def _reconnect(self, value: str, outcome: StepOutcome) -> None:
        await self._client.act(act.ReconnectServer(value))

    @plays("remove_server")
    async def _remove_server(self, value: str, outcome: StepOutcome) -> None:
        await self._client.act(act.DisconnectServer(value))

    @plays("enable_bug")
    async def _enable_bug(self, value: BugSpec, outcome: StepOutcome) -> None:
        await self._client.act(act.SetBug(value.bug, True))

    @plays("user_post", "user_edit", "user_delete")
    async def _user_step(self, value: Any, outcome: StepOutcome) -> None:
        await self._other_user(outcome.kind, value)

    @plays("server_fault", "server_close", "invalid_session")
    async def _server_fault_step(self, value: Any, outcome: StepOutcome) -> None:
        await self._server_fault(self.servers[value.server], fault_spec(outcome.kind, value))

    @plays(*CHAOS_STEPS)
    async def _chaos(self, value: Any, outcome: StepOutcome) -> None:
        assert self.network is not None and self.processes is not None
        await chaos_step(self.network, self.processes, outcome.kind, value)

    @plays("heal")
    async def _heal_step(self, value: str, outcome: StepOutcome) -> None:
        await self._heal(value)

    @plays("restart_server")
    async def _restart_server(self, value: str, outcome: StepOutcome) -> None:
        assert self.processes is not None
        await self.processes.restart(value)
        rig = self.servers[value]
        self._end_server_faults(rig, "restarted")
        info = rig.process.info
        assert info is not None
        if rig.control is not None:
            await rig.control.close()
            rig.control = None
        self._connect_control(rig, info)

    @plays("wait_for")
    async def _wait_for_step(self, value: WaitFor, outcome: StepOutcome) -> None:
        await self._wait_for(value, outcome)
        self._checked_at = self.timeline.now()

    @plays("expect")
    async def _expect_step(self, value: Condition, outcome: StepOutcome) -> None:
        self._expect(value, outcome)
        self._checked_at = self.timeline.now()

    @plays("pause")
    async def _pause(self, value: Duration, outcome: StepOutcome) -> None:
        await asyncio.sleep(scaled_pause(value, self.timescale, self._heartbeat()))

    async def _other_user(self, kind: str, value: Any) -> None:
        server, channel = value.channel.split("/", 1)
        rig = self.servers[server]
        if rig.control is None:
            await self._other_user_over_rest(rig, kind, value)
            return
        spec: dict[str, Any] = {"kind": "act_as", "user": value.user, "channel": channel}
        if kind == "user_post":
            spec |= {"action": "post", "content": value.text}
            answer = await rig.control.apply(spec)
            if value.as_ is not None:
                message = (answer.get("result") or {}).get("message") or {}
                posted = message.get("id")
                self._named[value.as_] = NamedMessage(
                    server, channel, value.text, message_id=None if posted is None else str(posted)
                )
            return
        else:
            message_id = await self._server_message_id(rig, channel, value.message)
            spec |= {
                "action": "edit" if kind == "user_edit" else "delete",
                "message_id": message_id,
            }
            if kind == "user_edit":
                spec["content"] = value.text
        await rig.control.apply(spec)

    async def _other_user_over_rest(self, rig: ServerRig, kind: str, value: Any) -> None:
        """Another user's action as any client makes it: REST as that user's account."""
        assert rig.rest is not None
        channel = value.channel.split("/", 1)[1]
        cid = await rig.rest.channel_id(value.user, rig.setup.space, channel)
        path = f"/channels/{cid}/messages"
        if kind == "user_post":
            message = await rig.rest.act(value.user, "POST", path, {"content": value.text})
            if value.as_ is not None:
                self._named[value.as_] = NamedMessage(
                    rig.name, channel, value.text, message_id=str(message["id"])
                )
            return
        message_id = await self._server_message_id(rig, channel, value.message)
        if kind == "user_edit":
            await rig.rest.act(value.user, "PATCH", f"{path}/{message_id}", {"content": value.text})
        else:
            await rig.rest.act(value.user, "DELETE", f"{path}/{message_id}")

    async def _read_server_messages(self, rig: ServerRig) -> list[dict[str, Any]]:
        """What an external server stored in the channels the client used, oldest first
        (the delivery checker's server side). A server the rig killed or froze is
        brought back first: its durable state is what counts."""
        assert rig.rest is not None
        process = rig.process
        if isinstance(process, ExternalServer):
            await asyncio.to_thread(process.revive)
        self._catch_up()
        channels = {
            str(s.args[1]) for s in self._signals
            if s.name in ("message_sending", "message_queued") and s.args[0] == rig.name
        }
        channels |= {cid for (server, cid) in self._final_lists if server == rig.name}
        user = rig.setup.user
        stored: list[dict[str, Any]] = []
        for cid in sorted(channels):
            stored += await rig.rest.messages(user, cid)
        return sorted(stored, key=lambda m: int(str(m["id"])))

    async def _heal(self, target: str) -> None:
        assert self.network is not None
        for name in await heal_network(self.network, target, list(self.servers)):
            rig = self.servers[name]
            if rig.control is not None and rig.process.alive:
                with contextlib.suppress(Exception):
                    await rig.control.reset()
            self._end_server_faults(rig, "healed")

    async def _server_fault(self, rig: ServerRig, spec: dict[str, Any]) -> None:
        """Apply a fake-server fault, with a fault window on the timeline (for the
        picture): immediate faults open and close at once, standing ones last
        until healed or until the run ends."""
        assert self.network is not None
        if rig.control is None:  # the registry's needs skip such scenarios first
            raise StepFailed(f"{rig.name} has no fault-control API (not a fake server)")
        answer = await rig.control.apply(spec)
        faults = self.network.faults
        fault_id = faults.new_id(str(spec["kind"]))
        faults.record("start", str(spec["kind"]), fault_id, rig.name, spec=spec)
        if answer.get("id") is None:
            faults.record("end", str(spec["kind"]), fault_id, rig.name)
        else:
            rig.open_faults[fault_id] = str(spec["kind"])

    def _end_server_faults(self, rig: ServerRig, reason: str) -> None:
        if self.network is None:
            return
        for fault_id, kind in rig.open_faults.items():
            self.network.faults.record("end", kind, fault_id, rig.name, reason=reason)
        rig.open_faults.clear()

    # ------------------------------------------------------------------ checks

    def _catch_up(self) -> None:
        """Feed the signals recorded since the last call to the observer."""
        if len(self.timeline) == self._fed:
            self.observer.advance(self.timeline.now())
            return
        records = self.timeline.records
        new = records[self._fed :]
        self._fed = len(records)
        for s in signals(new):
            self.observer.feed(s)
            self._signals.append(SignalSeenAt(s.t, s.name, s.args))
        self.observer.advance(self.timeline.now())

    def _nonce_of(self, server: str, text: str) -> str | None:
        """The nonce the client gave its latest send of `text` (message_sending/queued)."""
        self._catch_up()
        for s in reversed(self._signals):
            if (
                s.name in ("message_sending", "message_queued")
                and len(s.args) >= 4
                and s.args[0] == server
                and s.args[2] == text
            ):
                return str(s.args[3])
        return None

    def _signals_since(self, start: float) -> list[SignalSeenAt]:
        return [s for s in self._signals if s.t >= start]

    def _with_live_messages(self, condition: Condition, obs: Observation) -> Observation:
        """`messages` reads the client's current list (the timeline has no message texts)."""
        if condition.messages is None or self.client is None:
            return obs
        ref = condition.messages.channel
        server, channel = ref.split("/", 1)
        core = self.client.core
        channel_id = core.channel_id(server, channel) or channel
        shown = [
            MessageSeen(str(m.get("content", "")), False, str(m.get("id")))
            for m in core.messages(server, channel_id)
        ]
        shown += [
            MessageSeen(e.content, True)
            for e in core.failed_entries(server)
            if str(getattr(e, "channel_id", channel_id)) == channel_id
        ]
        return Observation(**{**obs.__dict__, "messages": {**obs.messages, ref: tuple(shown)}})

    async def _wait_for(self, condition: WaitFor, outcome: StepOutcome) -> None:
        budget = scaled_deadline(
            condition.bound, self.timescale, self._heartbeat(), self.options.deadline_floor
        )
        start = outcome.start
        assert self.client is not None
        last: list[str] = []
        held_at: list[float] = []

        def holds() -> bool:
            nonlocal last
            self._catch_up()
            series = self.observer.since(start)
            if condition.messages is not None:
                series = [self._with_live_messages(condition, series[-1])]
            held, last = first_hold(condition, series, self._signals_since(self._checked_at))
            if held is not None:
                held_at.append(held.t)
            return held is not None

        # Re-checked after every step of the client (inputs, timers, timed hides).
        if await self.client.wait(holds, budget):
            outcome.detail = f"held at t={held_at[-1]:.3f}"
            if condition.judged:
                self._judge_within(condition, outcome, max(held_at[-1], start))
            return
        message = (
            f"{self._where(outcome)}not seen within {condition.bound} "
            f"({budget:.2f}s real at timescale {self.timescale:g})"
        )
        raise StepFailed(message, self._condition_failure(message, condition, last, start))

    def _judge_within(self, condition: WaitFor, outcome: StepOutcome, held: float) -> None:
        """The bound is judged in client time on the recorded timeline, apart from how
        long the rig was willing to wait (the real-time floor)."""
        bound = condition.bound.resolve(self._heartbeat())
        origin, what = outcome.start, "the step's start"
        if condition.since is not None:
            run = RunRecords(self.timeline.records, self.observer.series, self._wiring())
            times = [t for t in event_times(condition.since, run) if t <= held]
            what = describe_event(condition.since)
            if not times:
                message = f"{self._where(outcome)}no {what} before the condition held"
                raise StepFailed(message, Failure(message, [f"since {what}"], ["not recorded"]))
            origin = times[-1]
        took = (held - origin) / self.timescale
        outcome.detail += f", {took:.3f}s (client time) after {what}"
        if took > bound + EPSILON:
            message = (
                f"{self._where(outcome)}held only after {took:.3f}s of client time "
                f"(t={origin:.3f} -> t={held:.3f} at timescale {self.timescale:g}), "
                f"later than within {condition.bound}"
            )
            raise StepFailed(
                message,
                Failure(
                    message,
                    [f"within {condition.bound} of {what}", *condition_lines(condition)],
                    [f"t={held:8.3f}  held, {took:.3f}s (client time) after t={origin:.3f}"],
                ),
            )

    def _wiring(self) -> dict[str, ServerWiring]:
        return {
            name: ServerWiring(rig.proxies.gateway_url, rig.proxies.base_url + "/api/v1")
            for name, rig in self.servers.items()
            if rig.proxies is not None
        }

    def _expect(self, condition: Condition, outcome: StepOutcome) -> None:
        self._catch_up()
        obs = self._with_live_messages(condition, self.observer.series[-1])
        wrong = check(condition, obs, self._signals_since(self._checked_at))
        if wrong:
            message = f"{self._where(outcome)}the state now differs"
            raise StepFailed(message, self._condition_failure(message, condition, wrong, 0.0))

    def _condition_failure(
        self, title: str, condition: Condition, wrong: list[str], since: float
    ) -> Failure:
        """Expected vs observed, side by side: the condition against what was seen
        since the step began (the state current then included)."""
        series = self.observer.since(since)
        screen = series[-1].screen_server or ""
        observed: list[str] = []

        def add(what: str, items: list[Seen]) -> None:
            observed.extend(f"t={s.t:8.3f}  {what}: {s.text}" for s in items)

        for name in sorted(condition.status or {}):
            add(f"status {name}", _dedupe_seen(series, partial(_status_of, name)))
        if condition.banner is not None:
            name = condition.banner.server or screen
            add(f"banner {name}", banner_series(series, name))
        for name in sorted(condition.dot or {}):
            add(f"dot {name}", dot_series(series, name))
        if condition.composer is not None:
            for part in ("placeholder", "label", "text"):
                if getattr(condition.composer, part) is not None:
                    add(f"composer {part}", composer_series(series, screen, part))
        if condition.message_view is not None:
            add("message view", _dedupe_seen(series, lambda o: repr(o.message_view)))
        observed += [f"now: {w}" for w in wrong]
        return Failure(title, condition_lines(condition), observed)

    # ------------------------------------------------------------------ verdict

    def _merge_server_history(self) -> None:
        start_wall = float(self.timeline.records[0].data.get("wall", time.time()))
        start_t = self.timeline.records[0].t
        for rig in self.servers.values():
            for h in read_history(rig.history_path):
                t = start_t + float(h.get("t", start_wall)) - start_wall
                self.timeline.add(
                    t,
                    f"server:{rig.name}",
                    str(h.get("kind", "")),
                    str(h.get("name", "")),
                    dict(h.get("data") or {}),
                )

    def _property_failures(
        self, records: list[Record], series: list[Observation], wiring: dict[str, ServerWiring]
    ) -> list[Failure]:
        """With the `check:properties` tag: the contract's run-wide properties
        (sim/properties.py, docs/simulation.md), as `accord-rig explore` checks them."""
        from sim.properties import PROPERTIES_TAG, all_violations

        if PROPERTIES_TAG not in self.scenario.tags:
            return []
        found = all_violations(records, series, wiring, self.timings.rest_wait, self.timeline.now())
        return [Failure(f"property: {v}") for v in found]

    def _stored(self, rig: ServerRig) -> list[dict[str, Any]]:
        """What the server stored (fake_control.stored_messages' rows; an external
        server's are the messages listed over REST at the end)."""
        if rig.rest is not None:
            return self._listed.get(rig.name, [])
        return stored_messages(rig.db)

    def _user_id(self, rig: ServerRig) -> str | None:
        if rig.rest is not None:
            account = rig.rest.users.get(rig.setup.user)
            return account.user_id if account is not None else None
        return user_id(rig.db, rig.setup.user)

    def _judge(self) -> None:
        self._merge_server_history()
        records = sorted(self.timeline.records, key=lambda r: r.t)
        self._catch_up()
        series = self.observer.series
        wiring = self._wiring()
        for name, expect in self.scenario.timeline.servers.items():
            if self.targets.get(name) is not None:  # no history: named in result.unjudged
                expect = expect.model_copy(update={"server": None})
            self.result.failures += judge_server(
                name, expect, records, series, wiring, self.timescale
            )
        self.result.failures += judge_run(
            self.scenario.timeline,
            RunRecords(records, series, wiring),
            self.timescale,
            self._heartbeat(),
        )
        self.result.failures += self._property_failures(records, series, wiring)
        stored = {name: self._stored(rig) for name, rig in self.servers.items()}
        users = {name: self._user_id(rig) or "" for name, rig in self.servers.items()}
        external = {name: stored[name] for name, rig in self.servers.items() if rig.rest}
        if external:  # no nonces kept there: credit by answer id, then by text
            stored |= attribute_sends(records, external, users)
        report = check_delivery(records, stored, users)
        expected = self.scenario.timeline.delivery
        if expected.messages_match_server:
            report.mismatched_lists += self._list_mismatches(stored)
        self.result.delivery = report
        self.timeline.add(self.timeline.now(), "rig", "log", "delivery", report.counts())
        wrong = [
            f"{k}: expected {getattr(expected, k)}, counted {v}"
            for k, v in report.counts().items()
            if getattr(expected, k, None) is not None and getattr(expected, k) != v
        ]
        if not report.ok or wrong:
            wanted = {k: getattr(expected, k, None) for k in report.counts()}
            rows = [
                f"{k} {0 if v is None else v}"
                for k, v in wanted.items()
                if v is not None or k in ("lost", "duplicated", "reordered", "unexpected")
            ]
            self.result.failures.append(
                Failure("delivery (client-behaviour.md s.6)", rows, [report.summary(), *wrong])
            )

    def _list_mismatches(self, stored: dict[str, list[dict[str, Any]]]) -> list[str]:
        """The selected channel's list against the server's, if the run ended synced;
        not when its view shows a failed or timed-out load instead of the list (s.5:
        the user clicks to retry; explore --seed 21 found a refetch answered 500 after
        the last sync read as "the client lacks 1 of the server's messages")."""
        problems: list[str] = []
        if self.observer.series and self.observer.series[-1].message_view not in ("", LOADING):
            return problems
        for (server, channel_id), ids in self._final_lists.items():
            last = [s for s in status_series(signals(self.timeline.records), server)]
            if not last or last[-1].text != "connected":
                continue
            server_ids = [
                str(m["id"]) for m in stored.get(server, []) if str(m["channel_id"]) == channel_id
            ]
            rest = self.servers[server].rest
            if rest is not None:  # a shared server: what it held before the run is not judged
                ids = [i for i in ids if int(i) > rest.newest_before(channel_id)]
            problems += compare_lists(server, channel_id, ids, server_ids)
        return problems

    def _client_lists(self) -> dict[tuple[str, str], list[str]]:
        """The selected channel's message ids as the client holds them, at the end."""
        assert self.client is not None
        selected = self.client.core.selected_channel()
        if selected is None:
            return {}
        server, channel_id = selected
        ids = [str(m["id"]) for m in self.client.core.messages(server, channel_id) if "id" in m]
        return {(server, channel_id): ids}


def longest_wait(scenario: Scenario, timescale: float | None = None) -> float:
    """Real seconds a passing run of `scenario` can spend in its steps at most: every
    `wait_for` up to its deadline, every `pause` in full (setup and teardown apart).
    For callers that bound a whole run, e.g. a test that runs part of the catalogue."""
    scale = timescale or scenario.setup.timescale or DEFAULT_TIMESCALE
    # The first server's heartbeat, as ScenarioRun._heartbeat (setup has at least one).
    heartbeat = ScenarioRun._heartbeat_of(next(iter(scenario.setup.servers.values())))
    total = 0.0
    for step in scenario.steps:
        kind, value = step_kind(step), step_value(step)
        if kind == "wait_for":
            total += scaled_deadline(value.bound, scale, heartbeat)
        elif kind == "pause":
            total += scaled_pause(value, scale, heartbeat)
    return total


def _check_plays() -> None:
    missing = [kind for kind, entry in STEP_KINDS.items() if entry.handler is None]
    if missing:
        raise RuntimeError(f"step kinds without a handler in ScenarioRun: {', '.join(missing)}")


_check_plays()


def _status_of(server: str, obs: Observation) -> str:
    return obs.server(server).status


def _dedupe_seen(series: list[Observation], value: Callable[[Observation], str]) -> list[Seen]:
    out: list[Seen] = []
    for obs in series:
        text = value(obs)
        if not out or out[-1].text != text:
            out.append(Seen(obs.t, text, text))
    return out


DEFAULT_PASSWORD = ServerSetup.model_fields["password"].default


def server_args(setup: ServerSetup) -> list[str]:
    """The fake server's command-line options a server's setup asks for."""
    extra: list[str] = []
    if setup.heartbeat is not None:
        ms = setup.heartbeat.resolve(DEFAULT_HEARTBEAT) * 1000
        extra += ["--heartbeat-interval", str(round(ms))]
    for behaviour in setup.behaviours:
        extra += ["--behaviour", behaviour]
    return extra


@dataclass
class NamedMessage:
    """A message a step created and named with `as:`; its id is found when needed."""

    server: str
    channel: str  # the channel's name
    text: str
    nonce: str | None = None  # the client's sends
    message_id: str | None = None  # known at once for another user's post


def fault_spec(kind: str, value: Any) -> dict[str, Any]:
    if kind == "server_close":
        return {"kind": "close", "code": value.code, "reason": value.reason}
    if kind == "invalid_session":
        return {"kind": "invalid_session", "resumable": value.resumable}
    return dict(value.faults())


def toxic_spec(value: Any) -> dict[str, Any]:
    """A scenario's toxic as chaos.parse_toxic takes it (durations in Toxiproxy units)."""
    attributes: dict[str, Any] = {}
    for key, raw in value.attributes.items():
        seconds = value.attribute_seconds(key)
        if seconds is not None and isinstance(raw, str):
            unit = 1_000_000 if TOXIC_ATTRIBUTES[value.type][key] == "us" else 1000
            attributes[key] = seconds * unit
        else:
            attributes[key] = raw
    spec: dict[str, Any] = {
        "type": value.type,
        "stream": value.stream,
        "toxicity": value.toxicity,
        "attributes": attributes,
    }
    if value.name:
        spec["name"] = value.name
    return spec




async def chaos_step(network: NetworkChaos, processes: ProcessChaos, kind: str, value: Any) -> None:
    """A network or process fault step (CHAOS_STEPS), alike in a scenario and a load run."""
    if kind == "toxic":
        await network.add_toxic(value.proxy, toxic_spec(value))
    elif kind == "proxy_down":
        for proxy in proxies_of(value):
            await network.down(proxy)
    elif kind == "kill_server":
        await processes.kill(value)
    elif kind == "freeze_server":
        await processes.freeze(value)
    elif kind == "thaw_server":
        await processes.thaw(value)
    else:
        raise ValueError(f"{kind!r} is not a chaos step")


def proxies_of(target: str) -> list[str]:
    return [target] if "." in target else [f"{target}.rest", f"{target}.gateway"]


async def heal_network(network: NetworkChaos, target: str, servers: Sequence[str]) -> list[str]:
    """Heal `all`, SERVER or SERVER.PROXY; the servers whose own faults go too."""
    if target == "all":
        await network.heal()
        return list(servers)
    for proxy in proxies_of(target):
        await network.heal(proxy)
    return [] if "." in target else [target]
