"""`accord-rig conform URL`: run every probe against the target and against a fake
server this command starts on loopback (fresh database, default behaviour, the given
timescale), then print one row per probe: the target's answer, the fake's, match.

Exit codes (those of `accord-rig`): 0 every probe matches, 1 a mismatch, 4 bad usage
or a target that cannot be probed at all (unreachable, accounts refused), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conform.probes import PROBES, Answer, Probe
from conform.wire import Account, ProbeError, Server, SetupError, Target
from scenarios.errors import UsageError

PROBE_DEADLINE = 60.0
"""Real seconds one probe may take in all (the frame-limit probe makes ~80 round trips)."""
ACCOUNTS_NEEDED = 2


def add_parser(sub: Any) -> None:
    """Register `conform` on accord-rig's subcommand parsers."""
    p = sub.add_parser(
        "conform", help="probe any Accord server and compare its answers with the fake's",
        description="Probe an Accord server over its public REST API and gateway, run the "
        "same probes against a fake server started on loopback, and compare (docs/conform.md).",
    )
    p.add_argument("url", help="the server's origin: https://HOST:PORT or http://HOST:PORT")
    p.add_argument("--ca", type=Path, metavar="FILE", help="PEM CA to trust for https")
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="an account on the target (repeatable; two are needed)")
    p.add_argument("--register", action="store_true",
                   help="register fresh accounts (unique names per run) for what --user lacks")
    p.add_argument("--timescale", type=float, default=1.0,
                   help="run the fake at this timescale (the target's, when the target is a "
                   "timescaled fake; a real server: 1.0, the default)")
    p.add_argument("--probe", action="append", default=[], metavar="NAME",
                   help="only this probe (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")


@dataclass(frozen=True)
class Outcome:
    answer: Answer | None
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"answer": self.answer, "error": self.error, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Row:
    probe: Probe
    target: Outcome
    fake: Outcome

    @property
    def match(self) -> bool:
        """Equal answers; a probe that could not run on either side never matches."""
        return self.target.answer is not None and self.target.answer == self.fake.answer


@dataclass(frozen=True)
class Options:
    target: Target
    accounts: list[Account]
    register: int
    timescale: float
    probes: list[Probe]
    as_json: bool


def options_from(args: argparse.Namespace) -> Options:
    try:
        target = Target.parse(args.url, args.ca)
        accounts = [Account.parse(text) for text in args.user]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    register = max(0, ACCOUNTS_NEEDED - len(accounts)) if args.register else 0
    if len(accounts) + register < ACCOUNTS_NEEDED:
        raise UsageError(f"conform needs {ACCOUNTS_NEEDED} accounts: --user NAME:PASSWORD "
                         f"twice, or --register (got {len(accounts)})")
    if not args.timescale > 0:
        raise UsageError(f"--timescale must be > 0, got {args.timescale}")
    known = {p.name: p for p in PROBES}
    unknown = [name for name in args.probe if name not in known]
    if unknown:
        raise UsageError(f"--probe {unknown[0]}: unknown; valid: {', '.join(known)}")
    chosen = [p for p in PROBES if not args.probe or p.name in args.probe]
    return Options(target, accounts, register, args.timescale, chosen, args.json)


def cmd_conform(args: argparse.Namespace) -> int:
    # Imported here: scenarios.cli imports this module to register the subcommand.
    from scenarios.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, err

    options = options_from(args)
    started = time.monotonic()
    err.print(f"conform: {len(options.probes)} probe(s) against {options.target.origin} and "
              f"a fake server at timescale {options.timescale:g}", soft_wrap=True)
    try:
        with tempfile.TemporaryDirectory(prefix="accord-conform-") as tmp:
            rows = compare_with_fake(options, Path(tmp))
    except SetupError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    if options.as_json:
        print(json.dumps(report_json(options, rows), indent=2))
    else:
        print_table(options, rows)
    mismatched = [row.probe.name for row in rows if not row.match]
    hint = timescale_hint(rows, options.timescale)
    if hint:
        err.print(f"[yellow]hint[/yellow] {escape(hint)}", soft_wrap=True)
    err.print(f"conform: {len(rows) - len(mismatched)} of {len(rows)} match"
              + (f"; mismatch: {', '.join(mismatched)}" if mismatched else "")
              + f" ({time.monotonic() - started:.1f}s)", soft_wrap=True)
    return EXIT_FAILED if mismatched else EXIT_OK


def compare_with_fake(options: Options, tmp: Path) -> list[Row]:
    """Start `python -m fake_server` (fresh database, default behaviour), then probe it
    and the target at once (they share nothing). Started and stopped outside the event
    loop, so neither a failed target nor Ctrl-C can leave it running."""
    from chaos.processes import FakeServerProcess, ProcessFailed

    process = FakeServerProcess(tmp / "reference.db", timescale=options.timescale,
                                log_path=tmp / "reference.log")
    try:
        try:
            info = process.start()
        except ProcessFailed as exc:
            raise SetupError(f"the reference fake server did not start: {exc}") from None
        fake = Target(info.rest.removesuffix("/api/v1"), Path(info.ca))
        return asyncio.run(compare(options, fake))
    finally:
        process.stop()


async def compare(options: Options, fake: Target) -> list[Row]:
    """Every probe on both servers; SetupError if either cannot be probed at all."""
    from fake_server.store import SEED_PASSWORD, SEED_USERS

    run_id = secrets.token_hex(4)
    seed = [Account(name, SEED_PASSWORD) for name in SEED_USERS[:ACCOUNTS_NEEDED]]
    try:
        async with asyncio.TaskGroup() as group:
            on_target = group.create_task(run_probes(
                options.target, options.accounts, options.register, options.probes, run_id))
            on_fake = group.create_task(run_probes(fake, seed, 0, options.probes, run_id))
    except* SetupError as problems:
        raise problems.exceptions[0] from None
    return [Row(p, t, f) for p, t, f in zip(options.probes, on_target.result(),
                                            on_fake.result(), strict=True)]


async def run_probes(target: Target, accounts: list[Account], register: int,
                     probes: list[Probe], run_id: str) -> list[Outcome]:
    async with aiohttp.ClientSession() as http:
        server = Server(target, http, run_id)
        try:
            await server.sign_in(accounts, register)
        except ProbeError as exc:  # no answer at all: the URL is wrong or the server down
            raise SetupError(f"{target.origin}: {exc}") from None
        try:
            return [await run_one(p, server) for p in probes]
        finally:
            await server.clean_up()


async def run_one(probe: Probe, server: Server) -> Outcome:
    started = time.monotonic()
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # (Ctrl-C) that lands as the probe finishes, and the run would go on.
        async with asyncio.timeout(PROBE_DEADLINE):
            answer = await probe.run(server)
    except ProbeError as exc:
        return Outcome(None, str(exc), time.monotonic() - started)
    except TimeoutError:
        return Outcome(None, f"no result within {PROBE_DEADLINE:g}s", time.monotonic() - started)
    except Exception as exc:  # an answer the probe could not read: shown, the run goes on
        return Outcome(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return Outcome(answer, None, time.monotonic() - started)


# ---------------------------------------------------------------------- output


def timescale_hint(rows: list[Row], timescale: float) -> str | None:
    """When HELLO's intervals differ, the timescale the target seems to run at (a fake
    target started with --timescale F announces the fake's interval x F)."""
    intervals = []
    for row in rows:
        if row.probe.name != "gateway.hello":
            continue
        for outcome in (row.target, row.fake):
            try:
                data = json.loads((outcome.answer or {}).get("data", ""))
                intervals.append(int(data["heartbeat_interval"]))
            except (ValueError, TypeError, KeyError):
                return None
    if len(intervals) != 2 or intervals[0] == intervals[1] or intervals[1] <= 0:
        return None
    target, fake = intervals
    guess = timescale * target / fake
    return (f"the target's HELLO announces {target} ms, the fake's {fake} ms at timescale "
            f"{timescale:g}: if the target is a fake server started with --timescale "
            f"{guess:g}, pass --timescale {guess:g}")



def report_json(options: Options, rows: list[Row]) -> dict[str, Any]:
    return {
        "target": options.target.origin,
        "fake_timescale": options.timescale,
        "match": all(row.match for row in rows),
        "probes": [{"name": row.probe.name, "checks": row.probe.checks, "match": row.match,
                    "target": row.target.to_json(), "fake": row.fake.to_json()}
                   for row in rows],
    }


def _cell(outcome: Outcome, other: Outcome) -> str:
    if outcome.answer is None:
        return f"[red]error: {escape(outcome.error or '')}[/red]"
    theirs = other.answer or {}
    lines = []
    for fact, value in outcome.answer.items():
        line = f"{escape(fact)}: {escape(value)}"
        lines.append(line if theirs.get(fact) == value else f"[bold red]{line}[/bold red]")
    lines += [f"[bold red](no {escape(fact)})[/bold red]" for fact in theirs
              if fact not in outcome.answer]
    return "\n".join(lines)


def print_table(options: Options, rows: list[Row]) -> None:
    # A pipe gets a wide table rather than rich's 80 columns.
    console = Console(file=sys.stdout, highlight=False,
                      width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"{options.target.origin} vs the fake server "
                  f"(timescale {options.timescale:g})", show_lines=True)
    table.add_column("probe", no_wrap=True)
    table.add_column("target's answer")
    table.add_column("fake's answer")
    table.add_column("match", no_wrap=True)
    for row in rows:
        table.add_row(escape(row.probe.name), _cell(row.target, row.fake),
                      _cell(row.fake, row.target),
                      "[green]yes[/green]" if row.match else "[bold red]NO[/bold red]")
    console.print(table)
