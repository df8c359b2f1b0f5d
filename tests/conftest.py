"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg

# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A ``postgresql+psycopg://`` URL whose connections use a fresh, empty schema (dropped
    after the test), so tests never see each other's tables.

    Skips when ``TICKETBRIDGE_TEST_POSTGRES_URL`` is unset, unless
    ``TICKETBRIDGE_REQUIRE_SERVICES=1`` (CI), where a missing server fails instead.
    """
    url = pg.configured_url()
    if url is None:
        if pg.services_required():
            pytest.fail(
                f"{pg.ENV_REQUIRE}=1 but {pg.ENV_URL} is not set: run .ci/pg-setup.sh and "
                "export the URL it prints"
            )
        pytest.skip(pg.SKIP_REASON)
    try:
        schema = pg.create_schema(url)
    except Exception as error:
        pytest.fail(f"PostgreSQL at {pg.ENV_URL} is not usable: {error}")
    try:
        yield pg.with_search_path(url, schema)
    finally:
        pg.drop_schema(url, schema)


# --- logging -----------------------------------------------------------------------------------
# Tests run connectors in-process; without this, structlog's default prints every HTTP request.
from ticketbridge import logs as _logs  # noqa: E402

_logs.configure("WARNING")
