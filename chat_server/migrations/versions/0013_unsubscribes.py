"""unsubscribes: contacts who asked for no more automatic messages on a channel

Revision ID: 0013_unsubscribes
Revises: 0011_behaviour
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chat_server.models.ids
import chat_server.models.types

revision: str = "0013_unsubscribes"
down_revision: str | None = "0012_channel_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = chat_server.models.ids.Int64
WHEN = chat_server.models.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "unsubscribe",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id", "channel", name="uq_unsubscribe_contact_channel"),
    )
    op.create_index("ix_unsubscribe_contact_id", "unsubscribe", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_unsubscribe_contact_id", table_name="unsubscribe")
    op.drop_table("unsubscribe")
