"""How fast the simulator runs outages, and how many generated schedules explore checks.

1. Outages: one connected client core and one server core on the simulated
   network; each outage is one fault (a dropped socket, a server close 4000, the
   gateway proxy down for 5 s, a kill and restart, a reset_peer toxic healed after
   3 s, INVALID_SESSION resumable) followed by virtual time until the client is
   connected and synced again. No timeline is kept (`sim.world.BareCore`).
   Prints simulated outages per CPU second (one core).
2. Scenarios: the whole catalogue in simulation (timeline, verdict and all).
3. Explore: `--schedules` Hypothesis-generated schedules with no bug switch on,
   each played and checked as `accord-rig explore` does; schedules per CPU second.

    .venv/bin/python bench/bench_sim.py [--outages 3000] [--schedules 200]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from client.core.client import ClientCore
from client.core.timings import Timings
from scenarios.loader import discover, load_all
from sim.cli import run_catalogue
from sim.explore import explore
from sim.world import BareCore, SimWorld, fewer_full_collections, one_server

PROXY_PORT_HOST = "127.0.0.1"


def connected_world(seed: int) -> tuple[SimWorld, ClientCore]:
    world = SimWorld(seed)
    connect = one_server(world)
    core = ClientCore(timings=Timings(), seed=seed, bugs=frozenset(), trace=False)
    world.attach(BareCore(core))
    for action in connect:
        world.client_input(action)
    assert world.run_until(60.0, lambda: synced(core)), "the client never connected"
    return world, core


def synced(core: ClientCore) -> bool:
    return core.status("alpha") == "connected" and not core.syncing("alpha")


def faults(world: SimWorld) -> list[Callable[[], None]]:
    server = world.servers["alpha"]

    def apply(spec: dict[str, object]) -> None:
        assert server.core is not None
        server.core.apply(world.clock.now, spec)
        server.perform(server.core.take_outputs())

    def proxy_down() -> None:
        world.net.set_enabled("alpha.gateway", False)
        world.clock.call_later(5.0, lambda: world.net.set_enabled("alpha.gateway", True))

    def reset_peer() -> None:
        body = {"name": "r", "type": "reset_peer", "stream": "downstream", "attributes": {}}
        world.net.add_toxic("alpha.gateway", body)
        world.clock.call_later(3.0, lambda: world.net.remove_toxic("alpha.gateway", "r"))

    def kill_restart() -> None:
        server.kill()
        world.clock.call_later(2.0, server.start)

    return [
        lambda: apply({"kind": "drop"}),
        lambda: apply({"kind": "close", "code": 4000, "reason": "bench"}),
        proxy_down,
        kill_restart,
        reset_peer,
        lambda: apply({"kind": "invalid_session", "resumable": True}),
    ]


def bench_outages(n: int) -> dict[str, float]:
    world, core = connected_world(1)
    kinds = faults(world)
    started_cpu = time.process_time()
    started_virtual = world.clock.now
    with fewer_full_collections():
        for i in range(n):
            kinds[i % len(kinds)]()
            world.run_until(world.clock.now + 0.01)  # let the fault land
            ok = world.run_until(world.clock.now + 600.0, lambda: synced(core))
            assert ok, f"outage {i} ({i % len(kinds)}): not recovered, {core.status('alpha')}"
    cpu = time.process_time() - started_cpu
    return {
        "outages": n,
        "cpu_s": round(cpu, 3),
        "outages_per_cpu_s": round(n / cpu, 1),
        "virtual_s": round(world.clock.now - started_virtual, 1),
    }


def bench_catalogue() -> dict[str, float]:
    loaded, problems = load_all(discover(["scenarios"]))
    assert not problems
    started = time.process_time()
    verdicts = run_catalogue(loaded)
    cpu = time.process_time() - started
    return {
        "scenarios": len(verdicts),
        "passed": sum(v.passed for v in verdicts),
        "cpu_s": round(cpu, 2),
    }


def bench_explore(n: int, seed: int) -> dict[str, float]:
    started = time.process_time()
    report = explore(n, seed)
    cpu = time.process_time() - started
    return {
        "schedules": report.examples,
        "found": 0 if report.found is None else 1,
        "cpu_s": round(cpu, 2),
        "schedules_per_cpu_s": round(report.examples / cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outages", type=int, default=3000)
    parser.add_argument("--schedules", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="explore's Hypothesis seed")
    args = parser.parse_args()
    print(json.dumps({"outages": bench_outages(args.outages)}))
    print(json.dumps({"catalogue": bench_catalogue()}))
    if args.schedules:
        print(json.dumps({"explore": bench_explore(args.schedules, args.seed)}))


if __name__ == "__main__":
    main()
