"""visitor tokens can be revoked: a version per visitor identity, carried in its tokens

Revision ID: 0008_visitor_token_version
Revises: 0007_audit
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_visitor_token_version"
down_revision: str | None = "0007_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_identity") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("contact_identity") as batch:
        batch.drop_column("token_version")
