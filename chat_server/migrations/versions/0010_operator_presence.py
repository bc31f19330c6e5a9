"""operator presence: availability on login, and when an inbox of theirs was last open

Revision ID: 0010_operator_presence
Revises: 0009_channel_reliability
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import chat_server.models.types

revision: str = "0010_operator_presence"
down_revision: str | None = "0009_channel_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operator") as batch:
        batch.add_column(sa.Column("availability_on_login", sqlmodel.sql.sqltypes.AutoString(length=10),
                                   nullable=False, server_default="online"))
        batch.add_column(sa.Column("inbox_seen_at", chat_server.models.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operator") as batch:
        batch.drop_column("inbox_seen_at")
        batch.drop_column("availability_on_login")
