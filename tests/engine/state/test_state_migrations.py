"""The packaged Alembic migrations: open_store brings any database to head, repeatably."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, text

from ticketbridge.engine.state import LedgerRow
from ticketbridge.engine.state.db import alembic_config, create_state_engine
from ticketbridge.engine.state.sql import open_store
from ticketbridge.engine.state.tables import metadata
from ticketbridge.errors import StateError
from ticketbridge.supplier import reservations_metadata

TABLES = {"runs", "leases", "checkpoints", "ledger", "dead_letters", "pass_installs"}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_open_store_creates_the_schema_and_reopening_keeps_the_data(db_url: str) -> None:
    store = open_store(db_url)
    lease = store.acquire_lease("s", "h", 60)
    assert lease is not None
    run_id = store.start_run("s", "run", lease)
    store.commit_batch(lease, run_id, ledger=[LedgerRow("k", {"booking": "h"})])
    store.close()

    again = open_store(db_url)
    try:
        assert again.count_ledger("s") == 1
        assert _revision(again.engine) == _head()
    finally:
        again.close()


def test_a_database_at_base_is_upgraded_to_head(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert TABLES.isdisjoint(inspect(store.engine).get_table_names())
    assert _revision(store.engine) is None
    store.close()

    upgraded = open_store(db_url)
    try:
        assert set(inspect(upgraded.engine).get_table_names()) >= TABLES
        assert _revision(upgraded.engine) == _head()
        assert upgraded.acquire_lease("s", "h", 60) is not None
    finally:
        upgraded.close()


def test_migrations_build_exactly_the_schema_tables_py_describes(db_url: str) -> None:
    open_store(db_url).close()
    engine = create_state_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            # The state tables and the Supplier API's reservation tables share one database
            # and one migration history.
            combined = MetaData()
            for source in (metadata, reservations_metadata):
                for table in source.tables.values():
                    table.to_metadata(combined)
            diff = compare_metadata(context, combined)
    finally:
        engine.dispose()
    assert diff == []


def test_migrations_ship_inside_the_package() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert _head() == "0004_console_sessions"
    assert [rev.revision for rev in script.walk_revisions()] == [
        "0004_console_sessions",
        "0003_console",
        "0003_pass_installs",
        "0002",
        "0001",
    ]
    assert script.dir.rstrip("/").endswith("ticketbridge/engine/state/migrations")


def test_a_database_from_a_newer_version_is_refused_clearly(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()

    with pytest.raises(StateError, match="cannot migrate"):
        open_store(db_url)
