"""PostgreSQL plumbing for tests: one throwaway schema per test in the configured database.

The server comes from ``TICKETBRIDGE_TEST_POSTGRES_URL`` (``.ci/pg-setup.sh`` prints one). Each
test gets a URL whose connections have ``search_path`` set to a fresh schema, so every table the
code under test creates (Alembic's version table included) lands there and is dropped after the
test. Only the right to create schemas in that database is needed, not CREATEDB.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ENV_URL = "TICKETBRIDGE_TEST_POSTGRES_URL"
ENV_REQUIRE = "TICKETBRIDGE_REQUIRE_SERVICES"
SKIP_REASON = f"PostgreSQL not configured: set {ENV_URL}"


def configured_url() -> str | None:
    """The server URL from the environment, or None when PostgreSQL tests should not run."""
    return os.environ.get(ENV_URL) or None


def services_required() -> bool:
    """CI sets this so a missing service fails the run instead of skipping tests quietly."""
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in ("1", "true", "yes")


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (psycopg passes ``options`` to the server)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    existing = parsed.query.get("options", "")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    options = f"{existing} -csearch_path={schema}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def create_schema(url: str) -> str:
    """Create a uniquely named, empty schema in the database at ``url``; return its name."""
    schema = f"tb_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    return schema


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    engine = _admin_engine(url)
    try:
        with engine.begin() as conn:
            # A test that leaked an open transaction must not hang the whole session.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


def _admin_engine(url: str) -> Engine:
    return create_engine(with_search_path(url, "public"), poolclass=NullPool)
