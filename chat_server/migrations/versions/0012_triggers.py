"""triggers: the trigger definitions, their sends, and the site's daily cap and zone

Revision ID: 0012_triggers
Revises: 0011_behaviour
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import chat_server.models.ids
import chat_server.models.types

revision: str = "0012_triggers"
down_revision: str | None = "0011_behaviour"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = chat_server.models.ids.Int64
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = chat_server.models.types.UTCDateTime(timezone=True)


def text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "trigger",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", text(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("deleted_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "trigger_send",
        sa.Column("id", ID, nullable=False),
        sa.Column("trigger_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("occurrence", text(200), nullable=False),
        sa.Column("variant", text(50), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("matched_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("lease_owner", text(100), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("read_at", WHEN, nullable=True),
        sa.Column("clicked_at", WHEN, nullable=True),
        sa.Column("replied_at", WHEN, nullable=True),
        sa.Column("unsubscribed_at", WHEN, nullable=True),
        sa.Column("goal_at", WHEN, nullable=True),
        sa.Column("revenue", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["trigger_id"], ["trigger.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trigger_id", "contact_id", "occurrence", name="uq_trigger_send_occurrence"),
    )
    op.create_index("ix_trigger_send_due", "trigger_send", ["state", "due_at"])
    op.create_index("ix_trigger_send_trigger_matched", "trigger_send", ["trigger_id", "matched_at"])
    op.create_index("ix_trigger_send_message", "trigger_send", ["message_id"])
    op.create_index("ix_trigger_send_contact", "trigger_send", ["contact_id"])
    with op.batch_alter_table("site_settings") as batch:
        batch.add_column(sa.Column("auto_messages_per_day", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("timezone", text(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    with op.batch_alter_table("site_settings") as batch:
        batch.drop_column("timezone")
        batch.drop_column("auto_messages_per_day")
    op.drop_index("ix_trigger_send_contact", table_name="trigger_send")
    op.drop_index("ix_trigger_send_message", table_name="trigger_send")
    op.drop_index("ix_trigger_send_trigger_matched", table_name="trigger_send")
    op.drop_index("ix_trigger_send_due", table_name="trigger_send")
    op.drop_table("trigger_send")
    op.drop_table("trigger")
