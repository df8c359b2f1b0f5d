"""The console-session part of the StateStore contract, on SQLite and PostgreSQL (see
conftest): a login is open until it is ended, alone or with every other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketbridge.engine.state import SqlStateStore

if TYPE_CHECKING:
    from tests.engine.state.conftest import FakeClock


def test_a_session_is_open_until_it_is_ended(store: SqlStateStore) -> None:
    store.start_console_session("a" * 64, "operator")
    store.start_console_session("b" * 64, "viewer")
    assert store.console_session_open("a" * 64) and store.console_session_open("b" * 64)
    assert not store.console_session_open("c" * 64), "a session nobody started"
    assert store.end_console_sessions("a" * 64) == 1
    assert not store.console_session_open("a" * 64)
    assert store.console_session_open("b" * 64), "ending one ends only that one"
    assert store.end_console_sessions("a" * 64) == 0, "already ended"


def test_every_open_session_can_be_ended_at_once(store: SqlStateStore) -> None:
    for token in ("a", "b", "c"):
        store.start_console_session(token * 64, "operator")
    store.end_console_sessions("a" * 64)
    assert store.end_console_sessions() == 2
    assert not any(store.console_session_open(t * 64) for t in ("a", "b", "c"))


def test_rows_of_sessions_a_week_old_are_forgotten_at_the_next_login(
    store: SqlStateStore, clock: FakeClock
) -> None:
    store.start_console_session("a" * 64, "operator")
    clock.advance(8 * 24 * 3600)
    store.start_console_session("b" * 64, "operator")
    assert not store.console_session_open("a" * 64)
    assert store.console_session_open("b" * 64)
    assert store.end_console_sessions() == 1, "only the new one was left"
