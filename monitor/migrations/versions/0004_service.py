"""The background service: shared scheduling, leases, workers, source health, publication times.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("next_check_at", _When, nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_until", _When, nullable=True))
        batch.add_column(sa.Column("health", sa.String(), server_default="ok", nullable=False))
        batch.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("health_since", _When, nullable=True))
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("published_at", _When, nullable=True))
    op.create_table(
        "health_events",
        sa.Column("id", _Id, nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("at", _When, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_health_events"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name="fk_health_events_source_id"),
    )
    op.create_index("ix_health_events_source_at", "health_events", ["source_id", "at"])
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("change_id", existing_type=_Id, nullable=True)
        # A health alert is about no change, so it has no change class either.
        batch.alter_column("change_class", existing_type=sa.String(), nullable=True)
        batch.add_column(sa.Column("health_event_id", _Id, nullable=True))
        batch.create_foreign_key("fk_alerts_health_event_id", "health_events", ["health_event_id"], ["id"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _When, nullable=False),
        sa.Column("heartbeat_at", _When, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("sources", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )


def downgrade() -> None:
    op.drop_table("workers")
    # Health alerts (and the failure reports about them) cannot be kept without their events.
    op.execute("DELETE FROM alerts WHERE health_event_id IS NOT NULL")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("fk_alerts_health_event_id", type_="foreignkey")
        batch.drop_column("health_event_id")
        batch.alter_column("change_class", existing_type=sa.String(), nullable=False)
        batch.alter_column("change_id", existing_type=_Id, nullable=False)
    op.drop_index("ix_health_events_source_at", table_name="health_events")
    op.drop_table("health_events")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("published_at")
    with op.batch_alter_table("sources") as batch:
        for column in (
            "health_since",
            "health_reason",
            "health",
            "lease_until",
            "lease_owner",
            "next_check_at",
        ):
            batch.drop_column(column)
