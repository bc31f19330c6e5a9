"""6. The trigger engine: active triggers over 100,000 contacts, events ingested through the real
server, and the time from a matching event to the trigger's message on the visitor's socket.

Two copies of one seeded database (the behaviour scenario's contacts, segments and scoring
rules, bench/behaviour.py), each behind its own server: the reference has no triggers, ours
has 200 of a realistic mix (below). The same run sends both the same traffic, interleaved run
by run: the site's backend posting event batches (`POST /api/v1/track`, the behaviour
scenario's event mix about its active contacts) as fast as the server answers, while widgets
send probe events at a steady pace. Then, on ours only, the same at half the rate ours
reached: the latency below saturation, which is what the target is about.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from chat_server.triggers.definition import TriggerBody
from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, ChatServer

from .behaviour import EVENT_NAMES, PAGES, PROPERTIES, Size, seed, workload
from .procs import Generators, Usage
from .scenarios import Env, Plan, _statements, chat_server, median_of, pct
from .trigger_load import PROBE_EVENT, probe_widgets, track_batches

PROBE_TRIGGERS = 5  # undelayed widget chat messages, each for probes of its own kind
TEXTS = ["Hi {{ contact.first_name | default: 'there' }}! Can I help?", "Still deciding? Ask us anything.",
         "{{ contact.name | default: 'Hello' }}, there is a discount for you today."]


def probe_trigger(k: int) -> dict[str, Any]:
    return {"name": f"probe {k}", "enabled": True, "channel": "widget_chat", "sender": {"bot_name": "Bench"},
            "when": {"type": "event", "event": PROBE_EVENT, "where": [{"kind": "property", "key": "k", "op": "eq",
                                                                       "value": f"p{k}"}]},
            "audience": {"online_now": True}, "limits": {"frequency": "every_time"},
            # The event's send time comes back in the text: the widget measures the latency.
            "variants": [{"name": "A", "weight": 100, "text": "b {{ event.properties.t }}"}]}


def trigger_definitions(n: int, segment_ids: list[int], seed_: int = 13) -> list[dict[str, Any]]:
    """`n` triggers: the probes, then a mix where most do not match most events (event counts
    with conditions on the event's properties, page views of a URL, segments entered or left,
    properties changed, time on a page, exit intent, inactivity). They wait minutes or more
    before sending, or ask for something the seeded contacts lack, so what the run measures is
    the evaluation and the scheduling, not a stream of sends."""
    rng = random.Random(seed_)
    out = [probe_trigger(k) for k in range(min(PROBE_TRIGGERS, n))]
    for i in range(n - len(out)):
        roll = rng.random()
        when: dict[str, Any]
        if roll < 0.40:
            when = {"type": "event", "event": rng.choice(EVENT_NAMES), "count": rng.choice([1, 2, 3]),
                    "within_minutes": rng.choice([10, 30, 120]),
                    "where": [{"kind": "property", "key": "amount", "op": "gt", "value": rng.randint(50, 95)}]}
        elif roll < 0.65:
            when = {"type": "event", "event": "page_viewed", "url_contains": rng.choice(PAGES[1:]),
                    "count": rng.choice([2, 3, 5]), "within_minutes": rng.choice([10, 30])}
        elif roll < 0.77 and segment_ids:
            when = {"type": rng.choice(["segment_entered", "segment_left"]), "segment_id": rng.choice(segment_ids)}
        elif roll < 0.87:
            when = {"type": "property_changed", "property": rng.choice([*PROPERTIES, "plan"])}
        elif roll < 0.92:
            when = {"type": "page_time", "url_contains": rng.choice(PAGES[1:]), "seconds": rng.choice([30, 60])}
        elif roll < 0.96:
            when = {"type": "exit_intent", "url_contains": rng.choice(PAGES[1:])}
        else:
            when = {"type": "inactivity", "event": rng.choice(EVENT_NAMES), "days": rng.choice([7, 30])}
        conditions = rng.choice([
            [], [], [{"kind": "field", "field": "email", "op": "not_set"}],
            [{"kind": "number", "field": "score", "op": "gt", "value": rng.choice([10, 50])}],
            [{"kind": "event", "name": rng.choice(EVENT_NAMES), "op": "at_least", "count": 1}],
            [{"kind": "segment", "segment_id": rng.choice(segment_ids)}] if segment_ids else []])
        audience: dict[str, Any] = {"online_now": rng.random() < 0.1}
        if conditions:
            audience["filter"] = {"kind": "group", "match": "all", "conditions": conditions}
        delay = rng.choice([600, 1800, 3600, 86_400, 0])
        if delay == 0:
            audience["has_channel"] = "email"  # the seeded contacts have none: evaluated, never sent
        variants = [{"name": "A", "weight": 100, "text": rng.choice(TEXTS)}]
        if rng.random() < 0.3:
            variants = [{"name": "A", "weight": 50, "text": TEXTS[0]}, {"name": "B", "weight": 50, "text": TEXTS[1]}]
        body: dict[str, Any] = {
            "name": f"trigger {i}", "enabled": True, "when": when, "audience": audience, "delay_seconds": delay,
            "channel": rng.choice(["widget_chat", "widget_chat", "widget_popup", "best_available", "email"]),
            "variants": variants, "control_percent": rng.choice([0, 0, 10]),
            "limits": {"frequency": rng.choice(["once", "once", "once_per_period", "every_time"])}}
        if body["channel"] == "email":
            variants[0]["subject"] = "A note from us"
        if rng.random() < 0.3:
            body["goal"] = {"event": rng.choice(EVENT_NAMES[:3]), "within_hours": 72, "revenue_property": "amount"}
        TriggerBody.model_validate(body)  # a wrong mix fails here, before any server starts
        out.append(body)
    return out


def _copy_database(env: Env, kind: str, url: str) -> str:
    """A second database with the same rows (the reference's copy of ours)."""
    if kind == "sqlite":
        copy = env.database("sqlite")
        shutil.copyfile(url.split("///", 1)[1], copy.split("///", 1)[1])
        return copy
    import asyncpg  # type: ignore[import-untyped]

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_copy"

    async def create() -> None:
        conn = await asyncpg.connect(host=parts.hostname, port=parts.port, user=parts.username, database="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parts.path.lstrip("/")}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return url.rsplit("/", 1)[0] + "/" + name


def _size(plan: Plan) -> Size:
    return Size(contacts=plan.trigger_contacts, segments=plan.trigger_segments, rules=plan.trigger_rules,
                events=plan.trigger_events, active=plan.trigger_active, probe_every=plan.trigger_events + 1)


def _events(plan: Plan, seed_: int) -> list[tuple[int, str, dict[str, Any]]]:
    return [e for e in workload(_size(plan), seed_, [1]) if e[1] != "lag_probe"]


@contextmanager
def _servers(env: Env, urls: list[str]) -> Iterator[list[ChatServer]]:
    """Servers started side by side (a start is mostly imports: seconds on a loaded machine)."""
    managers = [chat_server(env, database_url=url) for url in urls]
    with ExitStack() as stack, ThreadPoolExecutor(len(urls)) as pool:
        started = [pool.submit(m.__enter__) for m in managers]
        servers, errors = [], []
        for manager, future in zip(managers, started, strict=True):
            try:
                servers.append(future.result())
                stack.push(manager.__exit__)  # a started one is stopped even when another failed
            except Exception as exc:  # noqa: BLE001 - raised below, after the others are handled
                errors.append(exc)
        if errors:
            raise errors[0]
        yield servers


def _prepare(server: ChatServer, definitions: list[dict[str, Any]]) -> str:
    """An API key for the site's backend; the triggers, made through the API as an admin would."""
    with httpx.Client(base_url=server.http + "/api/v1", timeout=120) as http:
        token = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()["token"]
        http.headers["authorization"] = f"Bearer {token}"
        for body in definitions:
            r = http.post("/triggers", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"trigger {body['name']!r} refused: {r.text[:300]}")
        key = http.post("/api-keys", json={"name": "bench backend"}).json()["secret"]
        # Warm: first-use imports, caches and pools are not the ingestion's cost.
        warm = _events(Plan(trigger_contacts=100, trigger_active=50, trigger_events=200), 1)
        for start in range(0, len(warm), 50):
            http.post("/track", headers={"authorization": f"Bearer {key}"}, json={"events": [
                {"contact_id": c, "name": n, "properties": {k: v for k, v in p.items() if k != "url"}}
                for c, n, p in warm[start:start + 50]]}).raise_for_status()
    return str(key)


def _segment_ids(server: ChatServer) -> list[int]:
    with httpx.Client(base_url=server.http + "/api/v1", timeout=120) as http:
        token = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()["token"]
        items = http.get("/segments", headers={"authorization": f"Bearer {token}"}).json()["items"]
    return [int(s["id"]) for s in items if s["name"] != "lag probe"]


def _run(plan: Plan, server: ChatServer, key: str, events: list[tuple[int, str, dict[str, Any]]], triggers: bool,
         rate: float | None = None) -> dict[str, float]:
    """One phase: the backend senders and the probing widgets over `trigger_seconds`."""
    assert server.proc is not None
    n = plan.trigger_senders
    batch = plan.trigger_batch if rate is None else max(1, plan.trigger_batch // 5)
    senders = [(track_batches, (server.http, key, events[k::n], batch, plan.trigger_in_flight, plan.trigger_seconds,
                                None if rate is None else rate / n)) for k in range(n)]
    probes = (probe_widgets, (server.ws, plan.trigger_widgets, plan.trigger_probes_each, PROBE_TRIGGERS,
                              plan.trigger_seconds, triggers))
    with Generators([*senders, probes]) as gens:
        gens.sync()  # everyone connected
        statements, before = _statements(server.http), Usage(server.proc.pid).read()
        gens.sync()  # the sending is over
        after = Usage(server.proc.pid).read()
        statements = _statements(server.http) - statements
        results = gens.results()
    sent = [r for r in results if "requests" in r]
    probed = next(r for r in results if "probes" in r)
    events_in = sum(r["events"] for r in sent)
    seconds = max(r["seconds"] for r in sent)
    cpu = after.cpu - before.cpu
    ms = [x * 1000 for x in probed["latencies"]]
    out = {"events": events_in, "events_per_s": events_in / seconds, "events_per_cpu_s": events_in / max(cpu, 1e-9),
           "statements_per_event": statements / max(events_in, 1), "probes": probed["probes"],
           "generator_max_behind_ms": max(r["max_behind_s"] for r in results) * 1000}
    if triggers:
        out.update(received=len(ms), p50_ms=pct(ms, 0.5), p95_ms=pct(ms, 0.95), p99_ms=pct(ms, 0.99), max_ms=max(ms, default=0))
    return out


def scenario(env: Env, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for db in plan.databases:
        t0 = time.monotonic()
        ours_url = env.database(db)
        asyncio.run(seed(ours_url, _size(plan), with_behaviour=True))
        ref_url = _copy_database(env, db, ours_url)
        seeded = time.monotonic() - t0
        with _servers(env, [ref_url, ours_url]) as (ref, ours):
            definitions = trigger_definitions(plan.trigger_count, _segment_ids(ours))
            ref_key, ours_key = _prepare(ref, []), _prepare(ours, definitions)
            ref_runs, our_runs = [], []
            for n in range(plan.runs):  # interleaved: both see the same minutes of a shared machine
                events = _events(plan, 100 + n)
                ref_runs.append(_run(plan, ref, ref_key, events, triggers=False))
                our_runs.append(_run(plan, ours, ours_key, events, triggers=True))
            mine, theirs = median_of(our_runs), median_of(ref_runs)
            rate = mine["events_per_s"] * plan.trigger_latency_share
            calm = median_of([_run(plan, ours, ours_key, _events(plan, 200 + n), triggers=True, rate=rate)
                              for n in range(plan.runs)])
        rows.append({"database": db, "contacts": plan.trigger_contacts, "triggers": len(definitions),
                     "segments": plan.trigger_segments, "rules": plan.trigger_rules, "seed_seconds": seeded,
                     "ours": mine, "reference": theirs, "below_saturation": {**calm, "rate": rate},
                     "rate_ratio": mine["events_per_s"] / theirs["events_per_s"],
                     "target": "≥ 5,000 events/s with triggers; p99 ≤ 100 ms event → message",
                     "met": mine["events_per_s"] >= 5000 and calm["p99_ms"] <= 100})
    return rows
