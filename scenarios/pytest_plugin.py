"""pytest plugin (entry point `pytest11: accord_rig`): every `*.scenario.yaml` is a
test file holding one scenario; its tags are markers (`flow:x-y` -> `flow_x_y`).
Every `*.load.yaml` is a test file holding one load run (docs/load.md): it passes
when `accord-rig load` would exit 0 (every threshold held), fails on a threshold
(the thresholds table is the failure report) and is broken when the rig could not
run it; a bad load file is a collection error with its file:line: field messages.

A malformed file is a collection error carrying the loader's message (file, line,
field), never a traceback. Scenarios need the real Toxiproxy: one server per pytest
process, started on first use and stopped at the end; if it is missing the
scenario fails (it is not skipped).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from client.core.bugs import BUG_RANGE
from load.loader import SUFFIX as LOAD_SUFFIX
from scenarios.errors import ScenarioError
from scenarios.external import ExternalTarget, needs_missing
from scenarios.loader import SUFFIX, LoadedScenario, load_scenario
from scenarios.render import failure_report
from scenarios.runner import RunOptions, ScenarioResult, ScenarioRun, longest_wait
from scenarios.server_backends import SERVER_BACKENDS, default_backend
from scenarios.timescale import DEFAULT_TIMESCALE

SUMMARY_PROPERTY = "accord_rig_summary"
_TOXIPROXY = pytest.StashKey[Any]()
_NAMES = pytest.StashKey[dict[str, Path]]()
_EXTERNAL = pytest.StashKey[ExternalTarget]()


def marker_name(tag: str) -> str:
    """`flow:gateway-disconnect` -> `flow_gateway_disconnect`."""
    return re.sub(r"[^a-z0-9_]", "_", tag)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("accord-rig", "accord-rig scenarios")
    group.addoption(
        "--rig-timescale",
        type=float,
        default=None,
        help="timescale for every scenario (default: each file's, else 0.05)",
    )
    group.addoption("--rig-seed", type=int, default=None, help="client RNG seed for every scenario")
    group.addoption("--rig-repeat", type=int, default=1, help="run each scenario N times")
    group.addoption(
        "--rig-tag",
        action="append",
        default=[],
        help="only scenarios with this tag (repeatable: any of them)",
    )
    group.addoption(
        "--rig-bug",
        type=int,
        action="append",
        default=[],
        help=f"switch regression bug N ({BUG_RANGE}) on in the client for every scenario",
    )
    group.addoption(
        "--rig-servers",
        choices=SERVER_BACKENDS,
        default=None,
        help="where fake servers run: process (default) or docker (the compose stack)",
    )
    group.addoption(
        "--rig-target",
        choices=("fake", "external"),
        default="fake",
        help="fake: the rig's fake servers (default); external: --rig-server-url",
    )
    group.addoption("--rig-server-url", default=None, help="the external server's URL")
    group.addoption(
        "--rig-server-command", default=None, help="start the external server with this command"
    )
    group.addoption("--rig-server-ca", default=None, help="the https external server's CA")
    group.addoption("--rig-accounts", default=None, help="accounts file for the external server")
    group.addoption(
        "--rig-register", action="store_true", help="register fresh accounts on the external server"
    )
    group.addoption(
        "--rig-server-timescale",
        type=float,
        default=None,
        help="the external server's timescale when the rig cannot set it (default 1.0)",
    )
    group.addoption(
        "--rig-out",
        default=None,
        help="keep each run's timeline, logs and databases under this folder",
    )


class ScenarioFailed(AssertionError):
    """The client did not behave as the scenario says (Allure: failed)."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.loaded.scenario.name)
        self.result = result


class RigBroken(RuntimeError):
    """The rig itself could not play the scenario (Allure: broken)."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.error)
        self.result = result


class ScenarioFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        try:
            loaded = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        names = self.config.stash.setdefault(_NAMES, {})
        name = loaded.scenario.name
        if name in names and names[name] != self.path:
            line = loaded.lines.line_of(("name",))
            raise self.CollectError(
                f"{self.path}:{line}: name: duplicate scenario name {name!r} (also {names[name]})"
            )
        names[name] = self.path
        wanted = self.config.getoption("--rig-tag")
        if wanted and not set(wanted) & set(loaded.scenario.tags):
            return []
        repeat = max(1, int(self.config.getoption("--rig-repeat")))
        items: list[pytest.Item] = []
        for run in range(repeat):
            item_name = name if repeat == 1 else f"{name}[run{run + 1}]"
            item = ScenarioItem.from_parent(self, name=item_name, loaded=loaded)
            timeout = scenario_timeout(
                loaded, external_target(self.config), self.config.getoption("--rig-timescale"),
                _configured_timeout(self.config),
            )
            if timeout is not None:
                item.add_marker(pytest.mark.timeout(timeout))
            for tag in loaded.scenario.tags:
                marker = marker_name(tag)
                self.config.addinivalue_line("markers", f"{marker}: scenario tag {tag}")
                item.add_marker(marker)
            items.append(item)
        return items


SETUP_ALLOWANCE = 60.0
"""Real seconds a run spends beyond its steps' waits: servers, logins, the delivery check."""


def scenario_timeout(
    loaded: LoadedScenario, external: ExternalTarget | None, wanted: float | None,
    configured: float,
) -> float | None:
    """A per-test timeout longer than the configured one, for a scenario whose waits
    outgrow it at the run's timescale: a server whose timescale the rig cannot set plays
    a `setup.timescale: 0.02` scenario in real time. None: the configured one holds."""
    if external is None:
        return None
    scale = external.run_timescale(wanted or loaded.scenario.setup.timescale or DEFAULT_TIMESCALE)
    bound = longest_wait(loaded.scenario, scale) + SETUP_ALLOWANCE
    return bound if configured and bound > configured else None


def _configured_timeout(config: pytest.Config) -> float:
    """pytest-timeout's timeout for this run (--timeout, else the ini); 0: none, also
    when pytest-timeout is not installed (the rig's image has no such plugin, and
    `getini` of an unknown option raises)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return 0.0
    value = config.getoption("timeout", None) or config.getini("timeout") or 0
    return float(value)


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: LoadedScenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.result: ScenarioResult | None = None

    def runtest(self) -> None:
        external = external_target(self.config)
        skip, _ = needs_missing(self.loaded, external)
        if skip:  # never played, never passed: JUnit <skipped message=...>
            pytest.skip(skip)
        toxiproxy = _toxiproxy(self.config)  # raises (a failure) when Toxiproxy is missing
        options = RunOptions(
            toxiproxy=toxiproxy,
            work_dir=self._work_dir(),
            timescale=self.config.getoption("--rig-timescale"),
            seed=self.config.getoption("--rig-seed"),
            bugs=tuple(self.config.getoption("--rig-bug")),
            servers=self.config.getoption("--rig-servers") or default_backend(),
            external=external,
        )
        run = ScenarioRun(self.loaded, options)
        self.result = asyncio.run(run.run())
        # The timeline picture costs ~1 s of CPU a run: draw it only when kept.
        if self.config.getoption("--alluredir", None) or self.config.getoption("--rig-out"):
            _report_to_allure(self.result, run.secrets())
        # The summary row travels with the report (also from xdist workers) to the CLI.
        self.user_properties.append((SUMMARY_PROPERTY, _summary_json(self.name, self.result)))
        for reason in self.result.unjudged:  # said, in the report and in JUnit
            self.user_properties.append(("not_judged", reason))
        if self.result.error:
            raise RigBroken(self.result)
        if not self.result.passed:
            raise ScenarioFailed(self.result)

    def _work_dir(self) -> Path:
        return _work_dir(self.config, self.name, "scenario")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed | RigBroken):
            return failure_report(excinfo.value.result)
        if isinstance(excinfo.value, RigUnavailable):
            return f"scenario {self.name!r} could not run: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.lines.line_of(("name",)) - 1, f"scenario: {self.name}"


def external_target(config: pytest.Config) -> ExternalTarget | None:
    """The run's external target (--rig-target external), made once per pytest process."""
    if config.getoption("--rig-target") != "external":
        return None
    target = config.stash.get(_EXTERNAL, None)
    if target is None:
        target = ExternalTarget.create(
            config.getoption("--rig-server-url"),
            command=config.getoption("--rig-server-command"),
            ca=config.getoption("--rig-server-ca"),
            accounts=config.getoption("--rig-accounts"),
            register=config.getoption("--rig-register"),
            timescale=config.getoption("--rig-server-timescale"),
        )
        config.stash[_EXTERNAL] = target
    return target


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    if file_path.name.endswith(LOAD_SUFFIX):
        return LoadFileCollector.from_parent(parent, path=file_path)
    return None


class LoadFailed(AssertionError):
    """A threshold of the load file did not hold (the report is the thresholds table)."""


class LoadBroken(RuntimeError):
    """The rig could not carry out the load run."""


class LoadFileCollector(pytest.File):
    def collect(self) -> list[pytest.Item]:
        from load.loader import load_load_file

        try:
            loaded = load_load_file(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        return [LoadItem.from_parent(self, name=loaded.load.name, loaded=loaded)]


class LoadItem(pytest.Item):
    """One load run, graded as `accord-rig load` grades it (load.report.passed)."""

    def __init__(self, *, loaded: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.report_text = ""

    def runtest(self) -> None:
        from rich.console import Console

        from load.conductor import LoadOptions, play_load
        from load.figures import compute, judge
        from load.report import passed, print_run, write_figures, write_png

        toxiproxy = _toxiproxy(self.config)
        work = _work_dir(self.config, self.name, "load")
        run = asyncio.run(play_load(self.loaded, LoadOptions(work_dir=work, toxiproxy=toxiproxy)))
        figures = compute(run)
        verdicts = judge(run, figures)
        write_figures(run, figures, verdicts)
        if self.config.getoption("--rig-out"):
            write_png(run, figures)
        console = Console(record=True, width=140, file=io.StringIO(), color_system=None)
        print_run(run, figures, verdicts, console)
        self.report_text = console.export_text()
        for verdict in verdicts:
            self.user_properties.append(
                (f"threshold {verdict.name}", f"{verdict.measured} ({verdict.limit})")
            )
        if run.error:
            raise LoadBroken(run.error)
        if not passed(run, verdicts):
            raise LoadFailed(self.name)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LoadFailed | LoadBroken):
            return self.report_text or str(excinfo.value)
        if isinstance(excinfo.value, RigUnavailable):
            return f"load file {self.name!r} could not run: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.lines.line_of(("name",)) - 1, f"load: {self.name}"


def _work_dir(config: pytest.Config, name: str, fallback: str) -> Path:
    out = config.getoption("--rig-out")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80]
    if out:
        path = Path(out) / safe
        if path.exists():  # a previous run's database must not leak into this one
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path
    factory = config._tmp_path_factory  # type: ignore[attr-defined]
    return Path(factory.mktemp(safe[:30] or fallback, numbered=True))


class RigUnavailable(RuntimeError):
    """A tool the rig needs (Toxiproxy) is missing: the scenario fails, never skips."""


def _toxiproxy(config: pytest.Config) -> Any:
    server = config.stash.get(_TOXIPROXY, None)
    if server is None:
        from chaos import ToxiproxyServer, ToxiproxyUnavailable

        try:
            server = ToxiproxyServer.from_env_or_start()
        except ToxiproxyUnavailable as exc:
            raise RigUnavailable(str(exc)) from None
        config.stash[_TOXIPROXY] = server
    return server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_TOXIPROXY, None)
    if server is not None:
        server.stop()
        del config.stash[_TOXIPROXY]


def _summary_json(name: str, result: ScenarioResult) -> str:
    from reports.summary import summary_row

    first = result.error or (result.failures[0].title if result.failures else "")
    return json.dumps(dataclasses.asdict(summary_row(name, result.passed, result.records, first)))


def _report_to_allure(result: ScenarioResult, secrets: list[str]) -> None:
    """Steps and attachments, emitted after the run, synchronously (allure steps
    cannot wrap async code)."""
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a rig dependency
        return
    from scenarios.allure_report import attach_run

    attach_run(allure, result, secrets)
