"""inbox: saved replies; system lines say what they record

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import chat_server.models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcut", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=10000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", chat_server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", chat_server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_saved_reply_shortcut"), "saved_reply", ["shortcut"], unique=True)
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("system_event", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("system_event")
    op.drop_index(op.f("ix_saved_reply_shortcut"), table_name="saved_reply")
    op.drop_table("saved_reply")
