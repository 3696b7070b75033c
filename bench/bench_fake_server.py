"""Load the fake server: up to 10,000 idle gateway sessions, heartbeat-ACK latency, fan-out.

    .venv/bin/python bench/bench_fake_server.py [--sessions 10000] [--timescale 0.2]

The server runs in one subprocess (`python -m fake_server`), the load generator in
another (this script with `--role load`); both on 127.0.0.1, bounded in count and time.
Every session heartbeats at the HELLO interval like a real client (so the silence drop
never fires); latency is measured over whole heartbeat rounds once all sessions are open.
Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from fake_server.intents import ALL_INTENTS

ROOT = Path(__file__).resolve().parents[1]


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ---------------------------------------------------------------------- load generator


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ssl = ssl.create_default_context(cafile=args.ca)
        self.held = 0
        self.failed: dict[str, int] = {}
        self.measuring = False
        self.latencies: list[float] = []
        self.delivered: dict[str, int] = {}  # message id -> sessions that got it
        self.last_delivery = 0.0
        self.stop = asyncio.Event()

    async def session(
        self,
        http: aiohttp.ClientSession,
        token: str,
        gate: asyncio.Semaphore,
        opened: asyncio.Event,
    ) -> None:
        try:
            async with gate:
                ws = await http.ws_connect(
                    self.args.gateway,
                    ssl=self.ssl,
                    heartbeat=None,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                )
                hello = json.loads((await ws.receive(timeout=30)).data)
                await ws.send_str(json.dumps({"op": 2, "data": {"token": f"Bearer {token}",
                                                               "intents": list(ALL_INTENTS)}}))
                ready = json.loads((await ws.receive(timeout=30)).data)
                if ready.get("type") != "ready":
                    raise RuntimeError(f"no READY: {ready}")
        except Exception as exc:  # counted, not fatal: the bench reports what it held
            key = type(exc).__name__
            self.failed[key] = self.failed.get(key, 0) + 1
            opened.set()
            return
        self.held += 1
        opened.set()
        interval = hello["data"]["heartbeat_interval"] / 1000
        sent = [0.0]  # when the last beat went out
        beat = asyncio.create_task(self.heartbeat(ws, interval, sent))
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                if msg.data == '{"op":4}':
                    if sent[0] and self.measuring:
                        self.latencies.append(time.perf_counter() - sent[0])
                    continue
                frame = json.loads(msg.data)
                if frame.get("type") == "message.create":
                    mid = frame["data"]["id"]
                    self.delivered[mid] = self.delivered.get(mid, 0) + 1
                    self.last_delivery = time.perf_counter()
        finally:
            beat.cancel()
            self.held -= 1
            await ws.close()

    async def heartbeat(
        self, ws: aiohttp.ClientWebSocketResponse, interval: float, sent: list[float]
    ) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # spread the beats over the interval
        while not ws.closed:
            sent[0] = time.perf_counter()
            await ws.send_str('{"op":1,"data":1}')
            await asyncio.sleep(interval)

    async def run(self) -> dict[str, Any]:
        a = self.args
        connector = aiohttp.TCPConnector(limit=0, ssl=self.ssl)
        async with aiohttp.ClientSession(connector=connector) as http:
            token, channel = await self.login(http)
            gate = asyncio.Semaphore(a.concurrency)
            start = time.perf_counter()
            tasks = []
            opened_events = []
            for _ in range(a.sessions):
                ev = asyncio.Event()
                opened_events.append(ev)
                tasks.append(asyncio.create_task(self.session(http, token, gate, ev)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(e.wait() for e in opened_events)), a.open_deadline
                )
            open_seconds = time.perf_counter() - start
            held_after_open = self.held

            # Heartbeat latency over whole rounds at full load.
            self.measuring = True
            await asyncio.sleep(a.measure_seconds)
            self.measuring = False
            latencies = list(self.latencies)

            # Fan-out: each message goes to every held session.
            held_for_fanout = self.held
            sent_ids = []
            t0 = time.perf_counter()
            for i in range(a.messages):
                async with http.post(
                    f"{a.rest}/channels/{channel}/messages",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"content": f"fan-out {i}", "nonce": f"b{i}"},
                ) as r:
                    sent_ids.append((await r.json())["data"]["id"])
            expected = held_for_fanout * len(sent_ids)
            deadline = time.perf_counter() + a.fanout_deadline
            while time.perf_counter() < deadline:
                if sum(self.delivered.get(m, 0) for m in sent_ids) >= expected:
                    break
                await asyncio.sleep(0.05)
            delivered = sum(self.delivered.get(m, 0) for m in sent_ids)
            fanout_seconds = max(1e-9, self.last_delivery - t0)
            held_end = self.held
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "requested": a.sessions,
            "held_after_open": held_after_open,
            "held_at_end": held_end,
            "open_seconds": round(open_seconds, 2),
            "open_failures": self.failed,
            "heartbeat_acks_measured": len(latencies),
            "heartbeat_ack_p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "heartbeat_ack_p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "heartbeat_ack_mean_ms": round(statistics.fmean(latencies) * 1000, 2)
            if latencies
            else None,
            "fanout_messages": len(sent_ids),
            "fanout_sessions": held_for_fanout,
            "fanout_delivered": delivered,
            "fanout_seconds": round(fanout_seconds, 2),
            "fanout_frames_per_second": round(delivered / fanout_seconds),
        }

    async def login(self, http: aiohttp.ClientSession) -> tuple[str, str]:
        a = self.args
        async with http.post(
            f"{a.rest}/auth/login", json={"username": "alice", "password": "password"}
        ) as r:
            token = (await r.json())["data"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{a.rest}/users/@me/spaces", headers=auth) as r:
            space = (await r.json())["data"][0]["id"]
        async with http.get(f"{a.rest}/spaces/{space}/channels", headers=auth) as r:
            channel = (await r.json())["data"][0]["id"]
        return token, channel


def run_load(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    result = asyncio.run(Load(args).run())
    print(json.dumps(result))


# ---------------------------------------------------------------------- orchestration


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bench(args: argparse.Namespace) -> None:
    nofile = raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="bench-fake-server-") as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "fake_server", "--db", str(Path(tmp) / "bench.db"),
             "--timescale", str(args.timescale), "--rate-limit", "off"],  # 10,000 logins
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            load_cmd = [
                sys.executable,
                __file__,
                "--role",
                "load",
                "--rest",
                info["rest"],
                "--gateway",
                info["gateway"],
                "--ca",
                info["ca"],
                "--sessions",
                str(args.sessions),
                "--concurrency",
                str(args.concurrency),
                "--messages",
                str(args.messages),
                "--measure-seconds",
                str(args.measure_seconds),
                "--open-deadline",
                str(args.open_deadline),
                "--fanout-deadline",
                str(args.fanout_deadline),
            ]
            started = time.perf_counter()
            limit = args.open_deadline + args.measure_seconds + args.fanout_deadline + 120
            with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
                load = subprocess.Popen(load_cmd, cwd=ROOT, stdout=out, stderr=err, text=True)
                peak_rss_kib = 0
                while load.poll() is None:  # sample the server's memory while loaded
                    peak_rss_kib = max(peak_rss_kib, rss_kib(server.pid))
                    if time.perf_counter() - started > limit:
                        load.kill()
                    time.sleep(1.0)
                out.seek(0)
                err.seek(0)
                if load.returncode != 0:
                    print(err.read()[-3000:], file=sys.stderr)
                    raise SystemExit(f"load generator failed ({load.returncode})")
                result = json.loads(out.read().strip().splitlines()[-1])
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    interval_ms = round(45000 * args.timescale)
    print(
        f"fake server bench (2 processes on 127.0.0.1, open-files limit {nofile}, "
        f"timescale {args.timescale}: HELLO {interval_ms} ms)"
    )
    print(
        f"  sessions held:   {result['held_after_open']} of {result['requested']} opened in "
        f"{result['open_seconds']} s (failures: {result['open_failures'] or 'none'}); "
        f"{result['held_at_end']} still held at the end"
    )
    print(
        f"  heartbeat ACK:   p50 {result['heartbeat_ack_p50_ms']} ms, "
        f"p99 {result['heartbeat_ack_p99_ms']} ms over {result['heartbeat_acks_measured']} "
        f"beats in {args.measure_seconds} s at full load"
    )
    print(
        f"  fan-out:         {result['fanout_frames_per_second']} message.create frames/s "
        f"({result['fanout_delivered']} of "
        f"{result['fanout_messages'] * result['fanout_sessions']} delivered: "
        f"{result['fanout_messages']} messages x {result['fanout_sessions']} sessions in "
        f"{result['fanout_seconds']} s)"
    )
    per_session = peak_rss_kib / max(1, result["held_after_open"])
    print(
        f"  server process:  peak RSS {peak_rss_kib / 1024:.0f} MiB "
        f"(~{per_session:.0f} KiB per session), CPU {server_cpu:.1f} s"
    )
    print(f"  wall time:       {wall:.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--role", choices=["bench", "load"], default="bench")
    p.add_argument("--sessions", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=200, help="connects in flight")
    p.add_argument("--timescale", type=float, default=0.2)
    p.add_argument("--messages", type=int, default=10)
    p.add_argument("--measure-seconds", type=float, default=20.0)
    p.add_argument("--open-deadline", type=float, default=120.0)
    p.add_argument("--fanout-deadline", type=float, default=60.0)
    p.add_argument("--rest")
    p.add_argument("--gateway")
    p.add_argument("--ca")
    args = p.parse_args()
    if args.role == "load":
        run_load(args)
    else:
        run_bench(args)


if __name__ == "__main__":
    main()
