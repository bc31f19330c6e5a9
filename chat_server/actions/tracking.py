"""Writing behaviour events in batches: the widget's `track`, the page-exit beacon, the site's
backend (`POST /api/v1/track`) and imports all end here.

Requests that arrive while a batch is being committed go together in the next transaction
(group_commit): the events of many contacts in one multi-row insert, the cards' system
properties (sessions, pages viewed, last page, last seen, UTM, device) in one update, the
data page's names, the score, and the live segment check of the contacts touched — all in
the same transaction, so a contact is never seen with the event but without its effects.

An event may carry the sender's `event_id`: a resent batch finds it stored and stores
nothing twice (the unique key settles two copies racing). It is unique across the
installation, not per contact, as Segment's `messageId` is: a resend is caught however it
addresses the contact (`user_id`, then `email`), and after a merge moved the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.segment_index import MISSING
from ..group_commit import GroupCommit
from ..models import Contact, Event, IdentityKind
from ..models.types import utcnow
from ..runtime import Runtime
from .contacts import find_contact, find_or_create_contact
from .data_names import note_data_names, value_type
from .errors import ActionError, NotFound
from .events import DEVICE_PROPERTIES, utm_of
from .identify import check_identity
from .membership import Touch, dialect_of, run
from .scoring import Happened, react
from .validation import check_properties, check_storable

CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
MAX_BATCH = 1000
EARLIEST = datetime(2000, 1, 1).astimezone()
# A sender's clock may run a little ahead of ours.
FUTURE_SLACK = timedelta(minutes=10)


@dataclass
class TrackItem:
    """One event, checked and waiting to be written."""

    contact_id: int
    name: str
    properties: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    occurred_at: datetime | None = None
    external_id: str | None = None


def check_track_item(item: TrackItem, now: datetime | None = None) -> TrackItem:
    name = check_storable(item.name.strip(), "event name")
    if not 1 <= len(name) <= 200:
        raise ActionError("invalid_event_name", "an event name is 1 to 200 characters")
    item.name = name
    if not isinstance(item.properties, dict):
        raise ActionError("invalid_properties", "properties must be an object")
    check_properties(item.properties)
    if item.url is not None:
        check_storable(item.url, "url")
        if len(item.url) > 2000:
            raise ActionError("invalid_url", "a url is at most 2000 characters")
    if item.external_id is not None:
        check_storable(item.external_id, "event_id")
        if not 1 <= len(item.external_id) <= 200:
            raise ActionError("invalid_event_id", "an event_id is 1 to 200 characters")
    if item.occurred_at is not None:
        if item.occurred_at.tzinfo is None:
            raise ActionError("invalid_occurred_at", "occurred_at needs a time zone (e.g. 2024-05-01T10:00:00Z)")
        if not EARLIEST <= item.occurred_at <= (now or utcnow()) + FUTURE_SLACK:
            raise ActionError("invalid_occurred_at", "occurred_at is before 2000 or in the future")
    return item


async def resolve_contacts(rt: Runtime, addresses: list[tuple[str, Any]]) -> list[int]:
    """Each ("user_id" | "email" | "contact_id", value)'s contact id (a merged-away contact
    gives its survivor). An unknown user_id is created; unknown emails and ids are refused
    before anyone is created, so a refused request leaves nothing behind."""
    found: dict[tuple[str, Any], int] = {}
    async with rt.db.read() as s:
        for n, (kind, value) in enumerate(addresses):
            if (kind, value) in found:
                continue
            if kind == "contact_id":
                contact = await s.get(Contact, value)
                if contact is not None and contact.merged_into_id is not None:
                    contact = await s.get(Contact, contact.merged_into_id)
            else:
                ident = IdentityKind.email if kind == "email" else IdentityKind.user_id
                contact = await find_contact(s, ident, value.strip().lower() if kind == "email" else value.strip())
                if contact is None and kind == "user_id":
                    continue
            if contact is None or contact.id is None:
                raise NotFound("contact_not_found", f"item {n + 1}: no contact with that {kind}")
            found[(kind, value)] = contact.id
    missing = sorted({value for kind, value in addresses if (kind, value) not in found})
    for user_id in missing:
        check_identity(user_id, None, None, None, {})
    if missing:
        async with rt.db.write() as s:
            for user_id in missing:
                contact, _ = await find_or_create_contact(s, IdentityKind.user_id, user_id.strip(), "backend API")
                assert contact.id is not None
                found[("user_id", user_id)] = contact.id
    return [found[a] for a in addresses]


def event_writes(rt: Runtime) -> GroupCommit[list[TrackItem], list[int | None]]:
    """The process's batch writer of behaviour events (built once, where the runtime is built:
    the app's lifespan, the CLI); its batches score and check segments with `rt`."""
    return GroupCommit(lambda batch: write_events(rt, batch), max_batch=200, workers=1 if rt.db.is_sqlite else 4)


async def do_track(rt: Runtime, items: list[TrackItem]) -> list[int | None]:
    """Store the events (one request: all or nothing). Each gets its id, or None when an
    event with that event_id was already stored."""
    if not items:
        return []
    if len(items) > MAX_BATCH:
        raise ActionError("batch_too_large", f"at most {MAX_BATCH} events at once")
    now = utcnow()
    for item in items:
        check_track_item(item, now)
    assert rt.event_writes is not None, "the runtime's builder sets its event writer (actions.tracking.event_writes)"
    return await rt.event_writes.submit(items)


async def write_events(rt: Runtime, requests: list[list[TrackItem]]) -> list[list[int | None]]:
    items = [item for request in requests for item in request]
    results = await rt.db.write_batch(lambda s: store_events(s, rt, items))
    answers, start = [], 0
    for request in requests:
        answers.append(results[start:start + len(request)])
        start += len(request)
    return answers


async def store_events(s: AsyncSession, rt: Runtime, items: list[TrackItem], now: datetime | None = None) -> list[int | None]:
    """Insert the events and fold them into their contacts, inside the caller's transaction."""
    now = now or utcnow()
    contact_ids = sorted({i.contact_id for i in items})
    query = select(CONTACT.id, CONTACT.properties, CONTACT.first_utm, CONTACT.last_seen_at, CONTACT.sessions).where(
        CONTACT.id.in_(contact_ids)).order_by(CONTACT.id)
    if dialect_of(s) == "postgresql":
        query = query.with_for_update()  # in id order, so two batches never wait on each other in a circle
    cards = {r[0]: r for r in (await run(s, query)).all()}
    missing = [i.contact_id for i in items if i.contact_id not in cards]
    if missing:
        raise ActionError("contact_not_found", f"no contact #{missing[0]}")
    keep = await _new_items(s, items)
    rows = [
        {"contact_id": i.contact_id, "name": i.name, "properties": i.properties, "url": i.url,
         "occurred_at": i.occurred_at or now, "external_id": i.external_id}
        for i in items if keep[id(i)]
    ]
    ids: list[int] = []
    if rows:
        db = await s.connection()
        # One multi-row INSERT numbers its rows in order on both databases; RETURNING hands
        # them back in no promised order (and asking SQLAlchemy for the order inserts row by row).
        ids = sorted((await db.execute(insert(Event.__table__).returning(EVENT.id), rows)).scalars())  # type: ignore[attr-defined]
    stored = iter(ids)
    results: list[int | None] = [next(stored) if keep[id(i)] else None for i in items]
    written = [i for i in items if keep[id(i)]]
    if not written:
        return results
    touches, cards_after = await _fold(s, cards, written, now)
    names = _data_names(written, touches, cards_after)
    happened = [Happened(i.contact_id, event_id, i.name, i.url, i.properties, i.occurred_at or now)
                for i, event_id in zip(items, results, strict=True) if event_id is not None]
    await react(s, rt, touches, now, happened)
    # Last: every batch counts the same few names, and on PostgreSQL the rows stay locked
    # until the commit — taken late, concurrent batches wait on each other only briefly.
    await note_data_names(s, names, now)
    return results


async def _new_items(s: AsyncSession, items: list[TrackItem]) -> dict[int, bool]:
    """Which items to store: not an event_id already stored, nor a second copy in this batch."""
    given = sorted({i.external_id for i in items if i.external_id is not None})
    known: set[str] = set()
    if given:
        known = {r[0] for r in (await run(s, select(EVENT.external_id).where(EVENT.external_id.in_(given)))).all()}
    keep: dict[int, bool] = {}
    for item in items:
        if item.external_id is None:
            keep[id(item)] = True
        elif item.external_id in known:
            keep[id(item)] = False
        else:
            known.add(item.external_id)
            keep[id(item)] = True
    return keep


async def _fold(s: AsyncSession, cards: dict[int, Any], items: list[TrackItem], now: datetime,
                ) -> tuple[dict[int, Touch], dict[int, dict[str, Any]]]:
    """The cards' system properties after these events, written in one executemany."""
    touches: dict[int, Touch] = {}
    state: dict[int, dict[str, Any]] = {}
    for item in items:
        card = cards[item.contact_id]
        st = state.setdefault(item.contact_id, {
            "properties": dict(card[1] or {}), "first_utm": dict(card[2] or {}), "last_seen_at": card[3],
            "sessions": card[4] or 0, "session_events": 0,
        })
        touch = touches.setdefault(item.contact_id, Touch(fields={"last_seen_at"}, happened=[]))
        touch.events.add(item.name)
        assert touch.happened is not None
        touch.happened.append((item.name, item.url, item.occurred_at or now, item.properties))
        before = dict(st["properties"])
        _apply(st, item)
        touch.properties |= {k for k in set(before) | set(st["properties"]) if before.get(k) != st["properties"].get(k)}
        if not item.occurred_at or item.occurred_at > st["last_seen_at"]:
            st["last_seen_at"] = item.occurred_at or now
    # Each changed property's and last seen's values before and after the batch: a segment
    # whose conditions on them answer the same for both is not evaluated.
    for cid, touch in touches.items():
        card, st = cards[cid], state[cid]
        initial = card[1] or {}
        touch.property_values = {k: (initial.get(k, MISSING), st["properties"].get(k, MISSING)) for k in touch.properties}
        touch.values["last_seen_at"] = (card[3], st["last_seen_at"])
    sessions_of = [cid for cid, st in state.items() if st["session_events"]]
    if sessions_of:
        # Counted from the events, so two tabs starting at once or a merge stay right.
        counted = dict((await run(s, select(EVENT.contact_id, func.count()).where(
            EVENT.contact_id.in_(sessions_of), EVENT.name == "session_started").group_by(EVENT.contact_id))).all())
        for cid in sessions_of:
            if counted.get(cid, 0) != state[cid]["sessions"]:
                state[cid]["sessions"] = max(state[cid]["sessions"], counted.get(cid, 0))
                touches[cid].fields.add("sessions")
    db = await s.connection()
    await db.execute(
        _UPDATE_CARD,
        [{"b_id": cid, "b_properties": st["properties"], "b_first_utm": st["first_utm"],
          "b_last_seen_at": st["last_seen_at"], "b_sessions": st["sessions"]} for cid, st in state.items()],
    )
    return touches, {cid: st["properties"] for cid, st in state.items()}


_UPDATE_CARD = update(Contact.__table__).where(CONTACT.id == bindparam("b_id")).values(  # type: ignore[attr-defined]
    {name: bindparam(f"b_{name}", type_=CONTACT[name].type) for name in ("properties", "first_utm", "last_seen_at", "sessions")}
)


def _apply(st: dict[str, Any], item: TrackItem) -> None:
    props = st["properties"]
    for key in DEVICE_PROPERTIES:
        value = item.properties.get(key)
        if isinstance(value, str) and value:
            props[key] = value[:200]
    if item.name == "page_viewed":
        pages = props.get("pages_viewed")
        props["pages_viewed"] = (pages if isinstance(pages, int) and not isinstance(pages, bool) else 0) + 1
        title = item.properties.get("title")
        props["last_page"] = {"url": item.url or "", "title": title[:500] if isinstance(title, str) else ""}
    if item.name in ("utm_detected", "page_viewed"):
        utm = utm_of(item.url, item.properties) if item.name == "utm_detected" or "utm_" in (item.url or "") else {}
        if utm:
            props["last_utm"] = utm
            if not st["first_utm"]:
                st["first_utm"] = utm
    if item.name == "session_started":
        st["session_events"] += 1


def _data_names(items: list[TrackItem], touches: dict[int, Touch], cards: dict[int, dict[str, Any]],
                ) -> list[tuple[str, str, str, int]]:
    """Event names, and the card properties the events changed (pages viewed, device, UTM…)."""
    counts: dict[tuple[str, str, str], int] = {}
    for item in items:
        key = ("event", item.name, "event")
        counts[key] = counts.get(key, 0) + 1
    for cid, touch in touches.items():
        for name in touch.properties:
            if name in cards[cid]:
                key = ("property", name, value_type(cards[cid][name]))
                counts[key] = counts.get(key, 0) + 1
    return [(kind, name, kind_type, n) for (kind, name, kind_type), n in counts.items()]
