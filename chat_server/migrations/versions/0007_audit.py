"""personal data: an audit record of exports and deletions

Revision ID: 0007_audit
Revises: 0006_operator_language
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import chat_server.models.ids
import chat_server.models.types

revision: str = "0007_audit"
down_revision: str | None = "0006_operator_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", chat_server.models.ids.Int64, nullable=False),
        sa.Column("at", chat_server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("operator_id", chat_server.models.ids.Int64, nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("subject_id", chat_server.models.ids.Int64, nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["operator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_record_at"), "audit_record", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_record_at"), table_name="audit_record")
    op.drop_table("audit_record")
