"""64-bit ids: every key, every reference to one and every sequence number is BIGINT

PostgreSQL only: SQLite's INTEGER is 64-bit already (and INTEGER PRIMARY KEY must stay as it
is to remain the rowid), so there this revision changes nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its integer columns that hold a row id or a place in a thread
COLUMNS: dict[str, list[str]] = {
    "contact": ["id", "merged_into_id"],
    "operator": ["id"],
    "operator_session": ["operator_id"],
    "contact_identity": ["id", "contact_id"],
    "contact_merge": ["id", "survivor_id", "merged_id", "operator_id"],
    "event": ["id", "contact_id"],
    "conversation": ["id", "contact_id", "assignee_id", "last_seq", "last_public_seq", "last_inbound_seq",
                     "operator_read_seq", "operator_read_public_seq", "contact_read_public_seq"],
    "message": ["id", "conversation_id", "seq", "public_seq", "author_id", "channel_instance_id"],
    "attachment": ["id", "contact_id", "operator_id", "conversation_id"],
    "site_settings": ["id"],
    "channel_instance": ["id"],
    "outbound_job": ["id", "message_id", "instance_id"],
    "used_link_token": ["contact_id"],
    "saved_reply": ["id", "created_by_id"],
}


def _retype(column_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        # One statement per table: PostgreSQL rewrites the table (and its indexes) once, not once
        # per column. It holds the table's lock meanwhile: on a large database, run
        # `chat-server migrate` in a quiet hour.
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE {column_type}' for c in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')
        if "id" in columns:
            # SERIAL made the id's sequence `AS integer`: it would stop at 2^31-1 whatever the column.
            sequence = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                             {"t": f'"{table}"'}).scalar_one()
            op.execute(f"ALTER SEQUENCE {sequence} AS {column_type}")


def upgrade() -> None:
    _retype("BIGINT")


def downgrade() -> None:
    _retype("INTEGER")
