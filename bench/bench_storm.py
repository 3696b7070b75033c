"""Reconnect storm at scale: N real clients through real Toxiproxy, every gateway
connection cut at once, and how the crowd comes back.

For each N (default 1000, 2000, 5000) one load run: N clients spawn (a few of them
send, so the delivery check has something to check), once 99% are connected the
gateway proxy goes down for 100 ms (Toxiproxy cuts every socket), then heals.
Printed per N: time to 50/95/99/100% recovered (from the fault), attempts, resume
share, memory per client (Locust processes' RSS at the storm / N, interpreter
baseline included), lost/duplicated, and the raw TLS WebSocket connect rate
measured in the same run on the same machine (fake server behind the same kind of
proxy, as many processes as the crowd, no client logic), with the ratio of the
storm's recovery rate (clients / time to 100%) to it. Also the same storm with no
client logic at all (`bare storm`: sessions held, the proxy cut, then a bare RESUME
and the refetch client-behaviour.md s.3 requires after it, 50 at a time per
process): its rate over the raw rate is the most any client could reach here.

    .venv/bin/python bench/bench_storm.py [--clients 1000 2000 5000] [--workers 2]
        [--driver asyncio|gevent] [--bridge notify|poll] [--spawn-rate 10] [--tail 240]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import ssl
import tempfile
import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

from chaos import FakeServerProcess, NetworkChaos, ToxiproxyServer
from chaos.network import ServerProxies
from client.core.frames import identify, resume
from fake_server.store import SEED_PASSWORD, SEED_USERS
from load.conductor import LoadOptions, play_load
from load.figures import Figures, compute
from load.loader import LoadedLoad
from load.schema import LoadFile
from scenarios.yaml_lines import LineMap

RAW_CONNECTS = 2000  # per measurement, split across the processes (600, about 2 s, gave 201-412/s)
RAW_CONCURRENCY = 50  # per process
SAMPLE_EVERY = 0.5  # seconds between CPU samples of the run's processes
TAIL = 240  # default seconds of run left after the spawn for the storm and its recovery


class CpuSampler:
    """Where the CPU goes during the run: every SAMPLE_EVERY s, the cumulative CPU
    time of this bench's child processes by role (fake servers, the Locust crowd,
    Toxiproxy) and the load average; `cores(start, end)` is the cores each role
    used in a window (the storm's recovery), so a row says what the wall was."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[str, float], float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[int, tuple[str, float]] = {}  # pid -> (role, last cpu seconds)

    @staticmethod
    def role(cmdline: list[str]) -> str | None:
        text = " ".join(cmdline)
        if "fake_server" in text:
            return "server"
        if "locust" in text:
            return "crowd"
        if "toxiproxy" in text:
            return "toxiproxy"
        return None

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(SAMPLE_EVERY):
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    known = self._seen.get(child.pid)
                    role = known[0] if known else self.role(child.cmdline())
                    if role is not None:
                        times = child.cpu_times()
                        self._seen[child.pid] = (role, times.user + times.system)
            totals: dict[str, float] = {}
            for role, cpu in self._seen.values():  # exited processes keep their last figure
                totals[role] = totals.get(role, 0.0) + cpu
            self.samples.append((time.time(), totals, os.getloadavg()[0]))

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def cores(self, start: float, end: float) -> dict[str, float]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] < start]
        if not inside or not before:
            return {}
        first, last = before[-1], inside[-1]
        span = max(last[0] - first[0], 1e-6)
        cores = {
            role: round((last[1].get(role, 0.0) - first[1].get(role, 0.0)) / span, 2)
            for role in last[1]
        }
        cores["load_avg_max"] = round(max(s[2] for s in inside), 2)
        return cores


def storm_file(clients: int, spawn_rate: float, tail: float = TAIL) -> LoadedLoad:
    spawn = clients / spawn_rate
    load = LoadFile.model_validate(
        {
            "name": f"storm {clients}",
            "crowd": {
                "clients": clients,
                "spawn_rate": spawn_rate,
                "servers": {"alpha": {"rate_limit": "off", "history": "light"}},
                "send_every": "60s",
                "senders": 10,
                "space_size": 100,
            },
            "run_for": f"{spawn * 1.5 + tail:.0f}s",
            "schedule": [
                {
                    "when": {"connected": "99%", "within": f"{spawn * 1.5 + 30:.0f}s"},
                    "proxy_down": "alpha.gateway",
                },
                {"after": "100ms", "heal": "alpha.gateway"},
            ],
        }
    )
    return LoadedLoad(Path("<bench_storm>"), load, LineMap())


def _raw_worker(url: str, ca: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import aiohttp

    async def main() -> None:
        context = ssl.create_default_context(cafile=ca)
        limit = asyncio.Semaphore(RAW_CONCURRENCY)
        done = 0
        connector = aiohttp.TCPConnector(ssl=context, force_close=True, limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one() -> None:
                nonlocal done
                async with limit:
                    ws = await http.ws_connect(url, heartbeat=None, autoping=False)
                    await ws.receive()  # HELLO: the socket is really up
                    await ws.close()
                    done += 1

            start = time.monotonic()
            await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
            out.put((done, time.monotonic() - start))

    asyncio.run(main())


def _bare_storm_worker(
    gateway: str, base: str, ca: str, count: int, held: Event, go: Event, out: Queue  # type: ignore[type-arg]
) -> None:
    """`count` sessions through the gateway proxy; once the cut ends them and `go` is
    set, each comes back: TLS, HELLO, RESUME, RESUMED, then the four refetch GETs
    over kept-alive REST connections. Puts (recovered, seconds)."""
    import aiohttp

    async def main() -> None:
        context = ssl.create_default_context(cafile=ca)
        limit = asyncio.Semaphore(RAW_CONCURRENCY)
        sockets = aiohttp.TCPConnector(ssl=context, force_close=True, limit=0)
        kept = aiohttp.TCPConnector(ssl=context, limit=0, keepalive_timeout=None)
        async with (
            aiohttp.ClientSession(connector=sockets) as gw,
            aiohttp.ClientSession(base_url=f"{base}/", connector=kept) as rest,
        ):
            body = {"username": SEED_USERS[0], "password": SEED_PASSWORD}
            async with rest.post("api/v1/auth/login", json=body) as answer:
                token = "Bearer " + (await answer.json())["data"]["token"]
            rest.headers["Authorization"] = token
            async with rest.get("api/v1/users/@me/spaces") as answer:
                space = (await answer.json())["data"][0]["id"]
            async with rest.get(f"api/v1/spaces/{space}/channels") as answer:
                channel = (await answer.json())["data"][0]["id"]
            refetch = [f"api/v1/spaces/{space}/{what}" for what in ("channels", "members", "roles")]
            refetch.append(f"api/v1/channels/{channel}/messages?limit=100&after=1")

            async def until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, object]:
                while True:
                    frame = await ws.receive()
                    if not isinstance(frame.data, str):
                        raise ConnectionError(f"gateway closed ({ws.close_code}) before {kind}")
                    data = json.loads(frame.data)
                    if data.get("op") == 0 and data.get("type") == kind:
                        return dict(data)

            async def first() -> tuple[aiohttp.ClientWebSocketResponse, str, int]:
                async with limit:
                    ws = await gw.ws_connect(gateway, heartbeat=None, autoping=False)
                    await ws.receive()  # HELLO
                    await ws.send_str(identify(token))
                    ready = await until(ws, "ready")
                    return ws, str(ready["data"]["session_id"]), int(ready.get("seq") or 1)  # type: ignore[index, call-overload]

            async def back(session_id: str, seq: int) -> None:
                async with limit:
                    ws = await gw.ws_connect(gateway, heartbeat=None, autoping=False)
                    await ws.receive()
                    await ws.send_str(resume(token, session_id, seq))
                    await until(ws, "resumed")
                    for path in refetch:
                        async with rest.get(path) as answer:
                            await answer.read()
                    await ws.close()

            sessions = await asyncio.gather(*(first() for _ in range(count)))
            held.set()
            await asyncio.gather(*(ws.receive() for ws, _, _ in sessions))  # the cut
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            start = time.monotonic()
            ends = await asyncio.gather(
                *(back(sid, seq) for _, sid, seq in sessions), return_exceptions=True
            )
            failed = sum(isinstance(e, BaseException) for e in ends)
            out.put((count - failed, time.monotonic() - start))

    asyncio.run(main())


def _bare_storm(network: NetworkChaos, proxies: ServerProxies, ca: str, clients: int,
                processes: int) -> float:  # fmt: skip
    queue: Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    go = multiprocessing.Event()
    held = [multiprocessing.Event() for _ in range(processes)]
    share = max(1, clients // processes)
    workers = [
        multiprocessing.Process(
            target=_bare_storm_worker,
            args=(proxies.gateway_url, proxies.base_url, ca, share, held[i], go, queue),
        )
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    try:
        for event in held:
            if not event.wait(600):
                raise RuntimeError("bare storm: the sessions were not all up within 600 s")

        async def cut() -> None:
            await network.down(proxies.gateway.name)
            await asyncio.sleep(0.1)
            await network.up(proxies.gateway.name)

        asyncio.run(cut())
        go.set()
        results = [queue.get(timeout=600) for _ in workers]
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
    return float(sum(r[0] for r in results) / max(r[1] for r in results))


def raw_rates(processes: int, work: Path, clients: int) -> tuple[float, float]:
    """Through a Toxiproxy proxy, no client logic: TLS WebSocket connects per second
    (to HELLO), and the bare storm's clients per second (`clients` of them)."""
    toxiproxy = ToxiproxyServer.from_env_or_start()
    server = FakeServerProcess(
        work / "raw.db", log_path=work / "raw.log",
        extra_args=["--rate-limit", "off", "--history", "light"],
    )  # fmt: skip
    info = server.start()
    try:

        async def proxy() -> tuple[NetworkChaos, ServerProxies]:
            network = NetworkChaos(toxiproxy.api(), run_id="rawbench")
            return network, await network.add_server("raw", info.port)

        network, proxies = asyncio.run(proxy())
        queue: Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        share = RAW_CONNECTS // processes
        workers = [
            multiprocessing.Process(
                target=_raw_worker, args=(proxies.gateway_url, info.ca, share, queue)
            )
            for _ in range(processes)
        ]
        start = time.monotonic()
        for w in workers:
            w.start()
        results = [queue.get(timeout=300) for _ in workers]
        wall = time.monotonic() - start
        for w in workers:
            w.join(10)
        done = sum(r[0] for r in results)
        raw = float(done / max(wall, max(r[1] for r in results)))
        bare = _bare_storm(network, proxies, info.ca, clients, processes)
        asyncio.run(network.close())
        return raw, bare
    finally:
        server.stop()
        if toxiproxy.owned:
            toxiproxy.stop()


def row(
    clients: int,
    figures: Figures,
    run_rss: int,
    raw: float,
    bare: float,
    elapsed: float,
    sampler: CpuSampler,
    fault_wall: float | None,
) -> dict[str, object]:
    storm = figures.storms[0] if figures.storms else None
    to = storm.to_recovered if storm else {}
    full = to.get(100)
    rate = (storm.recovered / full) if storm and full else None
    return {
        "clients": clients,
        "connected": figures.connected_first,
        "losses": storm.losses if storm else 0,
        "recovered": storm.recovered if storm else 0,
        "t50": to.get(50), "t95": to.get(95), "t99": to.get(99), "t100": full,
        "attempts_mean": round(figures.attempts_mean, 2),
        "attempts_max": figures.attempts_max,
        "attempt_failures": figures.attempt_failures,
        "resume_share": round(figures.resume_share, 3),
        "mem_per_client_kb": round(run_rss / clients / 1024) if run_rss else None,
        "lost": figures.lost, "duplicated": figures.duplicated,
        "recovery_rate": round(rate, 1) if rate else None,
        "raw_rate": round(raw, 1),
        "ratio": round(rate / raw, 2) if rate else None,
        "bare_storm_rate": round(bare, 1),
        "ceiling": round(bare / raw, 2),  # the ratio a client with no logic reaches
        "herd": round(storm.herd, 2) if storm and storm.herd else None,
        "elapsed_s": round(elapsed),
        "storm_cores": sampler.cores(fault_wall, fault_wall + (full or 60.0)) if fault_wall else {},
    }  # fmt: skip


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--workers", type=int, default=2, help="Locust worker processes")
    parser.add_argument("--driver", choices=("asyncio", "gevent"), default="asyncio")
    parser.add_argument("--bridge", choices=("notify", "poll"), default="notify")
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument(
        "--tail", type=float, default=TAIL, help="seconds of run after the spawn (storm, recovery)"
    )
    parser.add_argument("--out", help="keep the runs here")
    args = parser.parse_args()
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="accord-storm-"))
    rows = []
    for clients in args.clients:
        work = base / f"storm-{clients}"
        started = time.monotonic()
        with CpuSampler() as sampler:
            run = asyncio.run(
                play_load(
                    storm_file(clients, args.spawn_rate, args.tail),
                    LoadOptions(
                        work_dir=work, workers=args.workers, driver=args.driver, bridge=args.bridge,
                        op_timeout=120.0,
                        on_progress=lambda line: print("  ", line, flush=True),
                    ),
                )
            )  # fmt: skip
        figures = compute(run)
        raw, bare = raw_rates(max(1, args.workers), work, clients)
        fault_wall = run.fired[0].wall if run.fired else None
        result = row(
            clients, figures, run.crowd_rss_at_storm, raw, bare, time.monotonic() - started,
            sampler, fault_wall,
        )  # fmt: skip
        result["error"] = run.error or "; ".join(run.problems)[:300]
        rows.append(result)
        (work / "bench.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result), flush=True)
    columns = ["clients", "connected", "recovered", "t50", "t95", "t99", "t100", "attempts_mean",
               "resume_share", "mem_per_client_kb", "lost", "duplicated", "recovery_rate",
               "raw_rate", "ratio", "bare_storm_rate", "ceiling", "herd"]  # fmt: skip
    print(
        f"driver {args.driver}, bridge {args.bridge}, {args.workers} worker process(es), "
        f"spawn {args.spawn_rate:g}/s"
    )
    print(" | ".join(columns))
    for r in rows:
        print(" | ".join(_fmt(r[c]) for c in columns))
        print("   cores during the recovery:", r["storm_cores"])
        if r["error"]:
            print("   problem:", r["error"])


if __name__ == "__main__":
    main()
