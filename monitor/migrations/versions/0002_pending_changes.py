"""Held changes: a level change its text does not support waits for the next check.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "pending_changes",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "key", name="pk_pending_changes"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name="fk_pending_changes_source_id"),
    )


def downgrade() -> None:
    op.drop_table("pending_changes")
