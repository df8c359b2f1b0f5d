"""Consent is never changed by side effect: a property over generated sequences of updates."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import MemoryDestination, MemorySource, booking, spec
from ticketbridge.connectors.base import WriteMode
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.policy import Action, WritePolicy
from ticketbridge.engine.state.sql import open_store

# One step = a new version of booking i: (i, party size, email opt-in, first name).
steps = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(1, 6),
        st.sampled_from([True, False, None]),
        st.sampled_from(["Ann", "Bo", "Cy"]),
    ),
    min_size=1,
    max_size=6,
)


def _run_all(
    policy: dict[str, object], history: list[tuple[int, int, bool | None, str]]
) -> tuple[MemoryDestination, dict[int, tuple[bool | None, str]]]:
    async def go() -> tuple[MemoryDestination, dict[int, tuple[bool | None, str]]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 's.db'}")
            dest = MemoryDestination()
            current = {i: booking(i) for i in range(4)}
            at_creation: dict[int, tuple[bool | None, str]] = {
                i: (True, f"Name{i}") for i in range(4)
            }
            try:
                await run_sync(
                    store, spec(policy=policy), MemorySource(list(current.values())), dest
                )
                for i, party, opt_in, name in history:
                    current[i] = booking(i, party=party, email_opt_in=opt_in, first_name=name)
                    await run_sync(
                        store, spec(policy=policy), MemorySource(list(current.values())), dest
                    )
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


modes = st.sampled_from(["always", "on_create", "if_empty", "never"])
field_names = st.sampled_from(["email", "first_name", "allow_email", "party_size"])


@settings(max_examples=200, deadline=None)
@given(
    rules=st.dictionaries(
        st.sampled_from(["contact", "booking"]),
        st.dictionaries(st.one_of(st.just("*"), field_names), modes, max_size=3),
    ),
    mapped=st.dictionaries(
        st.sampled_from(["contact", "booking"]),
        st.dictionaries(field_names, st.integers(), max_size=4),
    ),
    action=st.sampled_from(["create", "update"]),
)
def test_policy_decides_every_field_by_its_own_rule(
    rules: dict[str, dict[str, WriteMode]],
    mapped: dict[str, dict[str, object]],
    action: Action,
) -> None:
    """Whatever shortcut apply() takes, each field follows its own rule, else the entity's
    "*", else always; a rule naming one field never decides the others."""
    out, if_empty = WritePolicy(rules).apply(action, mapped)
    for entity, fields in mapped.items():
        for fname, value in fields.items():
            entity_rules = rules.get(entity, {})
            mode = entity_rules.get(fname) or entity_rules.get("*") or "always"
            written = (
                mode == "always"
                or mode == "if_empty"
                or (mode == "on_create" and action == "create")
            )
            kept = out.get(entity, {})
            assert (fname in kept) is written, (entity, fname, mode, action)
            assert kept.get(fname, value) == value
            assert (f"{entity}.{fname}" in if_empty) is (mode == "if_empty" and action == "update")


def _withdrawn_consent(mapped: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    contact = mapped.get("contact", {})
    return {"contact": {"allow_email": False}} if contact.get("allow_email") is False else {}


@settings(max_examples=200, deadline=None)
@given(
    rules=st.dictionaries(
        st.sampled_from(["contact", "booking"]),
        st.dictionaries(st.one_of(st.just("*"), field_names), modes, max_size=3),
    ),
    consent=st.sampled_from([True, False, None]),
    action=st.sampled_from(["create", "update"]),
)
def test_a_withdrawal_passes_every_rule_and_an_opt_in_only_its_own(
    rules: dict[str, dict[str, WriteMode]], consent: bool | None, action: Action
) -> None:
    """Issue 20.1: whatever the policy (``never`` included), a consent withdrawal the object
    names is written, and written where the destination has a value (not ``if_empty``); an
    opt-in follows the rule like any other field."""
    contact: dict[str, object] = {"email": "a@b.example", "first_name": "Ann"}
    if consent is not None:
        contact["allow_email"] = consent
    mapped: dict[str, dict[str, Any]] = {"contact": contact, "booking": {"party_size": 2}}
    plain, plain_if_empty = WritePolicy(rules).apply(action, mapped)
    out, if_empty = WritePolicy(rules, _withdrawn_consent).apply(action, mapped)
    if consent is False:
        assert out["contact"]["allow_email"] is False
        assert "contact.allow_email" not in if_empty
        rest = {k: v for k, v in out["contact"].items() if k != "allow_email"}
        assert rest == {k: v for k, v in plain.get("contact", {}).items() if k != "allow_email"}
    else:
        assert (out, if_empty) == (plain, plain_if_empty)
