"""SQLModel tables, one module per aggregate. Importing this registers them all."""

from .channel import ChannelInstance, JobState, OutboundJob, UsedLinkToken
from .contact import Contact, ContactIdentity, ContactMerge, Event, IdentityKind
from .conversation import (
    AuthorType,
    Channel,
    Conversation,
    DeliveryState,
    Direction,
    Kind,
    Message,
    Status,
)
from .operator import Availability, Operator, OperatorSession, Role

__all__ = [
    "AuthorType", "Availability", "Channel", "ChannelInstance", "JobState", "OutboundJob", "UsedLinkToken", "Contact", "ContactIdentity", "ContactMerge",
    "Conversation", "DeliveryState", "Direction", "Event", "IdentityKind", "Kind", "Message",
    "Operator", "OperatorSession", "Role", "Status",
]
