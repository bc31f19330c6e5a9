"""What was done to personal data, by whom and when, and deliberately not what it was."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    # The operator who did it; kept even if their account is later deactivated.
    operator_id: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    action: str = Field(max_length=50)  # "contact_exported", "contact_deleted"
    # The contact's number only: the record must not keep what was deleted.
    subject_id: int | None = Field(default=None, sa_type=Int64)
    rows: int = 0  # how much went (deletion) or was handed over (export)
