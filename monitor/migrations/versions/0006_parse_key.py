"""Parse key: what the last stored body of a source was read with (kind, options, version).

Revision ID: 0006
Revises: 0005

A check whose body is byte for byte the last one, read the same way, needs no parsing: its
records are those already stored. Empty for existing sources: their next body is parsed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("parse_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("parse_key")
