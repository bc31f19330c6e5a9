"""REST for segments: the list with counts, the builder's live count, presets, the members
(page and CSV), a contact's segments, and the data page (event and property names seen)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field
from starlette.responses import Response

from ..actions.contacts import get_contact
from ..actions.errors import ActionError, NotFound
from ..actions.segments import PRESETS, do_create_preset_segment, do_create_segment, do_delete_segment, do_update_segment
from ..behaviour.filters import Storable
from ..behaviour.segments import Group, referenced_segments
from ..models import Segment
from ..models.ids import RowId
from ..reads import segments as reads
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint

T = TypeVar("T")
MAX_EXPORT_ROWS = 100_000

Name = Annotated[str, Field(min_length=1, max_length=200), Storable]
Description = Annotated[str, Field(max_length=1000), Storable]


class SegmentBody(sc.Body):
    name: Name
    description: Description = ""
    definition: Group


class SegmentUpdateBody(sc.Body):
    name: Name | None = None
    description: Description | None = None
    definition: Group | None = None


class CountBody(sc.Body):
    definition: Group


class CountResult(BaseModel):
    count: int


class SegmentView(BaseModel):
    id: int
    name: str
    description: str
    definition: Group
    preset: str | None
    count: int
    updated_at: datetime


class SegmentList(BaseModel):
    items: list[SegmentView]


class PresetView(BaseModel):
    key: str
    name: str
    description: str
    definition: Group


class PresetList(BaseModel):
    items: list[PresetView]


class MemberPageQuery(sc.Body):
    cursor: RowId | None = None
    limit: Annotated[str, Field(pattern=r"^[0-9]{1,3}$")] = "50"


class ContactSegmentView(BaseModel):
    id: int
    name: str
    entered_at: datetime


class ContactSegmentList(BaseModel):
    items: list[ContactSegmentView]


class DataNameView(BaseModel):
    kind: str
    name: str
    type: str
    count: int
    last_seen_at: datetime


class DataNameList(BaseModel):
    items: list[DataNameView]


def _found(segment: T | None) -> T:
    if segment is None:
        raise NotFound("segment_not_found", "no such segment")
    return segment


def segment_view(segment: Segment, count: int) -> SegmentView:
    assert segment.id is not None
    return SegmentView(id=segment.id, name=segment.name, description=segment.description,
                       definition=Group.model_validate(segment.definition), preset=segment.preset, count=count,
                       updated_at=segment.updated_at)


async def _counted(c: Call[Any, Any], segment: Segment) -> SegmentView:
    async with c.rt.db.read() as s:
        count = await reads.count_matching(s, Group.model_validate(segment.definition), c.rt.db.read_engine.dialect.name)
    return segment_view(segment, count)

async def list_segments(c: Call[None, None]) -> SegmentList:
    async with c.rt.db.read() as s:
        rows = await reads.list_segments(s)
    return SegmentList(items=[segment_view(seg, n) for seg, n in rows])

async def list_presets(c: Call[None, None]) -> PresetList:
    return PresetList(items=[PresetView(key=k, name=n, description=d, definition=Group.model_validate(g))
                             for k, (n, d, g) in PRESETS.items()])

async def count(c: Call[CountBody, None]) -> CountResult:
    async with c.rt.db.read() as s:
        for ref in sorted(referenced_segments(c.body.definition)):
            _found(await reads.get_segment(s, ref))
        return CountResult(count=await reads.count_matching(s, c.body.definition, c.rt.db.read_engine.dialect.name))

async def create_segment(c: Call[SegmentBody, None]) -> SegmentView:
    b: SegmentBody = c.body
    return await _counted(c, await do_create_segment(c.rt, c.me, b.name, b.definition, b.description))

async def add_preset(c: Call[None, None]) -> SegmentView:
    return await _counted(c, await do_create_preset_segment(c.rt, c.me, str(c.request.path_params["key"])[:100]))

async def get_segment(c: Call[None, None]) -> SegmentView:
    async with c.rt.db.read() as s:
        segment = _found(await reads.get_segment(s, c.path_int("id")))
    return await _counted(c, segment)

async def update_segment(c: Call[SegmentUpdateBody, None]) -> SegmentView:
    b: SegmentUpdateBody = c.body
    segment = await do_update_segment(c.rt, c.me, c.path_int("id"), name=b.name, description=b.description,
                                      definition=b.definition)
    return await _counted(c, segment)

async def delete_segment(c: Call[None, None]) -> dict[str, bool]:
    await do_delete_segment(c.rt, c.me, c.path_int("id"))
    return {"ok": True}

async def segment_contacts(c: Call[None, MemberPageQuery]) -> sc.ContactPage:
    q: MemberPageQuery = c.query
    limit = sc.limit_of(q.limit)
    definition = _found(await reads.definition(c.rt.db, c.path_int("id")))
    rows = await reads.members_page(c.rt.db, definition, q.cursor, limit)
    page = rows[:limit]
    return sc.ContactPage(items=[sc.ContactView.model_validate(r, from_attributes=True) for r in page],
                          next_cursor=str(page[-1].id) if len(rows) > limit else None)

async def export_segment(c: Call[None, None]) -> Response:
    definition = _found(await reads.definition(c.rt.db, c.path_int("id")))
    rows = await reads.members_export(c.rt.db, definition, MAX_EXPORT_ROWS)
    if len(rows) > MAX_EXPORT_ROWS:
        raise ActionError("export_too_large", f"at most {MAX_EXPORT_ROWS} contacts per export")
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ("id", "name", "email", "phone", "score", "grade", "last_seen_at")
    writer.writerow(columns)
    for contact in rows:
        writer.writerow([_cell(getattr(contact, name)) for name in columns])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="segment.csv"'})


def _cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

async def contact_segments(c: Call[None, None]) -> ContactSegmentList:
    async with c.rt.db.read() as s:
        contact = await get_contact(s, c.path_int("id"))
        rows = await reads.contact_segments(s, contact.merged_into_id or c.path_int("id"))
    return ContactSegmentList(items=[ContactSegmentView(id=i, name=n, entered_at=at) for i, n, at in rows])

async def data_names(c: Call[None, None]) -> DataNameList:
    async with c.rt.db.read() as s:
        rows = await reads.data_names(s)
    return DataNameList(items=[DataNameView.model_validate(r, from_attributes=True) for r in rows])


routes: list[Operation] = [
    endpoint("GET", "/segments", list_segments, summary="Segments with their member counts", response=SegmentList),
    endpoint("GET", "/segments/presets", list_presets, summary="Segments that ship ready to add (then edit)",
             response=PresetList),
    endpoint("POST", "/segments/count", count,
             summary="How many contacts a definition selects now (the builder's live count)",
             body=CountBody, response=CountResult),
    endpoint("POST", "/segments", create_segment, summary="Save a segment (admins)",
             body=SegmentBody, response=SegmentView, auth=Auth.admin, status=201),
    endpoint("POST", "/segments/presets/{key}", add_preset, summary="Add a preset as an editable segment (admins)",
             response=SegmentView, auth=Auth.admin, status=201),
    endpoint("GET", "/segments/{id:int}", get_segment, summary="One segment", response=SegmentView),
    endpoint("PATCH", "/segments/{id:int}", update_segment, summary="Rename or redefine a segment (admins)",
             body=SegmentUpdateBody, response=SegmentView, auth=Auth.admin),
    endpoint("DELETE", "/segments/{id:int}", delete_segment, summary="Remove a segment (admins)", auth=Auth.admin),
    endpoint("GET", "/segments/{id:int}/contacts", segment_contacts, summary="The segment's contacts, newest first",
             query=MemberPageQuery, response=sc.ContactPage),
    endpoint("GET", "/segments/{id:int}/export.csv", export_segment, summary="The segment's contacts as CSV"),
    endpoint("GET", "/contacts/{id:int}/segments", contact_segments, summary="The segments the contact is in",
             response=ContactSegmentList),
    endpoint("GET", "/data/names", data_names, summary="Every event and property name seen: type, count, last seen",
             response=DataNameList),
]
