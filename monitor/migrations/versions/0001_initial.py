"""Initial schema: sources, the check log, content-addressed bodies and contents, snapshots, changes.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HASH = sa.String(64)


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target], name=f"fk_{table}_{column}")


def upgrade() -> None:
    _create_sources()
    _create_checks()
    _create_bodies_and_contents()
    _create_snapshots()
    _create_changes()


def downgrade() -> None:
    for table in ("changes", "snapshots", "contents", "bodies", "checks", "sources"):
        op.drop_table(table)


def _create_sources() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        _when("created_at"),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.String(), nullable=True),
        sa.Column("body_hash", HASH, nullable=True),
        _when("last_check_at", nullable=True),
        sa.Column("last_outcome", sa.String(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        _when("last_success_at", nullable=True),
        _when("last_change_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
    )


def _create_checks() -> None:
    op.create_table(
        "checks",
        sa.Column("id", ID, nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        _when("started_at"),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_checks"),
        _fk("checks", "source_id", "sources.id"),
    )
    op.create_index("ix_checks_source_started", "checks", ["source_id", "started_at"])


def _create_bodies_and_contents() -> None:
    op.create_table(
        "bodies",
        sa.Column("hash", HASH, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_bodies"),
    )
    op.create_table(
        "contents",
        sa.Column("hash", HASH, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_contents"),
    )


def _create_snapshots() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("content_hash", HASH, nullable=False),
        sa.Column("body_hash", HASH, nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        _when("taken_at"),
        sa.Column("check_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        _fk("snapshots", "source_id", "sources.id"),
        _fk("snapshots", "content_hash", "contents.hash"),
        _fk("snapshots", "body_hash", "bodies.hash"),
        _fk("snapshots", "check_id", "checks.id"),
    )
    op.create_index("ix_snapshots_latest", "snapshots", ["source_id", "key", "id"])


def _create_changes() -> None:
    op.create_table(
        "changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("previous_snapshot_id", ID, nullable=True),
        sa.Column("snapshot_id", ID, nullable=False),
        _when("detected_at"),
        sa.Column("change_class", sa.String(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("level_before", sa.Integer(), nullable=True),
        sa.Column("level_after", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
        _fk("changes", "source_id", "sources.id"),
        _fk("changes", "previous_snapshot_id", "snapshots.id"),
        _fk("changes", "snapshot_id", "snapshots.id"),
    )
    op.create_index("ix_changes_source_detected", "changes", ["source_id", "detected_at"])
    op.create_index("ix_changes_detected", "changes", ["detected_at"])
