"""behaviour: segments and their members, lead scoring, API keys, the data names; event ids

Revision ID: 0011_behaviour
Revises: 0010_operator_presence
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import chat_server.models.ids
import chat_server.models.types

revision: str = "0011_behaviour"
down_revision: str | None = "0010_operator_presence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = chat_server.models.ids.Int64
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = chat_server.models.types.UTCDateTime(timezone=True)


def text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "data_name",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", text(10), nullable=False),
        sa.Column("name", text(200), nullable=False),
        sa.Column("type", text(10), nullable=False),
        sa.Column("count", ID, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "name", name="uq_data_name_kind_name"),
    )
    op.create_table(
        "grading",
        sa.Column("id", ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "scoring_rule",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", text(200), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("preset", text(50), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_key",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", text(200), nullable=False),
        sa.Column("prefix", text(20), nullable=False),
        sa.Column("key_hash", text(64), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_used_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "score_entry",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("rule_id", ID, nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("event_id", ID, nullable=True),
        sa.Column("reason", text(300), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["rule_id"], ["scoring_rule.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_score_entry_contact_rule", "score_entry", ["contact_id", "rule_id"])
    op.create_index("ix_score_entry_expires_at", "score_entry", ["expires_at"])
    op.create_table(
        "segment",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", text(200), nullable=False),
        sa.Column("description", text(1000), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("preset", text(50), nullable=True),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "segment_membership",
        sa.Column("id", ID, nullable=False),
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("entered_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["segment_id"], ["segment.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("segment_id", "contact_id", name="uq_segment_membership"),
    )
    op.create_index("ix_segment_membership_contact", "segment_membership", ["contact_id"])
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("grade", text(2), nullable=True))
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("external_id", text(200), nullable=True))
        batch.create_unique_constraint("uq_event_external_id", ["external_id"])
    op.create_index("ix_event_contact_name_time", "event", ["contact_id", "name", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_event_contact_name_time", table_name="event")
    with op.batch_alter_table("event") as batch:
        batch.drop_constraint("uq_event_external_id", type_="unique")
        batch.drop_column("external_id")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("grade")
    op.drop_index("ix_segment_membership_contact", table_name="segment_membership")
    op.drop_table("segment_membership")
    op.drop_table("segment")
    op.drop_index("ix_score_entry_expires_at", table_name="score_entry")
    op.drop_index("ix_score_entry_contact_rule", table_name="score_entry")
    op.drop_table("score_entry")
    op.drop_table("api_key")
    op.drop_table("scoring_rule")
    op.drop_table("grading")
    op.drop_table("data_name")
