"""Consent is never changed by side effect: a property over generated sequences of updates."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import MemoryDestination, MemorySource, booking, spec
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.state.sql import open_store

# One step = a new version of booking i: (i, party size, email opt-in, first name).
steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 6), st.sampled_from([True, False, None]),
              st.sampled_from(["Ann", "Bo", "Cy"])),
    min_size=1, max_size=6,
)


def _run_all(policy: dict[str, object], history: list[tuple[int, int, bool | None, str]]
             ) -> tuple[MemoryDestination, dict[int, tuple[bool | None, str]]]:
    async def go() -> tuple[MemoryDestination, dict[int, tuple[bool | None, str]]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 's.db'}")
            dest = MemoryDestination()
            current = {i: booking(i) for i in range(4)}
            at_creation = {i: (True, f"Name{i}") for i in range(4)}
            try:
                await run_sync(store, spec(policy=policy), MemorySource(list(current.values())),
                               dest)
                for i, party, opt_in, name in history:
                    current[i] = booking(i, party=party, email_opt_in=opt_in, first_name=name)
                    await run_sync(store, spec(policy=policy),
                                   MemorySource(list(current.values())), dest)
            finally:
                store.close()
            return dest, at_creation
    return asyncio.run(go())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps)
def test_contact_never_changes_on_booking_updates(
    history: list[tuple[int, int, bool | None, str]],
) -> None:
    dest, at_creation = _run_all({"contact": "on_create"}, history)
    for i, (opt_in, name) in at_creation.items():
        stored = dest.stored[f"booking:mem:R{i:05d}"]
        assert stored.contact["allow_email"] is opt_in
        assert stored.contact["first_name"] == name
    # ...while the booking itself follows the source.
    for i, _party, _, _ in history:
        last = [p for j, p, _, _ in history if j == i][-1]
        assert dest.stored[f"booking:mem:R{i:05d}"].booking["party_size"] == last


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps)
def test_field_with_policy_never_is_never_written(
    history: list[tuple[int, int, bool | None, str]],
) -> None:
    dest, _ = _run_all({"contact": {"*": "always", "allow_email": "never"}}, history)
    for stored in dest.stored.values():
        assert "allow_email" not in stored.contact
    for i, _, _, _name in history:
        last = [n for j, _, _, n in history if j == i][-1]
        assert dest.stored[f"booking:mem:R{i:05d}"].contact["first_name"] == last
