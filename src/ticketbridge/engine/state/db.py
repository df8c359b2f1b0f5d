"""Database plumbing of the state store: engines per backend, and the packaged migrations.

* SQLite: WAL, ``busy_timeout``, and ``BEGIN IMMEDIATE`` for write transactions (a connection
  marked with the :data:`WRITE` execution option), so concurrent processes on one file queue
  for the write lock instead of failing halfway through a transaction.
* PostgreSQL through psycopg 3, with custom plans for every statement (see below).
* Migrations: Alembic, driven in code with the script location inside the package; no
  alembic.ini. :func:`migrate` is safe to run from several processes at once. A database
  already at the packaged head is recognised with one plain ``SELECT`` and Alembic is not
  even imported (a fifth of a second of every command's start-up).
"""

from __future__ import annotations

import re
import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ticketbridge.errors import StateError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS",
    "WRITE",
    "alembic_config",
    "create_state_engine",
    "describe_error",
    "migrate",
]

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script location shipped inside the package."""

WRITE = "ticketbridge_write"
"""Connection execution option: this transaction will write (SQLite: ``BEGIN IMMEDIATE``)."""

_PG_MIGRATION_LOCK = 0x74696B62  # pg_advisory_xact_lock key serialising migrators ("tikb")
_SQLITE_BUSY_MS = 30_000


def _json_dumps(value: Any) -> str:
    # Datetimes and dataclasses are refused rather than silently turned into strings/dicts:
    # what goes in must come back out unchanged. StateError, because psycopg calls this itself
    # and lets the exception through unwrapped.
    try:
        return orjson.dumps(
            value, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        ).decode()
    except TypeError as error:
        raise StateError(f"state values must be plain JSON: {error}") from error


_SQLITE_HEADER = b"SQLite format 3\x00"
_NEW_FILE_GRACE_S = 3.0
_OURS = {"runs", "ledger", "checkpoints", "leases", "dead_letters", "alembic_version"}


def refuse_foreign_sqlite_file(url: str) -> None:
    """Only a missing SQLite file is created: an existing one must be a ticketbridge state
    database (or one that is still empty of tables, as SQLite leaves a file it just made).

    A file truncated to 0 bytes, another file, or another application's database would
    otherwise be taken as new: history, ledger, dead letters and checkpoints gone, and every
    record sent again without a word.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.exists():
        return
    advice = (
        "restore it from a backup, or move it away to start a new state (every record is "
        "then sent again)"
    )
    head = _header(path)
    deadline = time.monotonic() + _NEW_FILE_GRACE_S
    while not head and time.monotonic() < deadline:
        # Another process may have just created it (SQLite makes the file empty, then writes
        # its first page at once): a file that stays empty was truncated.
        time.sleep(0.05)
        head = _header(path)
    if not head:
        raise StateError(f"state file {path} is empty (0 bytes), not a state database: {advice}")
    if head != _SQLITE_HEADER:
        raise StateError(f"state file {path} is not a SQLite database: {advice}")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as exc:
        raise StateError(
            f"state file {path} is not a readable SQLite database ({exc}): {advice}"
        ) from None
    if tables and not tables & _OURS:
        shown = ", ".join(sorted(tables)[:5])
        raise StateError(
            f"state file {path} is another application's database (tables: {shown}): point "
            "TICKETBRIDGE_DATABASE_URL elsewhere, or move the file away"
        )


def _header(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StateError(f"state file {path} cannot be read: {exc.strerror or exc}") from None


def create_state_engine(url: str) -> Engine:
    """An engine configured for the state store: SQLite pragmas and BEGIN IMMEDIATE, or psycopg.

    ``postgresql://`` is read as ``postgresql+psycopg://`` (psycopg 3 is the installed driver).
    An in-memory SQLite URL gets one shared connection (and the store serialises access to it),
    since every pooled ``:memory:`` connection would otherwise see its own empty database.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    json_args: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if backend == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True, **json_args)
        _install_postgresql_hooks(engine)
        return engine
    if backend != "sqlite":
        raise StateError(
            f"unsupported state database {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite:///path or postgresql+psycopg://..."
        )
    if parsed.database in (None, "", ":memory:"):
        engine = create_engine(
            parsed,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **json_args,
        )
    else:
        engine = create_engine(
            parsed, connect_args={"timeout": _SQLITE_BUSY_MS / 1000}, **json_args
        )
    _install_sqlite_hooks(engine)
    return engine


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

    The switch needs an exclusive lock, and SQLite may answer "database is locked" at once
    without calling the busy handler (seen when several processes open a brand-new file
    together, e.g. two runs started at the same moment on a new project).
    """
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _install_sqlite_hooks(engine: Engine) -> None:
    """The pysqlite recipe from SQLAlchemy's docs: we emit BEGIN ourselves.

    sqlite3's own transaction handling starts transactions lazily (at the first write), which
    lets two processes both read under a shared lock and then deadlock upgrading to a write lock
    (SQLITE_BUSY immediately, busy_timeout does not help). ``BEGIN IMMEDIATE`` takes the write
    lock at the start instead, and waits for it.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
            _switch_to_wal(cursor)
            # NORMAL is durable across application crashes in WAL mode; FULL only adds
            # protection against power loss at a large cost per commit.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = bool(conn.get_execution_options().get(WRITE, False))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _install_postgresql_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares a statement after 5 runs, and PostgreSQL then tends to keep a
        # generic plan made while the ledger was small (a sequential scan): get_ledger went
        # 100x slower as a first big run filled the table. Custom plans follow the table's
        # real size; statements stay prepared, so parsing is still saved.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config for the packaged migrations; no alembic.ini involved.

    With ``connection``, Alembic commands (``command.upgrade(cfg, "head")``,
    ``command.downgrade(cfg, "base")``, ``command.current(cfg)``) run on it.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation: a literal % in the install path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest this package knows).

    One transaction, exclusive among migrators: SQLite's ``BEGIN IMMEDIATE`` or a PostgreSQL
    advisory lock, so processes starting together on a fresh database do not both create it.
    Running it on an up-to-date database is a cheap no-op: one ``SELECT`` of the stored
    revision, without Alembic (see :func:`at_packaged_head`).
    """
    if revision == "head" and at_packaged_head(engine):
        return
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                command.upgrade(alembic_config(conn), revision)
    except CommandError as exc:
        # Typically a database migrated by a newer ticketbridge (unknown revision).
        raise StateError(f"cannot migrate the state database: {exc}") from exc
    except SQLAlchemyError as exc:
        raise StateError(f"cannot migrate the state database: {describe_error(exc)}") from exc


_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']\s*$""", re.M)
_DOWN_REVISION = re.compile(
    r"""^down_revision(?:\s*:[^=\n]*)?=\s*(?:None|["']([^"']+)["'])\s*$""", re.M
)


@cache
def packaged_head() -> str | None:
    """The newest revision of the packaged migrations, read from the version files' text
    (``revision = "…"`` / ``down_revision = "…"``) without importing Alembic.

    ``None`` when that is not certain (a file written another way, a merge revision with
    several parents, more than one head): the caller then lets Alembic decide.
    """
    revisions, parents = set(), set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        body = path.read_text(encoding="utf-8")
        found, down = _REVISION.findall(body), _DOWN_REVISION.findall(body)
        if len(found) != 1 or len(down) != 1:
            return None
        revisions.add(found[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def at_packaged_head(engine: Engine) -> bool:
    """Whether the database's ``alembic_version`` holds exactly the packaged head. Any doubt
    (no such table, another revision, several rows, an unreadable version file) is ``False``,
    and :func:`migrate` goes through Alembic as before."""
    head = packaged_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False
    return [tuple(row) for row in stored] == [(head,)]


def describe_error(exc: SQLAlchemyError) -> str:
    """The driver's message, without SQLAlchemy's echo of the statement and parameters."""
    # The parameters may hold customer data: keep them out of errors and logs.
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {orig if orig is not None else exc}"
