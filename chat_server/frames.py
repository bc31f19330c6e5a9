"""Every real-time frame, one pydantic model each, `type` as a Literal.

docs/protocol.md is written from these models; tests validate each published frame
against them. Client frames are strict: unknown fields and wrong types are errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from .models import Availability, Channel, DeliveryState, Kind, Status
from .models.ids import MAX_ROW_ID, RowId, SeqNumber
from .models.types import unstorable

ClientMsgId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]


def _row_id_text(value: str) -> str:
    if int(value) > MAX_ROW_ID:
        raise ValueError(f"ids are at most {MAX_ROW_ID}")
    return value


# A row id as a JSON object key (a string there).
IdKey = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,18}$"), AfterValidator(_row_id_text)]
MessageText = Annotated[str, Field(min_length=1, max_length=10_000)]
OptionalText = Annotated[str, Field(max_length=10_000)]
AttachmentIds = Annotated[list[RowId], Field(max_length=10)]


class ClientFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _storable(self) -> ClientFrame:
        # Every text a client sends may end up in the database: NUL is refused here, for all.
        if (found := unstorable(self)) is not None:
            where, why = found
            raise ValueError(f"{'.'.join(where)} {why}")
        return self


class ServerFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- shared views -------------------------------------------------------------------------


class Author(BaseModel):
    type: Literal["contact", "operator", "bot", "system"]
    id: int | None = None
    name: str | None = None


class Attachment(BaseModel):
    url: str
    name: str
    content_type: str
    size: int


class MessageView(BaseModel):
    """A message as operators see it."""

    id: int
    conversation_id: int
    seq: int
    public_seq: int | None
    channel: Channel
    direction: Literal["inbound", "outbound", "internal"]
    kind: Kind
    author: Author
    text: str
    attachments: list[dict[str, Any]]
    client_msg_id: str | None
    delivery_state: DeliveryState
    delivery_error: str | None
    created_at: datetime
    updated_at: datetime
    display: Literal["chat", "card"] | None = None


class LeadForm(BaseModel):
    field: Literal["email", "phone"]
    button: str


class VisitorMessageView(BaseModel):
    """A message as the contact sees it: their own numbering, nothing internal."""

    id: int
    seq: int
    channel: Channel
    direction: Literal["inbound", "outbound"]
    kind: Literal["text", "automatic"]
    author: Author
    text: str
    attachments: list[dict[str, Any]]
    client_msg_id: str | None
    delivery_state: DeliveryState
    created_at: datetime
    # Proactive (automatic) messages: "chat" opens the conversation, "card" shows a popup card.
    display: Literal["chat", "card"] | None = None
    # A popup card's lead-capture form: {"field": "email" | "phone", "button": "Send"}.
    form: LeadForm | None = None


class ContactSummary(BaseModel):
    id: int
    name: str | None
    email: str | None
    phone: str | None


class MessagePreview(BaseModel):
    """The inbox list's line about a conversation: its last message that is not a system line."""

    seq: int
    text: str  # the first line, cut to PREVIEW_LENGTH characters
    kind: Kind
    direction: Literal["inbound", "outbound", "internal"]
    author: Author
    created_at: datetime
    attachments: int  # how many files it carries


PREVIEW_LENGTH = 140


class ConversationView(BaseModel):
    id: int
    contact: ContactSummary
    status: Status
    snoozed_until: datetime | None
    assignee_id: int | None
    tags: list[str]
    last_activity_at: datetime
    last_seq: int
    last_inbound_seq: int
    operator_read_seq: int
    contact_read_seq: int
    last_inbound_channel: Channel | None
    unread: bool
    epoch: int
    # For the inbox list: inbound messages after operator_read_seq, the last message that is
    # not a system line, and when the oldest inbound message no operator reply has answered
    # yet was written (null when the last word is the team's).
    unread_count: int
    last_message: MessagePreview | None
    waiting_since: datetime | None


class VisitorConversationView(BaseModel):
    id: int | None
    last_seq: int
    operator_read_seq: int
    contact_read_seq: int
    epoch: int


class OperatorView(BaseModel):
    id: int
    name: str
    email: str
    role: Literal["admin", "operator", "sales"]
    availability: Availability
    is_active: bool


# --- widget (visitor) socket: client -> server ---------------------------------------------


class PageInfo(ClientFrame):
    url: Annotated[str, Field(max_length=2000)] = ""
    title: Annotated[str, Field(max_length=500)] = ""
    referrer: Annotated[str, Field(max_length=2000)] = ""


class VisitorHello(ClientFrame):
    type: Literal["hello"]
    token: Annotated[str, Field(max_length=500)] | None = None
    last_seq: SeqNumber = 0
    epoch: SeqNumber | None = None
    page: PageInfo | None = None


class VisitorSend(ClientFrame):
    type: Literal["message.send"]
    client_msg_id: ClientMsgId
    # Empty only when the message carries attachments (ids from the upload endpoint).
    text: OptionalText = ""
    attachment_ids: AttachmentIds = []


class VisitorTyping(ClientFrame):
    type: Literal["typing"]
    is_typing: bool


class VisitorReceipt(ClientFrame):
    """The widget tells how far it has shown (delivered) or the visitor has read."""

    type: Literal["receipt"]
    state: Literal["delivered", "read"]
    seq: SeqNumber


class VisitorTrack(ClientFrame):
    type: Literal["track"]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    properties: Annotated[dict[str, Any], Field(max_length=50)] = {}
    url: Annotated[str, Field(max_length=2000)] | None = None


class VisitorIdentify(ClientFrame):
    """The site says who the visitor is (JS `identify`); `user_hash` when the site has a secret."""

    type: Literal["identify"]
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=320)] | None = None
    name: Annotated[str, Field(max_length=200)] | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    properties: Annotated[dict[str, Any], Field(max_length=50)] = {}
    # Property operations (set, set_once, increment, append, union, remove, unset), in order.
    operations: Annotated[list[dict[str, Any]], Field(max_length=100)] = []
    user_hash: Annotated[str, Field(max_length=128)] | None = None


class VisitorLeaveEmail(ClientFrame):
    """No operator is online: the visitor leaves an address to be answered at (unverified)."""

    type: Literal["contact.email"]
    email: Annotated[str, Field(min_length=3, max_length=320)]


class VisitorLeadForm(ClientFrame):
    """The visitor filled in the lead-capture form of a proactive card."""

    type: Literal["form.submit"]
    message_id: RowId
    value: Annotated[str, Field(min_length=1, max_length=320)]


class Ping(ClientFrame):
    type: Literal["ping"]


VisitorClientFrame = Annotated[
    VisitorHello | VisitorSend | VisitorTyping | VisitorReceipt | VisitorTrack | VisitorIdentify
    | VisitorLeaveEmail | Ping | VisitorLeadForm,
    Field(discriminator="type"),
]
visitor_frame_adapter: TypeAdapter[Any] = TypeAdapter(VisitorClientFrame)


# --- inbox (operator) socket: client -> server ---------------------------------------------


class Cursor(ClientFrame):
    seq: SeqNumber
    epoch: SeqNumber = 1


class OperatorHello(ClientFrame):
    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=500)]
    # conversation id (a string: JSON object keys) -> where the inbox is in that thread
    cursors: Annotated[dict[IdKey, Cursor], Field(max_length=1000)] = {}


class OperatorSend(ClientFrame):
    type: Literal["message.send"]
    conversation_id: RowId
    client_msg_id: ClientMsgId
    text: OptionalText = ""
    attachment_ids: AttachmentIds = []
    kind: Literal["text", "note"] = "text"
    channel: Literal["widget", "telegram", "vk", "email"] | None = None


class OperatorTyping(ClientFrame):
    type: Literal["typing"]
    conversation_id: RowId
    is_typing: bool


class OperatorRead(ClientFrame):
    type: Literal["read"]
    conversation_id: RowId
    seq: SeqNumber


class OperatorPresence(ClientFrame):
    type: Literal["presence"]
    availability: Literal["online", "away"]


OperatorClientFrame = Annotated[
    OperatorHello | OperatorSend | OperatorTyping | OperatorRead | OperatorPresence | Ping,
    Field(discriminator="type"),
]
operator_frame_adapter: TypeAdapter[Any] = TypeAdapter(OperatorClientFrame)


# --- server -> client ----------------------------------------------------------------------


class VisitorWelcome(ServerFrame):
    type: Literal["welcome"] = "welcome"
    token: str
    visitor_id: str
    conversation: VisitorConversationView
    operators_online: bool


class TokenFrame(ServerFrame):
    """A fresh visitor token for a socket that stays open while its token ages: keep it instead."""

    type: Literal["token"] = "token"
    token: str


class IdentifiedFrame(ServerFrame):
    """Answer to `identify`: accepted; `merged` when the visitor joined a known contact (a
    `reset` and that contact's thread follow)."""

    type: Literal["identified"] = "identified"
    merged: bool


class EmailSavedFrame(ServerFrame):
    """Answer to `contact.email`."""

    type: Literal["contact.email.saved"] = "contact.email.saved"
    email: str


class LeadFormSavedFrame(ServerFrame):
    """Answer to `form.submit`."""

    type: Literal["form.saved"] = "form.saved"
    message_id: int
    field: Literal["email", "phone"]


class OperatorWelcome(ServerFrame):
    type: Literal["welcome"] = "welcome"
    operator: OperatorView
    operators: list[OperatorView]


class MessageFrame(ServerFrame):
    """A new message; `seq` order per conversation, each exactly once."""

    type: Literal["message"] = "message"
    message: MessageView | VisitorMessageView


class MessageUpdatedFrame(ServerFrame):
    type: Literal["message.updated"] = "message.updated"
    message: MessageView | VisitorMessageView


class AckFrame(ServerFrame):
    """Answer to message.send: stored (again, if `duplicate`), with its place in the thread."""

    type: Literal["ack"] = "ack"
    client_msg_id: str
    message_id: int
    seq: int
    duplicate: bool


class ConversationUpdatedFrame(ServerFrame):
    type: Literal["conversation.updated"] = "conversation.updated"
    conversation: ConversationView


class ConversationRemovedFrame(ServerFrame):
    """The conversation was folded into another by a contact merge, or deleted with its contact
    (`merged_into_conversation_id` null)."""

    type: Literal["conversation.removed"] = "conversation.removed"
    conversation_id: int
    merged_into_conversation_id: int | None


class ResetFrame(ServerFrame):
    """The thread was renumbered (a merge): drop what you hold; history follows from seq 1."""

    type: Literal["reset"] = "reset"
    conversation_id: int | None
    epoch: int


class TypingFrame(ServerFrame):
    type: Literal["typing"] = "typing"
    conversation_id: int | None = None
    author: Author
    is_typing: bool


class ReceiptFrame(ServerFrame):
    """How far the other side has received or read, in the recipient's numbering."""

    type: Literal["receipt"] = "receipt"
    conversation_id: int | None = None
    reader: Literal["contact", "operator"]
    state: Literal["delivered", "read"]
    seq: int


class PresenceFrame(ServerFrame):
    type: Literal["presence"] = "presence"
    operator_id: int | None = None
    availability: Availability | None = None
    operators_online: bool


class ErrorFrame(ServerFrame):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None  # the client_msg_id or frame type the error answers


class PongFrame(ServerFrame):
    type: Literal["pong"] = "pong"


SERVER_FRAMES: tuple[type[ServerFrame], ...] = (
    VisitorWelcome, TokenFrame, IdentifiedFrame, EmailSavedFrame, OperatorWelcome, MessageFrame, MessageUpdatedFrame, AckFrame,
    ConversationUpdatedFrame, ConversationRemovedFrame, ResetFrame, TypingFrame, ReceiptFrame,
    PresenceFrame, ErrorFrame, PongFrame,
    LeadFormSavedFrame,
)
