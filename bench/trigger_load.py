"""Load generator roles of the trigger scenario (bench/triggers.py): the site's backend sending
event batches over REST, and widgets whose events fire undelayed triggers.

Each probe event carries its send time (CLOCK_MONOTONIC, shared by the processes) in a
property; the probe triggers' template puts it in the message text, so the widget that
receives the message knows how long the event took to become a message on its socket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from .clients import MARK, abort_all, connect_many
from .procs import Control

PROBE_EVENT = "bench_probe"
IS_AUTOMATIC = '"kind":"automatic"'


def _bodies(events: list[tuple[int, str, dict[str, Any]]], batch: int) -> list[bytes]:
    """Request bodies encoded before the clock starts: the generator must not be the limit."""
    out = []
    for start in range(0, len(events), batch):
        out.append(json.dumps({"events": [
            {"contact_id": cid, "name": name, "properties": {k: v for k, v in props.items() if k != "url"},
             "url": "https://shop.example" + props.get("url", "/p")}
            for cid, name, props in events[start:start + batch]]}).encode())
    return out


async def track_batches(ctl: Control, http_base: str, key: str, events: list[tuple[int, str, dict[str, Any]]],
                        batch: int, in_flight: int, seconds: float, rate: float | None = None) -> None:
    """POST /api/v1/track with `batch` events a request for `seconds`: as fast as the server
    answers with `in_flight` requests outstanding, or (`rate`) that many events a second."""
    bodies = _bodies(events, batch)
    sizes = [len(events[i:i + batch]) for i in range(0, len(events), batch)]
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    stored = requests = 0
    behind = 0.0
    async with httpx.AsyncClient(base_url=http_base, headers=headers, timeout=300,
                                 limits=httpx.Limits(max_connections=max(in_flight, 64))) as http:
        async def post(n: int) -> None:
            nonlocal stored, requests
            r = await http.post("/api/v1/track", content=bodies[n % len(bodies)])
            if r.status_code != 200:
                raise RuntimeError(f"/track answered {r.status_code}: {r.text[:300]}")
            stored += sizes[n % len(bodies)]
            requests += 1

        await http.get("/readyz")  # the connection pool is open before the clock starts
        await ctl.sync()
        start = time.monotonic()
        if rate is None:
            async def closed_loop(k: int) -> None:
                n = k
                while time.monotonic() - start < seconds:
                    await post(n)
                    n += in_flight

            await asyncio.gather(*(closed_loop(k) for k in range(in_flight)))
        else:
            pending: set[asyncio.Task[None]] = set()
            interval = batch / rate
            for n in range(max(1, int(seconds / interval))):
                due = start + n * interval
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    behind = max(behind, now - due)
                task = asyncio.create_task(post(n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
        elapsed = time.monotonic() - start
        await ctl.sync()  # the conductor reads the server's CPU time at the end of the sending
    ctl.report({"events": stored, "requests": requests, "seconds": elapsed, "max_behind_s": behind})


async def probe_widgets(ctl: Control, ws_base: str, n: int, probes_each: int, kinds: int, seconds: float,
                        expect: bool) -> None:
    """n new widgets; over `seconds`, each sends `probes_each` probe events (round-robin, at a
    steady pace) and records when the trigger's message for each arrives on its socket."""
    socks = [ws for ws, _ in await connect_many(ws_base, n)]
    latencies: list[float] = []
    total = n * probes_each
    done = asyncio.Event()

    async def read(ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.monotonic()
            text = str(raw)
            if IS_AUTOMATIC in text:
                body = json.loads(text)["message"]["text"]
                if body.startswith(MARK):
                    latencies.append(now - float(body[len(MARK):]))
                    if len(latencies) >= total:
                        done.set()

    readers = [asyncio.create_task(read(ws)) for ws in socks]
    await ctl.sync()
    start = time.monotonic()
    behind = 0.0
    for i in range(total):
        due = start + i * seconds / total
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            behind = max(behind, now - due)
        await socks[i % n].send(json.dumps({
            "type": "track", "name": PROBE_EVENT, "url": "https://shop.example/pricing",
            "properties": {"k": f"p{i % kinds}", "t": f"{time.monotonic():.6f}"}}))
    await ctl.sync()
    if expect:
        try:
            await asyncio.wait_for(done.wait(), seconds + 30)
        except TimeoutError:
            pass
    ctl.report({"probes": total, "received": len(latencies), "latencies": latencies, "max_behind_s": behind})
    for task in readers:
        task.cancel()
    abort_all(socks)
