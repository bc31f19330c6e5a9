"""A contact's event timeline."""

from __future__ import annotations

from ..actions.errors import NotFound
from ..reads import events as reads
from . import inbox_schemas as isc
from . import schemas as sc
from .framework import Call, Operation, endpoint


async def contact_events(c: Call[None, isc.EventQuery]) -> isc.EventPage:
    q = c.query
    limit = sc.limit_of(q.limit)
    found = await reads.timeline(c.rt.db, c.path_int("id"), q.name, q.q, int(q.before_id) if q.before_id else None, limit)
    if found is None:
        raise NotFound("contact_not_found", "no such contact")
    page = found.events[:limit]
    return isc.EventPage(items=[sc.EventView.model_validate(e, from_attributes=True) for e in page],
                         names=found.names, next_before_id=page[-1].id if len(found.events) > limit else None)


routes: list[Operation] = [
    endpoint("GET", "/contacts/{id:int}/events", contact_events,
             summary="The contact's event timeline, newest first", query=isc.EventQuery, response=isc.EventPage),
]
