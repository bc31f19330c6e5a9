"""Behaviour ingestion, in one process: events per second with 200 segments and 50 scoring
rules over 100,000 contacts, and the lag from an event to the membership change it causes.

    .venv/bin/python -m bench.behaviour            # both databases, full size (a few minutes)
    .venv/bin/python -m bench.behaviour --smoke    # tiny sizes, checks the harness

Many senders (as many widgets and backend calls would) each call the event writer
(`actions.tracking.do_track`) with one event and wait for its answer; the writer group-commits
them. The reference, measured in the same run on a copy of the same database, writes the same
events through the same group commit with nothing else: no card update, no scoring, no
segments. The lag is the time from sending a `lag_probe` event to the commit that records the
contact's entry into the probe segment (entries are written in the event's own transaction, so
the answer to the sender is that moment); every probe's entry is checked afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.behaviour_report import median_of, table, write_table
from chat_server import migrate
from chat_server.actions.inbound_batch import contact_message_writes
from chat_server.actions.tracking import TrackItem, do_track, event_writes
from chat_server.behaviour.scoring import RuleDefinition
from chat_server.behaviour.segments import Group
from chat_server.bus import LocalBus
from chat_server.cli import tune_collector
from chat_server.db import Database
from chat_server.file_store import open_file_store
from chat_server.group_commit import GroupCommit
from chat_server.metrics import Metrics
from chat_server.models import Contact, Event, ScoringRule, Segment, SegmentMembership
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from chat_server.settings import Settings
from tests.services import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
EVENT_NAMES = [f"ev_{n}" for n in range(30)]
PROPERTIES = [f"p_{n}" for n in range(20)]
PAGES = ["/", "/pricing", "/features", "/docs/start", "/docs/api", "/blog/launch", "/blog/tips", "/signup", "/checkout"]
# A site's traffic: mostly page views, some of its own events (Mixpanel- and Segment-style
# installations report page views at about three quarters of all events).
PAGE_VIEW_SHARE = 0.7


@dataclass
class Size:
    contacts: int = 100_000
    segments: int = 200
    rules: int = 50
    events: int = 20_000
    senders: int = 200
    probe_every: int = 40
    active: int = 5_000  # the contacts the events are about (both passes), out of all contacts
    page_views: int = 70  # percent of the events that are page views (the rest: the site's own events)


SMOKE = Size(contacts=500, segments=20, rules=5, events=400, senders=20, probe_every=10, active=100)


def segment_definition(rng: random.Random) -> dict[str, Any]:
    """Realistic mixes; every one needs something to have happened, so a fresh database has
    no members yet and the live check starts from the truth."""
    name = rng.choice(EVENT_NAMES)
    first: dict[str, Any] = rng.choice([
        {"kind": "event", "name": name, "op": "at_least", "count": rng.choice([1, 2, 3])},
        {"kind": "event", "name": "page_viewed", "op": "at_least", "count": rng.choice([2, 5]),
         "url_contains": rng.choice(PAGES[1:])},
        {"kind": "property", "key": "pages_viewed", "op": "gt", "value": rng.choice([5, 10, 20])},
        {"kind": "event", "name": name, "op": "at_least", "count": 1, "within": {"amount": rng.choice([1, 7, 30]), "unit": "days"}},
        {"kind": "event_time", "name": name, "which": "last", "op": "less_than", "ago": {"amount": 30, "unit": "days"}},
        {"kind": "property", "key": rng.choice(PROPERTIES), "op": "is_set"},
        {"kind": "number", "field": "score", "op": "gt", "value": rng.choice([10, 20, 50])},
    ])
    others = rng.choice([
        [], [{"kind": "event", "name": rng.choice(EVENT_NAMES), "op": "never"}],
        [{"kind": "group", "match": "any", "conditions": [
            {"kind": "event", "name": rng.choice(EVENT_NAMES), "op": "at_most", "count": 2},
            {"kind": "property", "key": rng.choice(PROPERTIES), "op": "eq", "value": "pro"}]}],
        [{"kind": "event", "name": rng.choice(EVENT_NAMES), "op": "at_least", "count": 1,
          "where": [{"kind": "property", "key": "amount", "op": "gt", "value": 50}]}],
    ])
    return Group.model_validate({"match": "all", "conditions": [first, *others]}).model_dump(mode="json")


def rule_definition(rng: random.Random) -> dict[str, Any]:
    when: dict[str, Any] = {"kind": "event", "name": rng.choice(EVENT_NAMES)}
    if rng.random() < 0.2:
        when = {"kind": "event", "name": "page_viewed", "url_contains": rng.choice(PAGES[1:])}
    elif rng.random() < 0.3:
        when["where"] = [{"kind": "property", "key": "amount", "op": "gt", "value": 50}]
    definition: dict[str, Any] = {"when": when, "points": rng.choice([1, 5, 10, 20, -10])}
    roll = rng.random()
    if roll < 0.2:
        definition["limit"] = "once"
    elif roll < 0.4:
        definition.update(limit="max", max_times=3)
    if rng.random() < 0.3:
        definition["expires_days"] = 30
    return RuleDefinition.model_validate(definition).model_dump(mode="json")


async def seed(url: str, size: Size, with_behaviour: bool) -> None:
    await migrate.upgrade_async(url)
    db = Database(url)
    rng = random.Random(7)
    now = utcnow()
    try:
        for start in range(0, size.contacts, 5000):
            async with db.write() as s:
                conn = await s.connection()
                await conn.execute(insert(Contact.__table__), [  # type: ignore[attr-defined]
                    {"name": f"c{n}", "email": None, "properties": {}, "first_seen_at": now, "last_seen_at": now,
                     "first_utm": {}, "sessions": 0, "score": 0}
                    for n in range(start, min(start + 5000, size.contacts))])
        if with_behaviour:
            async with db.write() as s:
                conn = await s.connection()
                await conn.execute(insert(Segment.__table__), [  # type: ignore[attr-defined]
                    {"name": f"segment {n}", "description": "", "definition": segment_definition(rng), "preset": None,
                     "created_at": now, "updated_at": now} for n in range(size.segments - 1)]
                    + [{"name": "lag probe", "description": "", "preset": None, "created_at": now, "updated_at": now,
                        "definition": {"kind": "group", "match": "all", "conditions": [
                            {"kind": "event", "name": "lag_probe", "op": "at_least", "count": 1}]}}])
                await conn.execute(insert(ScoringRule.__table__), [  # type: ignore[attr-defined]
                    {"name": f"rule {n}", "definition": rule_definition(rng), "preset": None, "created_at": now,
                     "updated_at": now} for n in range(size.rules)])
    finally:
        await db.dispose()


def workload(size: Size, seed: int = 11, probes_from: list[int] | None = None) -> list[tuple[int, str, dict[str, Any]]]:
    """(contact id, event name, properties): a probe every `probe_every` events, each probe for
    a contact that has not had one."""
    rng = random.Random(seed)
    probes = iter(probes_from if probes_from is not None else
                  rng.sample(range(1, size.contacts + 1), k=size.events // size.probe_every + 1))
    active = random.Random(3).sample(range(1, size.contacts + 1), k=size.active)
    events = []
    for n in range(size.events):
        if n % size.probe_every == 0:
            events.append((next(probes), "lag_probe", {}))
        elif rng.random() * 100 < size.page_views:
            page = rng.choice(PAGES)
            events.append((rng.choice(active), "page_viewed", {"url": page, "title": f"Page {page}"}))
        else:
            events.append((rng.choice(active), rng.choice(EVENT_NAMES), {"amount": rng.randint(0, 100)}))
    return events


async def drive(send: Any, events: list[tuple[int, str, dict[str, Any]]], senders: int) -> tuple[float, list[float]]:
    """Every sender sends its share one event at a time; returns seconds and the probes' lags."""
    queue = list(reversed(events))
    lags: list[float] = []

    async def sender() -> None:
        while queue:
            contact_id, name, props = queue.pop()
            t0 = time.perf_counter()
            url = "https://shop.example" + props.get("url", "/p")
            await send(TrackItem(contact_id, name, {k: v for k, v in props.items() if k != "url"}, url))
            if name == "lag_probe":
                lags.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return time.perf_counter() - started, lags


async def measure(url: str, size: Size, evaluate: bool) -> dict[str, Any]:
    """A cold pass (the active contacts' first events: many segments entered), then a warm pass
    of new events about the same active contacts (closer to steady state: fewer changes)."""
    bus, metrics, db = LocalBus(), Metrics(), Database(url)
    settings = Settings(database_url=url, secret_key="bench")
    rt = Runtime(settings=settings, db=db, bus=bus, metrics=metrics,
                 inbound_writes=contact_message_writes(db, metrics), files=open_file_store(settings))
    rt.event_writes = event_writes(rt)
    tune_collector()  # as `chat-server serve` does once it has started
    rng = random.Random(5)
    probe_ids = rng.sample(range(1, size.contacts + 1), k=2 * (size.events // size.probe_every + 1))
    half = len(probe_ids) // 2
    passes = {"cold": workload(size, 11, probe_ids[:half]), "warm": workload(size, 12, probe_ids[half:])}
    try:
        results = {}
        for label, events in passes.items():
            results[label] = await _measure_pass(rt, events, size, evaluate)
        return results
    finally:
        await rt.db.dispose()


async def _probe_members(rt: Runtime) -> tuple[int, int]:
    """Members of the probe segment, and memberships in all."""
    members = SegmentMembership.__table__  # type: ignore[attr-defined]
    async with rt.db.read() as s:
        conn = await s.connection()
        probe_id = (await conn.execute(select(Segment.__table__.c.id).where(  # type: ignore[attr-defined]
            Segment.__table__.c.name == "lag probe"))).scalar_one()  # type: ignore[attr-defined]
        probed = (await conn.execute(select(func.count()).select_from(members).where(members.c.segment_id == probe_id))).scalar_one()
        total = (await conn.execute(select(func.count()).select_from(members))).scalar_one()
    return int(probed), int(total)


async def _measure_pass(rt: Runtime, events: list[tuple[int, str, dict[str, Any]]], size: Size,
                        evaluate: bool) -> dict[str, Any]:
    if evaluate:
        async def send(item: TrackItem) -> None:
            await do_track(rt, [item])

        before = await _probe_members(rt)
    else:
        table = Event.__table__  # type: ignore[attr-defined]

        async def plain(batch: list[TrackItem]) -> list[None]:
            async with rt.db.write() as s:
                conn = await s.connection()
                await conn.execute(insert(table), [
                    {"contact_id": i.contact_id, "name": i.name, "properties": i.properties, "url": i.url,
                     "occurred_at": utcnow(), "external_id": None} for i in batch])
            return [None] * len(batch)

        # The same batching as the event writer's.
        writer: GroupCommit[TrackItem, None] = GroupCommit(plain, max_batch=200, workers=1 if rt.db.is_sqlite else 4)

        async def send(item: TrackItem) -> None:
            await writer.submit(item)

    cpu = time.process_time()
    seconds, lags = await drive(send, events, size.senders)
    cpu = time.process_time() - cpu
    # The process's CPU time too (the database's own work included on SQLite, not on
    # PostgreSQL's server): on a shared machine the wall clock also measures the neighbours.
    result: dict[str, Any] = {"events": len(events), "seconds": round(seconds, 2),
                              "events_per_second": round(len(events) / seconds),
                              "cpu_seconds": round(cpu, 2), "events_per_cpu_second": round(len(events) / max(cpu, 1e-6))}
    if evaluate:
        after = await _probe_members(rt)
        lags.sort()
        result.update(
            probes=len(lags), probe_members=after[0] - before[0], membership_changes=after[1] - before[1],
            lag_p50_ms=round(statistics.median(lags) * 1000, 1),
            lag_p99_ms=round(lags[max(0, int(len(lags) * 0.99) - 1)] * 1000, 1),
        )
    return result


async def run_database(kind: str, size: Size, tmp: Path, pg: PostgresServer | None, run: int = 0) -> dict[str, Any]:
    urls = {}
    for label in ("reference", "behaviour"):
        if kind == "sqlite":
            urls[label] = f"sqlite+aiosqlite:///{tmp / f'{label}_{run}.db'}"
        else:
            assert pg is not None
            urls[label] = pg.create_database(f"bench_{label}_{run}")
        t0 = time.perf_counter()
        await seed(urls[label], size, with_behaviour=label == "behaviour")
        print(f"bench: {kind} {label}: seeded in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    reference = await measure(urls["reference"], size, evaluate=False)
    print(f"bench: {kind} reference {reference}", file=sys.stderr, flush=True)
    ours = await measure(urls["behaviour"], size, evaluate=True)
    print(f"bench: {kind} behaviour {ours}", file=sys.stderr, flush=True)
    return {"reference": reference, "behaviour": ours}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.behaviour")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--size", action="append", default=[], metavar="FIELD=N",
                        help="override one size (e.g. contacts=20000 events=4000) for a reduced run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "behaviour.json")
    parser.add_argument("--runs", type=int, default=1, help="runs per database (the medians are reported)")
    parser.add_argument("--write-notes", action="store_true",
                        help="write the figures' table into bench/notes.md and docs/performance.md")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else Size()
    for override in args.size:
        key, _, value = override.partition("=")
        if key not in size.__dict__:
            parser.error(f"--size: no size called {key!r} (there are: {', '.join(size.__dict__)})")
        setattr(size, key, int(value))
    kinds = args.only or ["sqlite", "postgres"]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="chat-bench-behaviour-") as tmp:
        pg = None
        try:
            for n in range(args.runs):
                for kind in kinds:
                    if kind == "postgres" and pg is None:
                        pg = PostgresServer(Path(tmp) / "pg")
                        pg.start()
                    runs[kind].append(asyncio.run(run_database(kind, size, Path(tmp), pg, n)))
        finally:
            if pg is not None:
                pg.close()
    results: dict[str, Any] = {"size": size.__dict__, "runs": args.runs, "databases": {
        kind: {**median_of(found), "runs": found} for kind, found in runs.items()}}
    if args.write_notes:
        write_table([ROOT / "bench" / "notes.md", ROOT / "docs" / "performance.md"], table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
