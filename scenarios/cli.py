"""`accord-rig`: run, list and validate scenarios; render the HTML report.

`run` validates every file first (a bad file: exit 4 with file:line: field:
message, nothing run), then delegates to pytest with this package's plugin, so
JUnit XML (`--junitxml`) and Allure results (`--alluredir`) come from pytest.
Exit codes: 0 all passed, 1 a scenario failed, 4 bad scenario file or usage,
130 interrupted. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from client.core.bugs import BUG_NUMBERS, BUG_RANGE
from conform.command import add_parser as add_conform_parser
from conform.command import cmd_conform
from scenarios.errors import UsageError
from scenarios.external import ExternalTarget, needs_missing
from scenarios.loader import LoadedScenario, discover, load_all
from scenarios.server_backends import ENV_SERVERS, SERVER_BACKENDS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 4, 130
DEFAULT_PATHS = ["scenarios"]
err = Console(stderr=True, highlight=False)


class _BadUsage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit 2; usage is exit 4 here
        raise _BadUsage(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accord-rig", description="Accord client resilience rig")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run scenarios (through pytest)")
    run.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios/)")
    run.add_argument("-k", dest="keyword", help="only scenarios whose name matches (pytest -k)")
    run.add_argument("--tag", action="append", default=[], help="only scenarios with this tag")
    run.add_argument(
        "--timescale", type=_positive_float, help="override every scenario's timescale"
    )
    run.add_argument("--seed", type=int, help="override every scenario's seed")
    run.add_argument("--repeat", type=_positive_int, default=1, help="run each scenario N times")
    run.add_argument("--junitxml", help="write JUnit XML here")
    run.add_argument("--alluredir", help="write Allure results here")
    run.add_argument("-n", dest="workers", help="parallel workers (pytest-xdist), e.g. 2 or auto")
    run.add_argument("--out", help="keep every run's timeline, logs and databases here")
    run.add_argument(
        "--servers",
        choices=SERVER_BACKENDS,
        help="fake servers as local processes (default) or docker containers "
        f"(the compose stack; also ${ENV_SERVERS})",
    )
    _add_target_options(run)
    run.add_argument(
        "--bug",
        type=_bug_number,
        action="append",
        default=[],
        help=f"switch regression bug N ({BUG_RANGE}) on in the client (mutation runs)",
    )
    run.add_argument(
        "--sim",
        action="store_true",
        help="play the scenarios in simulation: client and server cores on virtual time "
        "over a simulated network (docs/simulation.md); no Toxiproxy, no processes",
    )
    run.add_argument(
        "--compare",
        metavar="JUNIT",
        help="with --sim: print the agreement table against a real run's JUnit XML",
    )
    run.add_argument("-v", dest="verbose", action="store_true", help="with --sim: show failures")
    lst = sub.add_parser("list", help="list scenarios")
    lst.add_argument("paths", nargs="*")
    lst.add_argument("--tags", action="store_true", help="list the tags in use instead")
    _add_target_options(lst)
    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("paths", nargs="+")
    sub.add_parser("load", help="run load files (accord-rig load --help; load/cli.py)")
    rep = sub.add_parser("report", help="render the HTML report from Allure results")
    rep.add_argument("--alluredir", default="out/allure-results")
    rep.add_argument("-o", "--output", default="out/allure-report")
    add_conform_parser(sub)
    from sim.explore import add_parser as add_explore_parser

    add_explore_parser(sub)
    return parser


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    """The external target's options (docs/external.md), for run and list."""
    group = parser.add_argument_group("target (docs/external.md)")
    group.add_argument(
        "--target",
        choices=("fake", "external"),
        default="fake",
        help="fake: the rig's fake servers (default); external: an Accord server at --server-url",
    )
    group.add_argument(
        "--server-url",
        metavar="URL",
        help="http://HOST:PORT (the rig's TLS front goes before it) or https://HOST:PORT; "
        "{port}: a free port the rig picks for --server-command",
    )
    group.add_argument(
        "--server-command",
        metavar="CMD",
        help="the rig starts the server with this command per scenario server (then "
        "kill/freeze/restart work); placeholders {port} {work} {timescale} {heartbeat_ms}",
    )
    group.add_argument("--server-ca", metavar="FILE", help="the CA of an https:// server")
    group.add_argument(
        "--accounts",
        metavar="FILE",
        help="YAML: scenario user (alice, bob, ...) -> NAME:PASSWORD on the server",
    )
    group.add_argument(
        "--register",
        action="store_true",
        help="register a fresh account per scenario user and run (<user><run id>)",
    )
    group.add_argument(
        "--server-timescale",
        type=_positive_float,
        metavar="F",
        help="the server's timescale when the command does not take {timescale} (default 1.0)",
    )


def _external(args: argparse.Namespace) -> ExternalTarget | None:
    """The external target the options name (UsageError when they do not fit)."""
    if args.target != "external":
        given = [o for o in ("server_url", "server_command", "server_ca", "accounts")
                 if getattr(args, o)]
        if given or args.register:
            raise UsageError("--server-url & co. need --target external")
        return None
    return ExternalTarget.create(
        args.server_url,
        command=args.server_command,
        ca=args.server_ca,
        accounts=args.accounts,
        register=args.register,
        timescale=args.server_timescale,
    )


def _target_pytest_args(args: argparse.Namespace) -> list[str]:
    if args.target != "external":
        return []
    out = ["--rig-target", "external", "--rig-server-url", args.server_url]
    for option in ("server_command", "server_ca", "accounts", "server_timescale"):
        value = getattr(args, option)
        if value is not None:
            out += [f"--rig-{option.replace('_', '-')}", str(value)]
    if args.register:
        out.append("--rig-register")
    return out


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _bug_number(text: str) -> int:
    value = int(text)
    if value not in BUG_NUMBERS:
        raise argparse.ArgumentTypeError(f"bugs are numbered {BUG_RANGE}, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _load(paths: Sequence[str]) -> list[LoadedScenario] | None:
    """Every scenario under `paths`, or None after printing every problem."""
    files = discover(paths or DEFAULT_PATHS)
    if not files:
        raise UsageError(f"no *.scenario.yaml under {', '.join(paths or DEFAULT_PATHS)}")
    loaded, problems = load_all(files)
    if problems:
        for problem in problems:
            err.print(f"[red]error[/red] {escape(str(problem))}", soft_wrap=True)
        err.print(f"{len(problems)} problem(s) in scenario files; nothing was run")
        return None
    return loaded


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = _load(args.paths)
    if loaded is None:
        return EXIT_BAD_INPUT
    err.print(f"[green]ok[/green] {len(loaded)} scenario(s) valid")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    loaded = _load(args.paths)
    if loaded is None:
        return EXIT_BAD_INPUT
    if args.tags:
        counts = Counter(tag for item in loaded for tag in item.scenario.tags)
        for tag, count in sorted(counts.items()):
            print(f"{tag}\t{count}")
        return EXIT_OK
    external = _external(args)
    if external is not None:
        return _list_for(loaded, external)
    for item in loaded:
        tags = ", ".join(item.scenario.tags)
        print(f"{item.scenario.name}\t{item.path}\t{tags}")
    return EXIT_OK


def _list_for(loaded: list[LoadedScenario], external: ExternalTarget) -> int:
    """Which scenarios can run on the external target, and why the others cannot."""
    runnable = 0
    for item in loaded:
        skip, not_judged = needs_missing(item, external)
        if skip:
            verdict = f"skip\t{skip}"
        else:
            runnable += 1
            verdict = "run" + "".join(f"\tnot judged: {reason}" for reason in not_judged)
        print(f"{item.scenario.name}\t{item.path}\t{verdict}")
    err.print(f"{runnable} of {len(loaded)} scenario(s) can run on {external.describe()}")
    return EXIT_OK


class _Progress:
    """A pytest plugin object: one line per scenario on stderr, and how the run ended."""

    def __init__(self) -> None:
        self.rows: list[Any] = []  # reports.summary.SummaryRow per scenario run
        self.collect_errors = 0
        self.interrupted = False
        self.started = time.monotonic()

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collect_errors += 1

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted = True

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        self._keep_summary(report)
        name = report.nodeid.split("::", 1)[-1]
        if report.skipped:  # a scenario that needs what the target lacks
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            reason = str(reason).removeprefix("Skipped: ")
            err.print(f"[yellow]SKIP[/yellow] {escape(name)}: {escape(reason)}", soft_wrap=True)
            return
        mark = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
        unjudged = [v for k, v in report.user_properties if k == "not_judged"]
        note = f" [dim](not judged: {escape('; '.join(unjudged))})[/dim]" if unjudged else ""
        err.print(
            f"{mark} {escape(name)} [dim]({report.duration:.2f}s)[/dim]{note}", soft_wrap=True
        )

    def _keep_summary(self, report: Any) -> None:
        from reports.summary import RunFacts, SummaryRow
        from scenarios.pytest_plugin import SUMMARY_PROPERTY

        for key, value in report.user_properties:
            if key == SUMMARY_PROPERTY:
                row = json.loads(value)
                row["facts"] = RunFacts(**row["facts"])
                self.rows.append(SummaryRow(**row))


def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args.paths)
    if loaded is None:
        return EXIT_BAD_INPUT
    if args.compare and not args.sim:
        raise UsageError("--compare goes with --sim")
    if args.sim:
        from sim.cli import cmd_run_sim

        return cmd_run_sim(args, loaded)
    import pytest

    pytest_args = [
        *(args.paths or DEFAULT_PATHS),
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        "console_output_style=classic",
    ]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    for tag in args.tag:
        pytest_args += ["--rig-tag", tag]
    if args.timescale is not None:
        pytest_args += ["--rig-timescale", repr(args.timescale)]
    if args.seed is not None:
        pytest_args += ["--rig-seed", str(args.seed)]
    if args.repeat > 1:
        pytest_args += ["--rig-repeat", str(args.repeat)]
    if args.junitxml:
        pytest_args += ["--junitxml", args.junitxml]
    if args.alluredir:
        pytest_args += ["--alluredir", args.alluredir]
    for bug in args.bug:
        pytest_args += ["--rig-bug", str(bug)]
    if args.workers:
        pytest_args += ["-n", args.workers]
    if args.out:
        pytest_args += ["--rig-out", args.out]
    if args.servers:
        pytest_args += ["--rig-servers", args.servers]
    if _external(args) is not None:
        pytest_args += _target_pytest_args(args)
    if importlib.util.find_spec("pytest_asyncio") is not None:
        # Scenario paths outside the repo have no ini file: keep pytest-asyncio quiet.
        pytest_args += ["-o", "asyncio_default_fixture_loop_scope=function"]
    progress = _Progress()
    err.print(f"accord-rig: {len(loaded)} scenario(s)")
    code = int(pytest.main(pytest_args, plugins=[progress]))
    if progress.rows:
        from reports.summary import print_summary

        # A pipe gets a wide table rather than rich's 80 columns.
        wide = err if err.is_terminal else Console(stderr=True, width=160, highlight=False)
        print_summary(progress.rows, console=wide)
    if progress.interrupted:
        return EXIT_INTERRUPTED
    if progress.collect_errors:
        return EXIT_BAD_INPUT
    if code == 5:
        err.print("no scenario matched the selection")
        return EXIT_BAD_INPUT
    if code == 4:
        return EXIT_BAD_INPUT
    return EXIT_OK if code == 0 else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from scenarios.html_report import render_html

    results = Path(args.alluredir)
    if not results.is_dir() or not any(results.iterdir()):
        raise UsageError(f"{results}: no Allure results (run with --alluredir first)")
    out = render_html(results, Path(args.output))
    err.print(f"report: {out}")
    return EXIT_OK


def _cmd_explore(args: argparse.Namespace) -> int:
    from sim.explore import cmd_explore

    return cmd_explore(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["load"]:  # its own options: load/cli.py
        from load.cli import main as load_main

        return load_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
        command = {
            "run": cmd_run,
            "list": cmd_list,
            "validate": cmd_validate,
            "report": cmd_report,
            "conform": cmd_conform,
            "explore": _cmd_explore,
        }[args.command]
        return command(args)
    except (_BadUsage, UsageError) as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
