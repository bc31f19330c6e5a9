"""channel reliability: the parts of a multi-part reply that already left; blocked channels

Revision ID: 0009_channel_reliability
Revises: 0008_visitor_token_version
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_channel_reliability"
down_revision: str | None = "0008_visitor_token_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("outbound_job") as batch:
        batch.add_column(sa.Column("parts", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("contact_identity") as batch:
        batch.add_column(sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_identity") as batch:
        batch.drop_column("state")
    with op.batch_alter_table("outbound_job") as batch:
        batch.drop_column("parts")
