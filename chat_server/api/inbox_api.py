"""REST for the inbox's own pages: saved replies, editing the card, the event timeline,
the contacts table (filters, CSV export) and reports."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from starlette.responses import Response

from ..actions.contact_edit import do_update_contact
from ..actions.contacts import get_contact
from ..actions.errors import ActionError
from ..actions.saved_replies import do_create_saved_reply, do_delete_saved_reply, do_update_saved_reply
from ..behaviour.filters import contact_filter_clause
from ..behaviour.segments import Group, segment_clause
from ..models import Contact, Conversation, Event, Message, Operator, SavedReply
from ..models.types import utcnow
from ..reads.segments import get_segment
from ..reporting import Stats, build_report, load_lines
from . import inbox_schemas as isc
from . import schemas as sc
from .framework import Call, Registry

api = Registry()
MAX_EXPORT_ROWS = 100_000
MAX_REPORT_DAYS = 366


def contact_view(contact: Contact) -> sc.ContactView:
    return sc.ContactView.model_validate(contact, from_attributes=True)


# --- saved replies --------------------------------------------------------------------------

def saved_reply_view(r: SavedReply) -> isc.SavedReplyView:
    return isc.SavedReplyView.model_validate(r, from_attributes=True)


@api.add("GET", "/saved-replies", summary="Saved replies, by shortcut", response=isc.SavedReplyList)
async def list_saved_replies(c: Call) -> isc.SavedReplyList:
    async with c.rt.db.read() as s:
        rows = (await s.exec(select(SavedReply).order_by(col(SavedReply.shortcut)))).all()
    return isc.SavedReplyList(items=[saved_reply_view(r) for r in rows])


@api.add("POST", "/saved-replies", summary="Add a saved reply (admins)", body=isc.SavedReplyBody,
         response=isc.SavedReplyView, auth="admin", status=201)
async def create_saved_reply(c: Call) -> isc.SavedReplyView:
    return saved_reply_view(await do_create_saved_reply(c.rt, c.me, c.body.shortcut, c.body.text))


@api.add("PATCH", "/saved-replies/{id:int}", summary="Change a saved reply (admins)",
         body=isc.SavedReplyUpdateBody, response=isc.SavedReplyView, auth="admin")
async def update_saved_reply(c: Call) -> isc.SavedReplyView:
    b: isc.SavedReplyUpdateBody = c.body
    return saved_reply_view(await do_update_saved_reply(c.rt, c.me, c.path_int("id"), b.shortcut, b.text))


@api.add("DELETE", "/saved-replies/{id:int}", summary="Delete a saved reply (admins)", auth="admin")
async def delete_saved_reply(c: Call) -> dict[str, bool]:
    await do_delete_saved_reply(c.rt, c.me, c.path_int("id"))
    return {"ok": True}


# --- the contact card -----------------------------------------------------------------------

@api.add("PATCH", "/contacts/{id:int}", summary="Edit name, email, phone and properties (not sales)",
         body=isc.ContactUpdateBody, response=sc.ContactView)
async def update_contact(c: Call) -> sc.ContactView:
    b: isc.ContactUpdateBody = c.body
    fields = {k: getattr(b, k) for k in ("name", "email", "phone") if k in b.model_fields_set}
    return contact_view(await do_update_contact(c.rt, c.me, c.path_int("id"), properties=b.properties, **fields))


@api.add("GET", "/contacts/{id:int}/events", summary="The contact's event timeline, newest first",
         query=isc.EventQuery, response=isc.EventPage)
async def contact_events(c: Call) -> isc.EventPage:
    q: isc.EventQuery = c.query
    limit = sc.limit_of(q.limit)
    async with c.rt.db.read() as s:
        contact = await get_contact(s, c.path_int("id"))
        if contact.merged_into_id is not None:
            contact = await get_contact(s, contact.merged_into_id)
        query = select(Event).where(Event.contact_id == contact.id)
        if q.name:
            query = query.where(Event.name == q.name)
        if q.q:
            pattern = "%" + q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(func.lower(col(Event.name)).like(pattern, escape="\\"),
                                    func.lower(col(Event.url)).like(pattern, escape="\\")))
        if q.before_id:
            query = query.where(col(Event.id) < int(q.before_id))
        rows = (await s.exec(query.order_by(col(Event.id).desc()).limit(limit + 1))).all()
        names = (await s.exec(select(Event.name).where(Event.contact_id == contact.id).distinct()
                              .order_by(col(Event.name)).limit(200))).all()
    page = rows[:limit]
    return isc.EventPage(items=[sc.EventView.model_validate(e, from_attributes=True) for e in page],
                         names=list(names), next_before_id=page[-1].id if len(rows) > limit else None)


@api.add("GET", "/contacts/{id:int}/proactive", summary="Automatic messages the contact got and what followed",
         response=isc.ProactiveList)
async def contact_proactive(c: Call) -> isc.ProactiveList:
    async with c.rt.db.read() as s:
        contact = await get_contact(s, c.path_int("id"))
        if contact.merged_into_id is not None:
            contact = await get_contact(s, contact.merged_into_id)
        conv_id = (await s.exec(select(Conversation.id).where(Conversation.contact_id == contact.id))).first()
        sent = (await s.exec(select(Message).where(Message.kind == "automatic", Message.conversation_id == conv_id)
                             .order_by(col(Message.seq)).limit(100))).all() if conv_id else []
        items = []
        for m in sent:
            reply = (await s.exec(select(Message).where(
                Message.conversation_id == m.conversation_id, col(Message.seq) > m.seq,
                Message.direction == "inbound").order_by(col(Message.seq)).limit(1))).first()
            items.append(isc.ProactiveView(
                message_id=m.id or 0, text=m.text, channel=m.channel, delivery_state=m.delivery_state,
                sent_at=m.created_at, replied_at=reply.created_at if reply else None,
                reply_text=reply.text if reply else None,
            ))
    return isc.ProactiveList(items=items)


# --- the contacts table ---------------------------------------------------------------------

async def _search_query(c: Call, body: isc.ContactSearchBody | isc.ContactExportBody) -> Any:
    dialect = c.rt.db.read_engine.dialect.name
    query = select(Contact).where(col(Contact.merged_into_id).is_(None),
                                  contact_filter_clause(body.filter, dialect, utcnow()))
    if body.segment_id is not None:
        # The segment's own definition, as its count and the live check use it.
        async with c.rt.db.read() as s:
            segment = await get_segment(s, body.segment_id)
        query = query.where(segment_clause(Group.model_validate(segment.definition), dialect, utcnow()))
    if body.q:
        pattern = "%" + body.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(*(func.lower(col(f)).like(pattern, escape="\\")
                                  for f in (Contact.name, Contact.email, Contact.phone))))
    return query


@api.add("POST", "/contacts/search", summary="Contacts matching a filter (AND of conditions), newest first",
         body=isc.ContactSearchBody, response=sc.ContactPage)
async def search_contacts(c: Call) -> sc.ContactPage:
    b: isc.ContactSearchBody = c.body
    query = await _search_query(c, b)
    if b.cursor is not None:
        query = query.where(col(Contact.id) < b.cursor)
    async with c.rt.db.read() as s:
        rows = (await s.exec(query.order_by(col(Contact.id).desc()).limit(b.limit + 1))).all()
    page = rows[:b.limit]
    return sc.ContactPage(items=[contact_view(r) for r in page],
                          next_cursor=str(page[-1].id) if len(rows) > b.limit else None)


def _cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _column_value(contact: Contact, column: str) -> Any:
    if column.startswith("property:"):
        value = contact.properties.get(column[9:])
        return value if not isinstance(value, dict | list) else str(value)
    if column.startswith("utm:"):
        return contact.first_utm.get(column[4:])
    return getattr(contact, column)


@api.add("POST", "/contacts/export", summary="The same contacts as CSV, with the chosen columns",
         body=isc.ContactExportBody)
async def export_contacts(c: Call) -> Response:
    b: isc.ContactExportBody = c.body
    async with c.rt.db.read() as s:
        rows = (await s.exec((await _search_query(c, b)).order_by(col(Contact.id)).limit(MAX_EXPORT_ROWS + 1))).all()
    if len(rows) > MAX_EXPORT_ROWS:
        raise ActionError("export_too_large", f"narrow the filter: at most {MAX_EXPORT_ROWS} contacts per export")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(b.columns)
    for contact in rows:
        writer.writerow([_cell(_column_value(contact, column)) for column in b.columns])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="contacts.csv"'})


# --- reports --------------------------------------------------------------------------------

def _stats(st: Stats) -> isc.StatsView:
    return isc.StatsView(count=st.count, median_seconds=st.median, p90_seconds=st.p90)


@api.add("GET", "/reports", summary="Volume by channel and day; first response and resolution times",
         query=isc.ReportQuery, response=isc.ReportView)
async def report(c: Call) -> isc.ReportView:
    q: isc.ReportQuery = c.query
    end = q.end or utcnow().date()
    start = q.start or end - timedelta(days=13)
    if start > end:
        raise ActionError("invalid_range", "start is after end")
    if (end - start).days >= MAX_REPORT_DAYS:
        raise ActionError("range_too_long", f"a report covers at most {MAX_REPORT_DAYS} days")
    async with c.rt.db.read() as s:
        result = build_report(await load_lines(s, start, end), start, end)
        names = dict((await s.exec(select(Operator.id, Operator.name))).all())
    return isc.ReportView(
        start=result.start, end=result.end, cycles=result.cycles, unanswered=result.unanswered,
        volume=[isc.VolumeDay(day=day, channels=channels) for day, channels in result.volume.items()],
        first_response=_stats(result.first_response), resolution=_stats(result.resolution),
        operators=[isc.OperatorTimesView(operator_id=op, name=names.get(op, f"#{op}"), first_response=_stats(frt),
                                         resolution=_stats(res))
                   for op, (frt, res) in result.per_operator.items()],
    )

