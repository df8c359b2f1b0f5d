"""Serve one platform sandbox under uvicorn, in this process, on a loopback port.

``python -m bench.serve_sandbox ticketco --port 18400 --records 100000 --seed 42``

The benchmark starts one such process per platform, so the sandboxes never share a core's
event loop with each other or with the contender. ``--indexed`` (Airship CRM only) gives the
in-memory store dict indexes for its three look-ups (contact by email, by mobile, booking by
reference). The stock store scans every contact / booking on each of those, which makes a full
load quadratic: at 100k bookings the sandbox, not the contender, would be what is measured.
The indexed look-ups return what the scans return; nothing else about the sandbox changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn

from ticketbridge.connectors import registry
from ticketbridge.connectors.airship_crm import sandbox_store
from ticketbridge.connectors.airship_crm.sandbox_store import AirshipStore, Booking, Contact

LOOPBACK = "127.0.0.1"


def _index(store: Any) -> dict[str, dict[str, int]]:
    idx: dict[str, dict[str, int]] | None = store.__dict__.get("_bench_idx")
    if idx is None:
        idx = {"email": {}, "mobile": {}, "ref": {}}
        for c in store.contacts.values():
            _note_contact(idx, c)
        for b in store.bookings.values():
            _note_booking(idx, b)
        store.__dict__["_bench_idx"] = idx
    return idx


def _note_contact(idx: dict[str, dict[str, int]], c: Contact) -> None:
    if c.email:
        idx["email"][c.email.casefold()] = c.id
    if c.mobile_number:
        idx["mobile"][c.mobile_number] = c.id


def _note_booking(idx: dict[str, dict[str, int]], b: Booking) -> None:
    if b.booking_reference:
        idx["ref"][b.booking_reference] = b.id


def install_indexes() -> None:
    """Patch :class:`AirshipStore` (in this process only) with indexed look-ups."""
    original_reset = AirshipStore.reset
    original_upsert = AirshipStore.upsert_contact
    original_booking = AirshipStore._upsert_booking
    original_update = AirshipStore.update_booking

    def reset(self: AirshipStore) -> None:
        original_reset(self)
        self.__dict__.pop("_bench_idx", None)

    def by_email(self: AirshipStore, email: str) -> Contact | None:
        key = email.strip().casefold()
        found = self.contacts.get(_index(self)["email"].get(key, -1))
        return found if found and found.email and found.email.casefold() == key else None

    def by_mobile(self: AirshipStore, mobile: str) -> Contact | None:
        norm = sandbox_store.uk_mobile(mobile)
        found = self.contacts.get(_index(self)["mobile"].get(norm or "", -1))
        return found if found and norm and found.mobile_number == norm else None

    def booking_by_reference(self: AirshipStore, reference: str) -> Booking | None:
        found = self.bookings.get(_index(self)["ref"].get(reference, -1))
        return found if found and found.booking_reference == reference else None

    def upsert_contact(self: AirshipStore, body: dict[str, Any]) -> tuple[Contact, bool]:
        contact, created = original_upsert(self, body)
        _note_contact(_index(self), contact)
        return contact, created

    def upsert_booking(self: AirshipStore, contact: Contact, fields: dict[str, Any],
                       unit: int | None) -> None:
        original_booking(self, contact, fields, unit)
        ref = fields.get("booking_reference")
        idx = _index(self)
        if ref and ref not in idx["ref"] and self.bookings:
            # A new booking is the last one inserted (dicts keep insertion order).
            _note_booking(idx, next(reversed(self.bookings.values())))

    def update_booking(self: AirshipStore, booking_id: int,
                       body: dict[str, Any]) -> Booking | None:
        booking = original_update(self, booking_id, body)
        if booking is not None:
            _note_booking(_index(self), booking)
        return booking

    patches: dict[str, Callable[..., Any]] = {
        "reset": reset, "by_email": by_email, "by_mobile": by_mobile,
        "booking_by_reference": booking_by_reference, "upsert_contact": upsert_contact,
        "_upsert_booking": upsert_booking, "update_booking": update_booking,
    }
    for name, func in patches.items():
        setattr(AirshipStore, name, func)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_sandbox")
    parser.add_argument("platform", choices=["ticketco", "airship_crm"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--indexed", action="store_true")
    args = parser.parse_args(argv)
    if args.indexed:
        install_indexes()
    connector = registry.get(args.platform)
    assert connector.sandbox is not None
    sandbox = connector.sandbox(seed=args.seed, records=args.records, today=datetime.now(UTC))
    # Loopback only, always: the benchmark's traffic never leaves this machine.
    uvicorn.run(sandbox.app, host=LOOPBACK, port=args.port, log_level="warning",
                lifespan="off", access_log=False)


if __name__ == "__main__":
    main()
