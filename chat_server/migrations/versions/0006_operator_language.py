"""operator language: the inbox's language per operator (null: follow the browser)

Revision ID: 0006_operator_language
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_operator_language"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operator") as batch:
        batch.add_column(sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operator") as batch:
        batch.drop_column("language")
