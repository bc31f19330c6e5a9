"""The benchmark scenarios (see docs/performance.md). Each returns rows: our figure, the
reference measured in the same run, and the target where the issue sets one."""

from __future__ import annotations

import asyncio
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, METRICS_HEADERS, ChatServer
from tests.services import PostgresServer, RedisServer, free_port

from . import clients, reference
from .procs import SERVER_CPUS, Generators, ServerProcess, Usage, pin, wait_for_port


@dataclass
class Plan:
    runs: int = 3
    idle_sizes: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    latency_rates: list[int] = field(default_factory=lambda: [100, 500])
    latency_seconds: float = 8.0
    latency_visitors: int = 100  # per generator process
    databases: list[str] = field(default_factory=lambda: ["sqlite", "postgres"])
    fanout_operators: int = 10
    fanout_visitors: int = 20  # per generator process
    fanout_window: int = 4
    fanout_seconds: float = 6.0
    scaleout_rate: int = 100
    scaleout_seconds: float = 8.0
    storm_clients: int = 5000
    # 6. the trigger engine (bench/triggers.py)
    trigger_contacts: int = 100_000
    trigger_count: int = 200
    trigger_segments: int = 20  # and scoring rules: the behaviour scenario's mixes, in both databases
    trigger_rules: int = 10
    trigger_active: int = 5_000  # the contacts the backend's events are about
    trigger_events: int = 20_000  # a run's events (sent again from the start if the run outlasts them)
    trigger_seconds: float = 8.0
    trigger_batch: int = 100  # events per /track request (a fifth of it below saturation)
    trigger_senders: int = 2  # generator processes posting events
    trigger_in_flight: int = 4  # requests outstanding per sender
    trigger_widgets: int = 50  # new widgets each run, each sending probe events
    trigger_probes_each: int = 2  # the site's default cap is 3 automatic messages a day
    trigger_latency_share: float = 0.5  # the latency run's rate: this share of the rate reached


SMOKE = Plan(runs=1, idle_sizes=[20], latency_rates=[20], latency_seconds=1.0, latency_visitors=3,
             databases=["sqlite"], fanout_operators=2, fanout_visitors=2, fanout_window=2, fanout_seconds=1.0,
             scaleout_rate=20, scaleout_seconds=2.0, storm_clients=20,
             trigger_contacts=300, trigger_count=20, trigger_segments=4, trigger_rules=2, trigger_active=50,
             trigger_events=400, trigger_seconds=1.0, trigger_batch=20, trigger_senders=1, trigger_in_flight=4, trigger_widgets=3,
             trigger_probes_each=2)


@dataclass
class Env:
    """Throwaway services for one benchmark session."""

    tmp: Path
    profile_dir: Path | None = None  # py-spy profiles of our server, one per server started
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    _n: int = 0

    def database(self, kind: str) -> str:
        self._n += 1
        if kind == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / f'bench-{self._n}.db'}"
        if self.postgres is None:
            self.postgres = PostgresServer(self.tmp / "pg")
            self.postgres.start()
        return self.postgres.create_database(f"bench_{self._n}")

    def redis_server(self) -> RedisServer:
        if self.redis is None:
            self.redis = RedisServer(self.tmp / "redis")
            self.redis.start()
        return self.redis

    def close(self) -> None:
        for service in (self.redis, self.postgres):
            if service is not None:
                service.close()


@contextmanager
def chat_server(env: Env, db: str = "sqlite", redis_url: str = "", database_url: str | None = None) -> Iterator[ChatServer]:
    server = ChatServer(env.tmp / f"srv-{free_port()}", database_url or env.database(db), redis_url,
                        CHAT_LOG_LEVEL="ERROR", CHAT_SEND_QUEUE_FRAMES="100000")
    server.tmp.mkdir(parents=True, exist_ok=True)
    server.start(timeout=60)
    assert server.proc is not None
    pin(server.proc.pid, SERVER_CPUS)
    profiler = _profile(env, server.proc.pid)
    try:
        yield server
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on interrupt
            profiler.wait(30)
        server.stop()


def _profile(env: Env, pid: int) -> subprocess.Popen[bytes] | None:
    if env.profile_dir is None:
        return None
    env.profile_dir.mkdir(parents=True, exist_ok=True)
    out = env.profile_dir / f"server-{pid}.txt"
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(py_spy), "record", "-p", str(pid), "-f", "raw", "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def bare_relay() -> Iterator[tuple[str, int]]:
    port = free_port()
    with ServerProcess(reference.bare_relay_main, port) as proc:
        wait_for_port(port)
        yield f"ws://127.0.0.1:{port}", proc.pid


def split(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def repeat(plan: Plan, once: Callable[..., dict[str, float]], *args: Any, **kwargs: Any) -> dict[str, float]:
    return median_of([once(*args, **kwargs) for _ in range(plan.runs)])


# --- 1. idle widget connections --------------------------------------------------------------


def _hold(ws_base: str, pid: int, n: int) -> dict[str, float]:
    asyncio.run(_one_visitor(ws_base))  # warm: first-use imports and pools are not per-connection cost
    time.sleep(0.5)
    before = Usage(pid).read()
    a, b = split(n)
    with Generators([(clients.hold, (ws_base, a)), (clients.hold, (ws_base, b))]) as gens:
        results = gens.results()
        time.sleep(1.0)
        after = Usage(pid).read()
        gens.sync()
    seconds = max(r["seconds"] for r in results)
    return {"rss_per_conn_kib": (after.rss - before.rss) / n / 1024, "connects_per_s": n / seconds,
            "connected": sum(r["connected"] for r in results)}


async def _one_visitor(ws_base: str) -> None:
    ws, _ = await clients.open_visitor(ws_base)
    await ws.close()


def _hold_ours(env: Env, n: int) -> dict[str, float]:
    with chat_server(env) as server:
        assert server.proc is not None
        return _hold(server.ws, server.proc.pid, n)


def _hold_reference(n: int) -> dict[str, float]:
    with bare_relay() as (url, pid):
        return _hold(url, pid, n)


def idle_connections(env: Env, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for n in plan.idle_sizes:
        mine, theirs = repeat(plan, _hold_ours, env, n), repeat(plan, _hold_reference, n)
        ratio = mine["rss_per_conn_kib"] / theirs["rss_per_conn_kib"]
        rows.append({"connections": n, "ours": mine, "reference": theirs, "memory_ratio": ratio,
                     "target": "RSS per connection at most 2x the reference", "met": ratio <= 2.0})
    return rows


# --- 2. visitor -> operator latency ------------------------------------------------------------


def _latency(pids: list[int], ws_base: str, http_base: str, rate: int, plan: Plan, tag: str,
             operator_ws: str | None = None, during: Callable[[], None] | None = None) -> dict[str, float]:
    total = int(rate * plan.latency_seconds)
    a, b = split(total)
    half = rate / 2
    listener = (clients.listen, (operator_ws or ws_base, http_base, ADMIN_EMAIL, ADMIN_PASSWORD, 1,
                                 a + b, plan.latency_seconds))
    senders = [(clients.paced_visitors, (ws_base, plan.latency_visitors, half, a / half, f"{tag}a")),
               (clients.paced_visitors, (ws_base, plan.latency_visitors, half, b / half, f"{tag}b"))]
    ours = bool(http_base) and operator_ws is None  # one server of ours, with its statement counter
    with Generators([listener, *senders]) as gens:
        gens.sync()
        statements_before = _statements(http_base) if ours else 0.0
        before = [Usage(pid).read() for pid in pids]
        if during is not None:
            during()
        results = gens.results()
        after = [Usage(pid).read() for pid in pids]
        statements = _statements(http_base) - statements_before if ours else 0.0
    cpu = sum(b.cpu - a.cpu for a, b in zip(before, after, strict=True))
    got = next(r for r in results if "latencies" in r)
    sent = [r for r in results if "sent" in r]
    ms = [x * 1000 for x in got["latencies"]]
    acked = sum(r["acked"] for r in sent)
    return {"p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "p99_ms": pct(ms, 0.99), "sent": sum(r["sent"] for r in sent),
            "acked": acked, "received": len(ms), "lost": acked - len(ms), "cpu_us_per_message": cpu * 1e6 / max(len(ms), 1),
            "generator_max_behind_ms": max(r["max_behind_s"] for r in sent) * 1000,
            # Every statement the server sent while the messages went through, over the messages:
            # what the regression guard pins (tests/test_bench_smoke.py). Counts, not timings.
            **({"db_statements_per_message": statements / max(len(ms), 1)} if ours else {})}


def latency(env: Env, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for db in plan.databases:
        with chat_server(env, db) as server:
            assert server.proc is not None
            for rate in plan.latency_rates:
                mine = repeat(plan, _latency, [server.proc.pid], server.ws, server.http, rate, plan, f"l{db}{rate}")
                with bare_relay() as (url, pid):
                    theirs = repeat(plan, _latency, [pid], url, "", rate, plan, "ref")
                rows.append({"database": db, "rate": rate, "ours": mine, "reference": theirs,
                             "target": "p99 <= 25 ms at 500 msg/s" if rate == 500 else "",
                             "met": mine["p99_ms"] <= 25.0 if rate == 500 else None})
    return rows


# --- 3. fan-out throughput ---------------------------------------------------------------------


def _fanout(plan: Plan, pids: list[int], visitor_role: Callable[..., Any], visitor_args: tuple[Any, ...],
            operator_role: Callable[..., Any], operator_args: tuple[Any, ...]) -> dict[str, float]:
    roles = [(operator_role, operator_args), (visitor_role, visitor_args), (visitor_role, visitor_args)]
    with Generators(roles) as gens:
        gens.sync()
        before = [Usage(pid).read() for pid in pids]
        time.sleep(plan.fanout_seconds)
        after = [Usage(pid).read() for pid in pids]
        results = gens.results()
    cpu = sum(b.cpu - a.cpu for a, b in zip(before, after, strict=True))
    deliveries = sum(r["frames"] for r in results)
    return {"deliveries_per_s": deliveries / plan.fanout_seconds, "cpu_us_per_delivery": cpu * 1e6 / max(deliveries, 1),
            "deliveries_per_cpu_s": deliveries / max(cpu, 1e-9), "messages_per_s": sum(r.get("acked", 0) for r in results)
            / plan.fanout_seconds}


def fanout(env: Env, plan: Plan) -> list[dict[str, Any]]:
    n, w, s, ops = plan.fanout_visitors, plan.fanout_window, plan.fanout_seconds, plan.fanout_operators

    def ours() -> dict[str, float]:
        with chat_server(env) as server:
            assert server.proc is not None
            return _fanout(plan, [server.proc.pid], clients.saturate, (server.ws, n, w, s, f"f{time.time()}"),
                           clients.count_frames, (server.ws, server.http, ADMIN_EMAIL, ADMIN_PASSWORD, ops, s))

    def bare() -> dict[str, float]:
        with bare_relay() as (url, pid):
            return _fanout(plan, [pid], clients.saturate, (url, n, w, s, "ref"),
                           clients.count_frames, (url, "", "", "", ops, s))

    def socketio() -> dict[str, float]:
        redis = env.redis_server()
        port = free_port()
        with ServerProcess(reference.socketio_main, port, redis.url) as proc:
            wait_for_port(port)
            url = f"http://127.0.0.1:{port}"
            assert redis._proc is not None
            return _fanout(plan, [proc.pid, redis._proc.pid], reference.sio_saturate, (url, n, w, s),
                           reference.sio_count, (url, ops, s))

    mine, theirs, peer = repeat(plan, ours), repeat(plan, bare), repeat(plan, socketio)
    share = mine["deliveries_per_cpu_s"] / theirs["deliveries_per_cpu_s"]
    return [{"operators": ops, "visitors": 2 * n, "window": w, "ours": mine, "reference": theirs,
             "socketio_redis": peer, "efficiency_vs_reference": share,
             "target": "at least 50% of the reference's deliveries per CPU-second", "met": share >= 0.5}]


# --- 4. across processes -------------------------------------------------------------------------


def across_processes(env: Env, plan: Plan) -> list[dict[str, Any]]:
    redis = env.redis_server()
    url = env.database("postgres")
    lat_plan = Plan(**{**plan.__dict__, "latency_seconds": plan.scaleout_seconds})
    with chat_server(env, database_url=url) as alone:  # the same without Redis: what the hop adds
        assert alone.proc is not None
        one = repeat(plan, _latency, [alone.proc.pid], alone.ws, alone.http, plan.scaleout_rate, lat_plan, "x1")
    with chat_server(env, redis_url=redis.url, database_url=url) as a, \
         chat_server(env, redis_url=redis.url, database_url=url) as b:
        assert a.proc is not None and b.proc is not None
        pids = [a.proc.pid, b.proc.pid]
        two = repeat(plan, _latency, pids, a.ws, a.http, plan.scaleout_rate, lat_plan, "x2", operator_ws=b.ws)

        def restart_redis() -> None:
            time.sleep(plan.scaleout_seconds / 2)
            redis.restart()

        restart = _latency(pids, a.ws, a.http, plan.scaleout_rate, lat_plan, "xr", operator_ws=b.ws, during=restart_redis)
    return [{"rate": plan.scaleout_rate, "same_process": one, "across_processes": two,
             "redis_hop_p99_ms": two["p99_ms"] - one["p99_ms"], "redis_restart": restart,
             "target": "no loss when Redis restarts mid-run", "met": restart["lost"] == 0}]


# --- 5. reconnect storm ----------------------------------------------------------------------------


def _statements(http_base: str) -> float:
    text = httpx.get(http_base + "/metrics", headers=METRICS_HEADERS, timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("chat_db_statements_total"))


def reconnect_storm(env: Env, plan: Plan) -> list[dict[str, Any]]:
    def once() -> dict[str, float]:
        with chat_server(env) as server:
            a, b = split(plan.storm_clients)
            with Generators([(clients.storm, (server.ws, a, f"s{time.time()}")),
                             (clients.storm, (server.ws, b, f"t{time.time()}"))]) as gens:
                gens.sync()  # everyone has a conversation; now they all drop
                time.sleep(2.0)
                before = _statements(server.http)
                gens.sync()  # and all come back at once
                results = gens.results()
                time.sleep(0.5)
                after = _statements(server.http)
        return {"seconds_until_all_resynced": max(r["seconds"] for r in results),
                "reconnected": sum(r["reconnected"] for r in results),
                "retries": sum(r["retries"] for r in results),
                "db_statements_per_reconnect": (after - before) / plan.storm_clients}

    return [{"clients": plan.storm_clients, "ours": repeat(plan, once)}]


# --- 6. trigger engine ----------------------------------------------------------------------------


def trigger_engine(env: Env, plan: Plan) -> list[dict[str, Any]]:
    from .triggers import scenario  # it builds on this module's helpers

    return scenario(env, plan)


SCENARIOS: dict[str, Callable[[Env, Plan], list[dict[str, Any]]]] = {
    "idle_connections": idle_connections,
    "latency": latency,
    "fanout": fanout,
    "across_processes": across_processes,
    "reconnect_storm": reconnect_storm,
    "triggers": trigger_engine,
}
