"""Request and response bodies of the REST API (also the OpenAPI document's schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..behaviour.filters import Storable
from ..frames import AttachmentIds, ClientMsgId, ConversationView, MessageText, MessageView, OperatorView, OptionalText
from ..models.ids import RowId, SeqNumber

Limit = Annotated[int, Field(ge=1, le=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class LoginResult(BaseModel):
    token: str
    operator: OperatorView


class AvailabilityBody(Body):
    availability: Literal["online", "away"]


InboxLanguage = Annotated[
    Literal["en", "ru"] | None,
    Field(description="the inbox's language for this operator; null follows their browser"),
]


OnLogin = Annotated[
    Literal["online", "last"],
    Field(description="logging in makes you online, or keeps the availability you had when you left"),
]


class MeView(OperatorView):
    """The logged-in operator, with what only they need: their own settings."""

    language: InboxLanguage = None
    availability_on_login: OnLogin = "online"


class MeBody(Body):
    """The operator's own profile settings; a field left out stays as it is."""

    language: InboxLanguage = None
    availability_on_login: OnLogin = "online"


class ReplyBody(Body):
    text: OptionalText = ""
    attachment_ids: AttachmentIds = []
    client_msg_id: ClientMsgId | None = None
    channel: Literal["widget", "telegram", "vk", "email"] | None = None


class NoteBody(Body):
    text: MessageText
    client_msg_id: ClientMsgId | None = None


class AssignBody(Body):
    assignee_id: RowId | None


class StatusBody(Body):
    status: Literal["open", "snoozed", "closed"]
    snoozed_until: datetime | None = None


class TagsBody(Body):
    tags: Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=20)]


class ReadBody(Body):
    seq: SeqNumber


class MergeBody(Body):
    other_contact_id: RowId
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class OperatorCreateBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=8, max_length=1000)]
    role: Literal["admin", "operator", "sales"] = "operator"
    availability_on_login: OnLogin = "online"


class OperatorUpdateBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    role: Literal["admin", "operator", "sales"] | None = None
    is_active: bool | None = None
    password: Annotated[str, Field(min_length=8, max_length=1000)] | None = None


class ConversationQuery(Body):
    status: Literal["open", "snoozed", "closed"] | None = None
    assignee: Literal["me", "none"] | RowId | None = None
    channel: Literal["widget", "telegram", "vk", "email"] | None = None
    tag: Annotated[str, Field(max_length=50), Storable] | None = None
    unread: Literal["true", "false"] | None = None
    q: Annotated[str, Field(max_length=200, description="message text, contact name, email or phone"), Storable] | None = None
    cursor: Annotated[str, Field(max_length=200)] | None = None
    limit: Annotated[str, Field(pattern=r"^[0-9]{1,3}$")] = "50"


class HistoryQuery(Body):
    before_seq: SeqNumber | None = None
    limit: Annotated[str, Field(pattern=r"^[0-9]{1,3}$")] = "50"


class ContactQuery(Body):
    q: Annotated[str, Field(max_length=200), Storable] | None = None
    cursor: RowId | None = None
    limit: Annotated[str, Field(pattern=r"^[0-9]{1,3}$")] = "50"


class ConversationPage(BaseModel):
    items: list[ConversationView]
    next_cursor: str | None


class UnreadCounts(BaseModel):
    """Open conversations with unread messages, per inbox tab."""

    open: int
    mine: int
    unassigned: int


class MessagePage(BaseModel):
    items: list[MessageView]
    next_before_seq: int | None


class SentMessage(BaseModel):
    message: MessageView
    duplicate: bool


class IdentityView(BaseModel):
    kind: str
    value: str
    linked_reason: str
    created_at: datetime
    state: str | None = None  # "blocked": the person blocked us on this channel


class EventView(BaseModel):
    id: int
    name: str
    properties: dict[str, Any]
    url: str | None
    occurred_at: datetime


class MergeView(BaseModel):
    id: int
    merged_id: int
    reason: str
    identity_kind: str | None
    identity_value: str | None
    operator_id: int | None
    created_at: datetime


class ContactView(BaseModel):
    id: int
    name: str | None
    email: str | None
    phone: str | None
    properties: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    first_referrer: str | None
    first_landing_page: str | None
    first_utm: dict[str, str]
    sessions: int
    score: int


class ContactCard(BaseModel):
    contact: ContactView
    identities: list[IdentityView]
    conversation: ConversationView | None
    events: list[EventView]
    merges: list[MergeView]


class ContactPage(BaseModel):
    items: list[ContactView]
    next_cursor: str | None


class OperatorList(BaseModel):
    items: list[OperatorView]


def limit_of(raw: str) -> int:
    return max(1, min(200, int(raw)))
