"""Alembic environment: runs the migrations on the connection that ``monitor.store`` hands over.

It configures no logging and needs no ``alembic.ini``: ``monitor.store.upgrade()`` (and
``Store.open()``) build the configuration, open the transaction and pass the connection in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the monitor's migrations through monitor.store.upgrade(), which supplies the connection"
    )

context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
