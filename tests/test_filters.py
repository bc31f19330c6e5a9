"""Contact filters: the SQL translation on SQLite and PostgreSQL agrees with the definition
(the pure Python evaluation) on seeded contacts, for hand-picked and for random filters."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from chat_server.behaviour.filter_sql import contact_filter_clause
from chat_server.behaviour.filters import ContactFilter
from chat_server.behaviour.snapshot import Snapshot, matches
from chat_server.models import Contact, Event
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from tests.inprocess import make_runtime

pytestmark = pytest.mark.anyio
NOW = utcnow()

# name, email, score, properties, events (name, url, days ago), last seen days ago
PEOPLE: list[tuple[str, str | None, int, dict[str, Any], list[tuple[str, str | None, int]], int]] = [
    ("Ann", "ann@example.com", 25, {"plan": "pro", "seats": 10, "vip": True},
     [("Page viewed", "https://shop.example/pricing", 1), ("Page viewed", "https://shop.example/pricing?x=1", 3),
      ("Session started", None, 2)], 1),
    ("Bob", "bob@example.com", 5, {"plan": "free", "seats": 1},
     [("Page viewed", "https://shop.example/pricing", 40), ("Order placed", None, 10)], 35),
    ("Cid", None, 40, {"plan": "Pro", "seats": "10"},
     [("Page viewed", "https://shop.example/pricing", 1)] * 3, 2),
    ("Dee", "", 0, {"vip": False, "seats": 2.5},
     [("Page viewed", "https://shop.example/PRICING/enterprise", 5), ("Page viewed", "https://shop.example/pricing", 6)], 6),
    ("Eve", "eve@shop.example", 21, {"plan": None, "note": "50% off_now"},
     [("Session started", None, 45), ("Page viewed", "https://shop.example/about", 1)], 45),
    ("Fay", "fay@example.com", 30, {}, [], 0),
]


@pytest.fixture
async def seeded(db_url: str) -> AsyncIterator[tuple[Runtime, dict[int, Snapshot]]]:
    rt, _ = await make_runtime(db_url)
    snapshots: dict[int, Snapshot] = {}
    async with rt.db.write() as s:
        for name, email, score, props, events, seen in PEOPLE:
            contact = Contact(name=name, email=email, score=score, properties=props,
                              last_seen_at=NOW - timedelta(days=seen), first_seen_at=NOW - timedelta(days=60))
            s.add(contact)
            await s.flush()
            assert contact.id is not None
            for event_name, url, ago in events:
                s.add(Event(contact_id=contact.id, name=event_name, url=url, occurred_at=NOW - timedelta(days=ago)))
            snapshots[contact.id] = Snapshot(
                name=name, email=email, score=score, first_seen_at=contact.first_seen_at,
                last_seen_at=contact.last_seen_at, properties=props,
                events=[(e, u, NOW - timedelta(days=a)) for e, u, a in events],
            )
    yield rt, snapshots
    await rt.db.dispose()


async def sql_names(rt: Runtime, flt: ContactFilter) -> set[str]:
    dialect = rt.db.read_engine.dialect.name
    async with rt.db.read() as s:
        rows = (await s.exec(select(Contact.name).where(contact_filter_clause(flt, dialect, NOW))
                             .order_by(col(Contact.id)))).all()
    return {r for r in rows if r}


def py_names(flt: ContactFilter, snapshots: dict[int, Snapshot]) -> set[str]:
    return {s.name for s in snapshots.values() if s.name and matches(flt, s, NOW)}


EXAMPLES: list[tuple[list[dict[str, Any]], set[str]]] = [
    # The example: email is set AND viewed /pricing at least twice.
    ([{"kind": "field", "field": "email", "op": "is_set"},
      {"kind": "event", "name": "Page viewed", "url_contains": "/pricing", "count": 2}], {"Ann"}),
    ([{"kind": "event", "name": "Page viewed", "url_contains": "/pricing", "count": 2}], {"Ann", "Cid", "Dee"}),
    # The source's segment: email set AND session within 30 days AND never ordered AND score > 20.
    ([{"kind": "field", "field": "email", "op": "is_set"},
      {"kind": "event", "name": "Session started", "within_days": 30},
      {"kind": "event", "name": "Order placed", "op": "never"},
      {"kind": "number", "field": "score", "op": "gt", "value": 20}], {"Ann"}),
    ([{"kind": "event", "name": "Order placed", "op": "never"}], {"Ann", "Cid", "Dee", "Eve", "Fay"}),
    ([{"kind": "event", "name": "Page viewed", "op": "never", "within_days": 7}], {"Bob", "Fay"}),
    ([{"kind": "property", "key": "plan", "op": "eq", "value": "pro"}], {"Ann"}),
    ([{"kind": "property", "key": "plan", "op": "ne", "value": "pro"}], {"Bob", "Cid", "Dee", "Eve", "Fay"}),
    ([{"kind": "property", "key": "plan", "op": "contains", "value": "PR"}], {"Ann", "Cid"}),
    ([{"kind": "property", "key": "plan", "op": "is_set"}], {"Ann", "Bob", "Cid"}),
    ([{"kind": "property", "key": "seats", "op": "gte", "value": 2.5}], {"Ann", "Dee"}),
    ([{"kind": "property", "key": "seats", "op": "eq", "value": "10"}], {"Ann", "Cid"}),
    ([{"kind": "property", "key": "seats", "op": "eq", "value": 10}], {"Ann"}),
    ([{"kind": "property", "key": "vip", "op": "eq", "value": False}], {"Dee"}),
    ([{"kind": "property", "key": "note", "op": "contains", "value": "% off_"}], {"Eve"}),
    ([{"kind": "property", "key": "note", "op": "contains", "value": "%_"}], set()),
    ([{"kind": "time", "field": "last_seen_at", "op": "older_than_days", "days": 30}], {"Bob", "Eve"}),
    ([{"kind": "field", "field": "email", "op": "contains", "value": "@EXAMPLE.com"}], {"Ann", "Bob", "Fay"}),
    ([], {"Ann", "Bob", "Cid", "Dee", "Eve", "Fay"}),
]


@pytest.mark.parametrize("conditions,expected", EXAMPLES)
async def test_examples_on_both_databases(seeded: tuple[Runtime, dict[int, Snapshot]],
                                          conditions: list[dict[str, Any]], expected: set[str]) -> None:
    rt, snapshots = seeded
    flt = ContactFilter.model_validate({"all": conditions})
    assert await sql_names(rt, flt) == expected
    assert py_names(flt, snapshots) == expected


def random_condition(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["field", "number", "time", "property", "event"])
    if kind == "field":
        op = rng.choice(["is_set", "not_set", "eq", "ne", "contains"])
        value = rng.choice(["ann@example.com", "example", "EVE", "x"]) if op in ("eq", "ne", "contains") else None
        return {"kind": kind, "field": rng.choice(["name", "email"]), "op": op, "value": value}
    if kind == "number":
        return {"kind": kind, "field": "score", "op": rng.choice(["eq", "ne", "gt", "gte", "lt", "lte"]),
                "value": rng.choice([0, 5, 20, 21, 25.5])}
    if kind == "time":
        return {"kind": kind, "field": "last_seen_at", "op": rng.choice(["within_days", "older_than_days"]),
                "days": rng.choice([1, 3, 7, 30, 40])}
    if kind == "property":
        op = rng.choice(["is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte"])
        key = rng.choice(["plan", "seats", "vip", "note", "missing"])
        if op in ("gt", "gte", "lt", "lte"):
            value: Any = rng.choice([1, 2.5, 10])
        elif op == "contains":
            value = rng.choice(["pro", "1", "off", "%"])
        elif op in ("eq", "ne"):
            value = rng.choice(["pro", "Pro", "10", 10, 2.5, True, False, "free"])
        else:
            value = None
        return {"kind": kind, "key": key, "op": op, "value": value}
    cond: dict[str, Any] = {"kind": "event", "name": rng.choice(["Page viewed", "Session started", "Order placed"]),
                            "op": rng.choice(["at_least", "never"]), "count": rng.choice([1, 2, 3])}
    if rng.random() < 0.5:
        cond["within_days"] = rng.choice([2, 7, 30])
    if rng.random() < 0.5:
        cond["url_contains"] = rng.choice(["/pricing", "PRICING/", "about"])
    return cond


async def test_random_filters_agree_with_the_definition(seeded: tuple[Runtime, dict[int, Snapshot]]) -> None:
    rt, snapshots = seeded
    rng = random.Random(4)
    nonempty = 0
    for _ in range(150):
        flt = ContactFilter.model_validate({"all": [random_condition(rng) for _ in range(rng.randint(1, 3))]})
        expected = py_names(flt, snapshots)
        assert await sql_names(rt, flt) == expected, flt.model_dump_json()
        nonempty += bool(expected)
    assert nonempty > 30  # the random filters do select something


@pytest.mark.parametrize("bad", [
    {"all": [{"kind": "property", "key": "a\"b", "op": "is_set"}]},
    {"all": [{"kind": "property", "key": "plan", "op": "gt", "value": "x"}]},
    {"all": [{"kind": "property", "key": "plan", "op": "eq"}]},
    {"all": [{"kind": "field", "field": "password", "op": "is_set"}]},
    {"all": [{"kind": "event", "name": "x", "count": 0}]},
    {"all": [{"kind": "number", "field": "score", "op": "gt", "value": float("nan")}]},
    {"all": [{"kind": "nope"}]},
])
def test_bad_filters_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ContactFilter.model_validate(bad)
