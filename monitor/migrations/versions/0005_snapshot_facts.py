"""Snapshot facts: each snapshot's country and the small fields a history shows, beside it.

Revision ID: 0005
Revises: 0004

Existing snapshots are filled in from their stored content, a batch at a time.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from monitor.facts import facts_of

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("country", sa.String(), nullable=True))
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=True))
    op.create_index("ix_snapshots_country", "snapshots", ["country"])
    _fill_existing(op.get_bind())


def _fill_existing(conn: sa.Connection) -> None:
    snapshots = sa.table(
        "snapshots",
        sa.column("id", sa.Integer),
        sa.column("content_hash", sa.String),
        sa.column("country", sa.String),
        sa.column("facts", sa.JSON),
    )
    contents = sa.table("contents", sa.column("hash", sa.String), sa.column("text", sa.Text))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(snapshots.c.id, contents.c.text)
            .join(contents, contents.c.hash == snapshots.c.content_hash)
            .where(snapshots.c.id > last)
            .order_by(snapshots.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for id_, text in rows:
            record = json.loads(text)
            updates.append({"row_id": id_, "country": record.get("country"), "facts": facts_of(record)})
        conn.execute(
            snapshots.update()
            .where(snapshots.c.id == sa.bindparam("row_id"))
            .values(country=sa.bindparam("country"), facts=sa.bindparam("facts")),
            updates,
        )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_snapshots_country", table_name="snapshots")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("facts")
        batch.drop_column("country")
