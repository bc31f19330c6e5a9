"""REST for the site's backend and the widget's page-exit beacon: events (`/track`), property
operations (`/identify`), with API keys; the admin's own property operations on a card."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, RootModel, model_validator

from ..actions.errors import ActionError
from ..actions.identify import check_identity
from ..actions.properties import check_operations, do_change_properties
from ..actions.tracking import MAX_BATCH, TrackItem, check_track_item, do_track, resolve_contacts
from ..behaviour.filters import Storable
from ..models.ids import RowId
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint, error, visitor_contact

# A batch of 1,000 events is larger than the other endpoints' bodies.
TRACK_BODY_BYTES = 8 * 1024 * 1024
BEACON_EVENTS = 20

UserId = Annotated[str, Field(min_length=1, max_length=200), Storable]
Email = Annotated[str, Field(min_length=3, max_length=320), Storable]
ContactId = RowId


class Addressed(sc.Body):
    """The contact: by the site's `user_id` (created when unknown), `email` or contact id."""

    user_id: UserId | None = None
    email: Email | None = None
    contact_id: ContactId | None = None

    @model_validator(mode="after")
    def _one_address(self) -> Addressed:
        given = [v for v in (self.user_id, self.email, self.contact_id) if v is not None]
        if len(given) != 1:
            raise ValueError("address the contact by exactly one of user_id, email, contact_id")
        return self


class TrackEvent(Addressed):
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    properties: dict[str, Any] = Field(default_factory=dict)
    url: Annotated[str, Field(max_length=2000), Storable] | None = None
    occurred_at: AwareDatetime | None = None
    event_id: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None


class TrackBatch(sc.Body):
    events: Annotated[list[TrackEvent], Field(min_length=1, max_length=MAX_BATCH)]


class TrackBody(RootModel[TrackBatch | TrackEvent]):
    """One event, or {"events": [...]} with up to 1,000."""


class TrackResult(BaseModel):
    stored: int
    duplicates: int
    ids: list[int | None]


class IdentifyBody(Addressed):
    name: Annotated[str, Field(max_length=200), Storable] | None = None
    new_email: Email | None = None
    phone: Annotated[str, Field(max_length=50), Storable] | None = None
    properties: Annotated[dict[str, Any], Field(max_length=100)] = Field(default_factory=dict)
    operations: Annotated[list[dict[str, Any]], Field(max_length=100)] = Field(default_factory=list)


class OperationsBody(sc.Body):
    operations: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=100)]


class BeaconEvent(sc.Body):
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    properties: dict[str, Any] = Field(default_factory=dict)
    url: Annotated[str, Field(max_length=2000), Storable] | None = None


class BeaconBody(sc.Body):
    token: Annotated[str, Field(min_length=1, max_length=500)]
    events: Annotated[list[BeaconEvent], Field(min_length=1, max_length=BEACON_EVENTS)]


def address(a: Addressed) -> tuple[str, Any]:
    if a.contact_id is not None:
        return ("contact_id", a.contact_id)
    if a.email is not None:
        return ("email", a.email)
    return ("user_id", a.user_id)

async def track(c: Call[TrackBody, None]) -> Any:
    body: TrackBody = c.body
    events = body.root.events if isinstance(body.root, TrackBatch) else [body.root]
    items = [TrackItem(0, e.name, e.properties, e.url, e.occurred_at, e.event_id) for e in events]
    for n, item in enumerate(items):  # every event checked before anything is stored
        try:
            check_track_item(item)
        except ActionError as exc:
            raise ActionError(exc.code, f"event {n + 1}: {exc.message}") from exc
    for item, contact_id in zip(items, await resolve_contacts(c.rt, [address(e) for e in events]), strict=True):
        item.contact_id = contact_id
    ids = await do_track(c.rt, items)
    return TrackResult(stored=sum(1 for i in ids if i is not None), duplicates=sum(1 for i in ids if i is None), ids=ids)

async def identify(c: Call[IdentifyBody, None]) -> dict[str, Any]:
    b: IdentifyBody = c.body
    check_identity(None, b.new_email, b.name, b.phone, b.properties)
    operations = check_operations(b.operations, b.properties)
    (contact_id,) = await resolve_contacts(c.rt, [address(b)])
    contact = await do_change_properties(c.rt, contact_id, list(operations), name=b.name, email=b.new_email,
                                         phone=b.phone)
    return {"contact_id": contact.id, "properties": contact.properties}

async def change_properties(c: Call[OperationsBody, None]) -> dict[str, Any]:
    contact = await do_change_properties(c.rt, c.path_int("id"), c.body.operations, actor=c.me)
    return {"contact_id": contact.id, "properties": contact.properties}

async def beacon(c: Call[BeaconBody, None]) -> Any:
    body: BeaconBody = c.body
    contact_id = await visitor_contact(c.rt, body.token)
    if contact_id is None:
        return error(401, "unauthorized", "the visitor token is not valid")
    ids = await do_track(c.rt, [TrackItem(contact_id, e.name, e.properties, e.url) for e in body.events])
    return {"stored": sum(1 for i in ids if i is not None)}


routes: list[Operation] = [
    endpoint("POST", "/track", track,
             summary="Events from the site's backend (API key): one, or up to 1,000 in 'events'",
             body=TrackBody, response=TrackResult, auth=Auth.api_key, max_body=TRACK_BODY_BYTES),
    endpoint("POST", "/identify", identify,
             summary="Card fields and property operations from the site's backend (API key)",
             body=IdentifyBody, auth=Auth.api_key),
    endpoint("POST", "/contacts/{id:int}/properties", change_properties,
             summary="Change properties by operations (not sales)",
             body=OperationsBody),
    endpoint("POST", "/beacon", beacon,
             summary="The widget's events at page exit (navigator.sendBeacon; the visitor token in the body)",
             body=BeaconBody, auth=Auth.public, status=202),
]
