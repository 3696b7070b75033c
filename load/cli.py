"""`accord-rig load FILE...`: run load files (docs/load.md).

Every file is validated first (a bad file: exit 4 with file:line: field: message,
nothing run). Exit codes as `accord-rig run`: 0 every threshold held, 1 a threshold
failed or the rig could not run a file, 4 bad load file or usage, 130 interrupted
(Ctrl-C: every process, proxy and port the run made is cleaned up first).
Progress goes to stderr, the thresholds table too; `--junitxml` writes JUnit.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from scenarios.errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 4, 130
DEFAULT_PATHS = ["load/files"]
DRIVERS = ("asyncio", "gevent")  # load.locustfile.DRIVERS (that module needs Locust's patching)
err = Console(stderr=True, highlight=False, width=160)


class _BadUsage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _BadUsage(f"{self.prog}: {message}")


def _rate_limit(text: str) -> str | int:
    if text in ("faithful", "off"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"faithful, off or a number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="accord-rig load", description="run load files: a crowd of real clients under chaos"
    )
    p.add_argument("paths", nargs="*", help="*.load.yaml files or folders (default: load/files)")
    p.add_argument("--validate", action="store_true", help="only check the files")
    p.add_argument("--workers", type=int, default=0,
                   help="local Locust workers (0: one process; -1: one per core)")  # fmt: skip
    p.add_argument("--remote-workers", type=int, default=0,
                   help="also wait for N workers started on other machines")  # fmt: skip
    p.add_argument("--master-bind", default="127.0.0.1", help="where the master listens")
    p.add_argument("--proxy-host", default="127.0.0.1",
                   help="where the run's proxies listen (workers elsewhere dial it)")  # fmt: skip
    p.add_argument("--tls-name",
                   help="the host name (or address) clients dial, carried by the servers' "
                   "test certificates (default: --proxy-host)")  # fmt: skip
    p.add_argument(
        "--rate-limit",
        type=_rate_limit,
        help="override every fake server's limiter: faithful, off or N per 60 s",
    )
    p.add_argument("--clients", type=int, help="override crowd.clients")
    p.add_argument("--driver", choices=DRIVERS, default=DRIVERS[0],
                   help="each client's driver (default asyncio: the faster)")  # fmt: skip
    p.add_argument("--bridge", choices=("notify", "poll"), default="notify",
                   help="with --driver asyncio: how greenlets wait for its loop")  # fmt: skip
    p.add_argument("--junitxml", help="write JUnit XML here")
    p.add_argument("--out", help="keep each run's folder (Locust CSV/HTML, PNG, logs) here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from load.loader import discover, load_all

    try:
        args = _parser().parse_args(argv)
        files = discover(args.paths or DEFAULT_PATHS)
        if not files:
            raise UsageError(f"no *.load.yaml under {', '.join(args.paths or DEFAULT_PATHS)}")
        loaded, problems = load_all(files)
        if problems:
            for problem in problems:
                err.print(f"[red]error[/red] {escape(str(problem))}", soft_wrap=True)
            err.print(f"{len(problems)} problem(s) in load files; nothing was run")
            return EXIT_BAD_INPUT
        if args.validate:
            err.print(f"[green]ok[/green] {len(loaded)} load file(s) valid")
            return EXIT_OK
        workers = args.workers
        if workers < 0:
            import os

            workers = os.cpu_count() or 1
        return asyncio.run(_run_all(loaded, args, workers))
    except (_BadUsage, UsageError) as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted; everything the run started was stopped")
        return EXIT_INTERRUPTED


async def _run_all(loaded: list[Any], args: argparse.Namespace, workers: int) -> int:
    from load.conductor import LoadOptions, play_load
    from load.figures import compute, judge
    from load.report import passed, print_run, write_figures, write_junit, write_png

    results = []
    all_passed = True
    temp = None if args.out else Path(tempfile.mkdtemp(prefix="accord-load-"))
    base = Path(args.out) if args.out else temp
    assert base is not None
    try:
        for item in loaded:
            work = base / item.path.name.removesuffix(".load.yaml")
            if work.exists():
                shutil.rmtree(work)
            started = time.monotonic()
            err.print(f"[bold]load[/bold] {escape(item.load.name)} ({item.path})")
            options = LoadOptions(
                work_dir=work,
                workers=workers,
                remote_workers=args.remote_workers,
                master_bind=args.master_bind,
                proxy_host=args.proxy_host,
                tls_name=args.tls_name,
                rate_limit=args.rate_limit,
                clients=args.clients,
                driver=args.driver,
                bridge=args.bridge,
                on_progress=lambda line: err.print(f"  [dim]{escape(line)}[/dim]", soft_wrap=True),
            )
            run = await play_load(item, options)
            figures = compute(run)
            verdicts = judge(run, figures)
            write_figures(run, figures, verdicts)
            picture = write_png(run, figures)
            print_run(run, figures, verdicts, err)
            if args.out:
                err.print(
                    f"  reports: {work} (locust.html, locust_stats.csv, load.png, figures.json)"
                )
                if picture:
                    err.print(f"  picture: {picture}")
            err.print(f"  [dim]{time.monotonic() - started:.1f}s[/dim]")
            all_passed &= passed(run, verdicts)
            results.append((run, figures, verdicts))
    finally:
        if args.junitxml and results:
            write_junit(results, Path(args.junitxml))
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return EXIT_OK if all_passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
