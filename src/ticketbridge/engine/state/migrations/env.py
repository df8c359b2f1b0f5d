"""Alembic environment for the state store; run only through ``sql.migrate`` (programmatic).

ticketbridge ships no alembic.ini: :func:`ticketbridge.engine.state.sql.migrate` builds the
Alembic ``Config`` in code and hands over an open connection (already inside a transaction that
serialises concurrent migrators) through ``config.attributes["connection"]``.

The target metadata matters only to ``alembic revision --autogenerate``. It defaults to the
state store's tables; a developer adding a revision for the Supplier API's reservations passes
both (``config.attributes["target_metadata"] = [metadata, supplier.reservations.metadata]``):
the engine never imports the supplier, which is built on top of it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ticketbridge.engine.state.tables import metadata


def run_migrations_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        # One database, one history: the Supplier API's reservations live beside the state.
        target_metadata=context.config.attributes.get("target_metadata", metadata),
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("ticketbridge migrations run online only (through open_store)")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "ticketbridge migrations need a connection in config.attributes['connection']; "
            "use ticketbridge.engine.state.sql.migrate()"
        )
    run_migrations_online(connection)


main()
