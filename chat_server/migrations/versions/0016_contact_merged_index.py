"""contact: an index on merged_into_id, so finding the cards merged into a contact (whose
unsubscriptions still hold, read before every automatic message) is not a scan of all contacts

Revision ID: 0016_contact_merged_index
Revises: 0015_triggers
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_contact_merged_index"
down_revision: str | None = "0015_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contact_merged_into_id", "contact", ["merged_into_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_merged_into_id", table_name="contact")
