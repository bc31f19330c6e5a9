"""Lead scoring: the rules, each point a rule gave (breakdown and history), and the grade grid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class ScoringRule(SQLModel, table=True):
    __tablename__ = "scoring_rule"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str = Field(max_length=200)
    # behaviour.scoring.RuleDefinition as JSON: the event (with conditions) or the property
    # condition, the points, and how often / how long they count.
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    preset: str | None = Field(default=None, max_length=50)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ScoreEntry(SQLModel, table=True):
    """Points one rule gave one contact: the history, and (summed per rule, unexpired) the
    breakdown. A property rule that stops holding writes the opposite entry."""

    __tablename__ = "score_entry"
    __table_args__ = (Index("ix_score_entry_contact_rule", "contact_id", "rule_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", sa_type=Int64)
    rule_id: int = Field(foreign_key="scoring_rule.id", sa_type=Int64)
    points: int
    event_id: int | None = Field(default=None, sa_type=Int64)
    reason: str = Field(default="", max_length=300)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Decay: after this the points no longer count (the entry stays in the history).
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))


class Grading(SQLModel, table=True):
    """The A1…E4 grid: profile fit A–E from property rules × engagement 1–4 from score
    thresholds. One row; no row or `enabled` false: contacts have no grade."""

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    enabled: bool = False
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
