"""SQLModel tables, one module per aggregate. Importing this registers them all."""

from .api_key import ApiKey
from .attachment import Attachment
from .audit import AuditRecord
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
from .data_name import DataName
from .operator import Availability, AvailabilityOnLogin, Operator, OperatorSession, Role
from .saved_reply import SavedReply
from .scoring import Grading, ScoreEntry, ScoringRule
from .segment import Segment, SegmentMembership
from .site import SiteSettings
from .trigger import Trigger, TriggerSend

__all__ = [
    "ApiKey", "Attachment", "AuditRecord", "AuthorType", "Availability", "AvailabilityOnLogin", "Channel",
    "ChannelInstance", "Contact", "ContactIdentity", "DataName", "Grading", "ScoreEntry", "ScoringRule", "Segment",
    "SegmentMembership",
    "ContactMerge", "JobState", "OutboundJob", "UsedLinkToken",
    "Conversation", "DeliveryState", "Direction", "Event", "IdentityKind", "Kind", "Message",
    "Operator", "OperatorSession", "Role", "SavedReply", "SiteSettings", "Status",
    "Trigger", "TriggerSend",
]
