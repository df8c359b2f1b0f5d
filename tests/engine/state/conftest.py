"""Fixtures of the state-store contract suite: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ticketbridge.engine.state.sql import SqlStateStore, open_store


class FakeClock:
    """A settable clock, so lease expiry is tested without sleeping.

    Starts in the past on purpose: a lease taken on this clock is already expired for a
    process using the real clock.
    """

    def __init__(self, start: datetime = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend (a temp file; a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[SqlStateStore]:
    """A migrated store on ``db_url`` whose time is ``clock``."""
    opened = open_store(db_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()
