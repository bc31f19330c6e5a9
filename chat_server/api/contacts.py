"""Contacts: the table (search, filters, CSV export), the card, edits, merges, and the
automatic messages a contact got."""

from __future__ import annotations

import csv
import io
from datetime import date, time
from typing import Any

from starlette.responses import Response

from ..actions.contact_edit import do_update_contact
from ..actions.errors import ActionError, NotFound
from ..actions.merge import do_merge_contacts
from ..behaviour.segments import Group
from ..models import Contact
from ..reads import contacts as reads
from ..reads import conversation_list as listing
from ..reads import segments as segment_reads
from ..reads.reach import unsubscriptions
from . import inbox_schemas as isc
from . import schemas as sc
from .framework import Call, Operation, endpoint

MAX_EXPORT_ROWS = 100_000


def contact_view(contact: Contact) -> sc.ContactView:
    return sc.ContactView.model_validate(contact, from_attributes=True)


def _not_found() -> NotFound:
    return NotFound("contact_not_found", "no such contact")


async def list_contacts(c: Call[None, sc.ContactQuery]) -> sc.ContactPage:
    q = c.query
    limit = sc.limit_of(q.limit)
    rows = await reads.page(c.rt.db, q.q, int(q.cursor) if q.cursor else None, limit)
    page = rows[:limit]
    return sc.ContactPage(items=[contact_view(r) for r in page],
                          next_cursor=str(page[-1].id) if len(rows) > limit else None)


async def contact_card(c: Call[None, None]) -> sc.ContactCard:
    card = await reads.card(c.rt.db, c.path_int("id"))
    if card is None:
        raise _not_found()
    return sc.ContactCard(
        contact=contact_view(card.contact),
        identities=[sc.IdentityView.model_validate(i, from_attributes=True) for i in card.identities],
        conversation=await listing.view_of(c.rt.db, card.conversation, card.contact) if card.conversation else None,
        events=[sc.EventView.model_validate(e, from_attributes=True) for e in card.events],
        merges=[sc.MergeView.model_validate(m, from_attributes=True) for m in card.merges],
    )


async def merge(c: Call[sc.MergeBody, None]) -> dict[str, int]:
    record = await do_merge_contacts(c.rt, c.path_int("id"), c.body.other_contact_id, c.body.reason,
                                     operator=c.me)
    assert record.id is not None
    return {"merge_id": record.id}


async def update_contact(c: Call[isc.ContactUpdateBody, None]) -> sc.ContactView:
    b = c.body
    fields = {k: getattr(b, k) for k in ("name", "email", "phone") if k in b.model_fields_set}
    return contact_view(await do_update_contact(c.rt, c.me, c.path_int("id"), properties=b.properties, **fields))


async def contact_proactive(c: Call[None, None]) -> isc.ProactiveList:
    sent = await reads.proactive(c.rt.db, c.path_int("id"))
    if sent is None:
        raise _not_found()
    return isc.ProactiveList(items=[
        isc.ProactiveView(
            message_id=p.message.id or 0, text=p.message.text, channel=p.message.channel,
            delivery_state=p.message.delivery_state, sent_at=p.message.created_at, replied_at=p.replied_at,
            reply_text=p.reply_text,
        )
        for p in sent
    ], unsubscribed=[isc.UnsubscribedView(channel=channel, at=at)
                     for channel, at in await unsubscriptions(c.rt.db, c.path_int("id"))])


async def _segment(c: Call[Any, None], segment_id: int | None) -> Group | None:
    if segment_id is None:
        return None
    found = await segment_reads.definition(c.rt.db, segment_id)
    if found is None:
        raise NotFound("segment_not_found", "no such segment")
    return found


async def search_contacts(c: Call[isc.ContactSearchBody, None]) -> sc.ContactPage:
    b = c.body
    rows = await reads.search(c.rt.db, b.filter, b.q, b.cursor, b.limit, await _segment(c, b.segment_id))
    page = rows[:b.limit]
    return sc.ContactPage(items=[contact_view(r) for r in page],
                          next_cursor=str(page[-1].id) if len(rows) > b.limit else None)


def _cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, date | time) else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _column_value(contact: Contact, column: str) -> object:
    if column.startswith("property:"):
        value = contact.properties.get(column[9:])
        return value if not isinstance(value, dict | list) else str(value)
    if column.startswith("utm:"):
        return contact.first_utm.get(column[4:])
    field: object = getattr(contact, column)
    return field


async def export_contacts(c: Call[isc.ContactExportBody, None]) -> Response:
    b = c.body
    rows = await reads.export(c.rt.db, b.filter, b.q, MAX_EXPORT_ROWS, await _segment(c, b.segment_id))
    if len(rows) > MAX_EXPORT_ROWS:
        raise ActionError("export_too_large", f"narrow the filter: at most {MAX_EXPORT_ROWS} contacts per export")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(b.columns)
    for contact in rows:
        writer.writerow([_cell(_column_value(contact, column)) for column in b.columns])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="contacts.csv"'})


routes: list[Operation] = [
    endpoint("GET", "/contacts", list_contacts, summary="Contacts, newest first; q searches name, email, phone",
             query=sc.ContactQuery, response=sc.ContactPage),
    endpoint("GET", "/contacts/{id:int}", contact_card,
             summary="The contact card: identities, conversation, events, merges", response=sc.ContactCard),
    endpoint("POST", "/contacts/{id:int}/merge", merge, summary="Merge another contact into this one",
             body=sc.MergeBody),
    endpoint("PATCH", "/contacts/{id:int}", update_contact,
             summary="Edit name, email, phone and properties (not sales)", body=isc.ContactUpdateBody,
             response=sc.ContactView),
    endpoint("GET", "/contacts/{id:int}/proactive", contact_proactive,
             summary="Automatic messages the contact got and what followed", response=isc.ProactiveList),
    endpoint("POST", "/contacts/search", search_contacts,
             summary="Contacts matching a filter (AND of conditions), newest first", body=isc.ContactSearchBody,
             response=sc.ContactPage),
    endpoint("POST", "/contacts/export", export_contacts, summary="The same contacts as CSV, with the chosen columns",
             body=isc.ContactExportBody),
]
