"""channel state: when each bot, community or mailbox last brought an update, last reached its
service, and the last error it met

Revision ID: 0012_channel_state
Revises: 0011_behaviour
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import chat_server.models.types

revision: str = "0012_channel_state"
down_revision: str | None = "0011_behaviour"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel_instance") as batch:
        batch.add_column(sa.Column("last_update_at", chat_server.models.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_ok_at", chat_server.models.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
        batch.add_column(sa.Column("last_error_at", chat_server.models.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_instance") as batch:
        batch.drop_column("last_error_at")
        batch.drop_column("last_error")
        batch.drop_column("last_ok_at")
        batch.drop_column("last_update_at")
