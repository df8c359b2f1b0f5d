"""The Airship CRM destination: object ``contact_bookings``.

Invariants (the TicketCo connector's documented behaviour, and DESIGN guarantee 4):

* A new booking upserts the contact (email, else mobile, is Airship's match key) with the
  booking inside it (``booking_reference`` is the booking's upsert key): a retried create
  writes the same contact and booking again, never a second one.
* An existing booking updates the booking only (``POST /v1/bookings/{id}``). ``/contact`` is
  called on an update only when the write policy passed contact fields through (the user chose
  ``always``) or the contact withdrew a consent, so a customer is never opted in as a side
  effect of attending.
* A consent withdrawal is always written, in a body without opt-ins and without
  ``preserve_consent``; opt-ins go under ``preserve_consent`` (when set), which never undoes
  an opt-out. One contact's changes in a batch are written one after the other. So the
  consent a contact ends with depends on the source data alone, not on which of several
  bookings of one customer landed first.
* One record's refusal (422, unknown venue, unknown booking) is that record's
  ``Outcome(ok=False)``; auth, fatal and retryable errors propagate to the engine.
* At most ``concurrency`` requests are in flight: Airship has no batch endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ticketbridge.connectors.airship_crm.client import AirshipCrmClient
from ticketbridge.connectors.airship_crm.config import (
    PLATFORM,
    AirshipCrmConfig,
    ContactBookingsOptions,
)
from ticketbridge.connectors.airship_crm.mapping import (
    VENUE,
    booking_body,
    consent_withdrawals,
    contact_body,
    grants_consent,
    prepare_contact_bookings,
    record_identity,
    split_withdrawals,
    venue_name,
    withdrawal_body,
)
from ticketbridge.connectors.airship_crm.schemas import BookingOut, ContactOut
from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Record,
)
from ticketbridge.connectors.kit import DestinationKit, run_bounded
from ticketbridge.errors import AuthError, ConnectorError, RecordRejected
from ticketbridge.http import HttpContext
from ticketbridge.model import Booking

OBJECT = "contact_bookings"

CONTACT_BOOKINGS = ObjectSpec(
    name=OBJECT,
    accepts=("booking",),
    entities=("contact", "booking"),
    default_policy={"contact": "on_create", "booking": "always"},
    options=ContactBookingsOptions,
    description="Contact profile (with venue and tag groups) plus its booking, upserted on "
    "booking_reference; a booking update never touches the contact, except to withdraw a "
    "consent.",
    withdrawals=consent_withdrawals,
)


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _if_empty(change: Change, entity: str) -> set[str]:
    prefix = entity + "."
    return {f.removeprefix(prefix) for f in change.if_empty if f.startswith(prefix)}


def _keep_where_empty(fields: dict[str, Any], keys: set[str], existing: dict[str, Any]) -> None:
    """Drop the ``if_empty`` fields that the destination already has a value for."""
    for key in keys & fields.keys():
        if existing.get(key) not in (None, "", [], {}):
            del fields[key]


class _Refused(Exception):
    """A per-record refusal decided here (not by Airship): becomes ``Outcome(ok=False)``."""


class AirshipCrmDestination(DestinationKit[AirshipCrmConfig]):
    platform = PLATFORM
    config_model = AirshipCrmConfig
    OBJECTS = (CONTACT_BOOKINGS,)
    client: AirshipCrmClient

    def __init__(self, config: AirshipCrmConfig | Mapping[str, Any], context: HttpContext) -> None:
        super().__init__(config, context)
        # Venue name (folded) -> unit id. Units change rarely; a destination lives for one
        # run, so a unit added mid-run shows up on the next run.
        self._units: dict[str, int] | None = None
        self._units_lock = asyncio.Lock()

    def open_client(self, config: AirshipCrmConfig, context: HttpContext) -> AirshipCrmClient:
        return AirshipCrmClient(config, context)

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        """Pure: see :func:`mapping.prepare_contact_bookings`. Raises RecordRejected."""
        return prepare_contact_bookings(
            record, self.object_options(obj, options, ContactBookingsOptions)
        )

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        opts = self.object_options(obj, options, ContactBookingsOptions)
        # One customer's bookings one after the other, different customers concurrently:
        # Airship finds the profile by its identifier, so two upserts of one profile in
        # flight at once would race (and a retried one could land last).
        by_contact: dict[tuple[tuple[str, str], ...], list[Change]] = {}
        for change in changes:
            identity = record_identity(change.record, opts.match)
            key = tuple((k, str(v).casefold()) for k, v in identity.items())
            by_contact.setdefault(key or (("record", change.key),), []).append(change)
        done = await run_bounded(
            list(by_contact.values()),
            lambda group: self._write_serially(group, opts),
            self.config.concurrency,
        )
        return [outcome for group in done for outcome in group]

    async def _write_serially(
        self, changes: list[Change], opts: ContactBookingsOptions
    ) -> list[Outcome]:
        return [await self._write_one(change, opts) for change in changes]

    async def _write_one(self, change: Change, opts: ContactBookingsOptions) -> Outcome:
        try:
            if change.action == "create":
                ids = await self._create(change, opts)
            else:
                ids = await self._update(change, opts)
        except _Refused as exc:
            return Outcome(change.key, ok=False, dest_ids=dict(change.dest_ids), reason=str(exc))
        except RecordRejected as exc:
            return Outcome(change.key, ok=False, dest_ids=dict(change.dest_ids), reason=exc.message)
        return Outcome(change.key, ok=True, dest_ids=ids)

    # -- create / update ---------------------------------------------------------------

    async def _create(self, change: Change, opts: ContactBookingsOptions) -> dict[str, str]:
        contact, withdrawn = split_withdrawals(dict(change.fields.get("contact", {})))
        booking = dict(change.fields.get("booking", {}))
        return await self._upsert_with_booking(change, contact, withdrawn, booking, opts)

    async def _upsert_with_booking(
        self,
        change: Change,
        contact: dict[str, Any],
        withdrawn: dict[str, Any],
        booking: dict[str, Any],
        opts: ContactBookingsOptions,
    ) -> dict[str, str]:
        """One ``POST /v1/contact`` with the profile fields the policy lets through, the
        withdrawals when they fit in it, and the booking (upserted on its reference)."""
        unit_id = await self._unit_for(contact.get(VENUE) or booking.get(VENUE), change)
        body = await self._contact_upsert_body(change, contact, unit_id, opts)
        withdrawn = self._withdraw_within(body, contact, withdrawn)
        if booking:
            body["bookings"] = [booking_body(booking, unit_id)]
        found = await self._upsert_contact(body)
        if withdrawn:
            await self._upsert_contact(
                withdrawal_body(withdrawn, record_identity(change.record, opts.match), opts)
            )
        ids = {**change.dest_ids, "contact": str(found.id)}
        reference = booking.get("booking_reference")
        # The documented response has no bookings; if a deployment returns them, keep the id
        # so that a by_id update needs no lookup.
        for made in found.bookings:
            if reference and made.booking_reference == reference:
                ids["booking"] = str(made.id)
        return ids

    async def _update(self, change: Change, opts: ContactBookingsOptions) -> dict[str, str]:
        ids = dict(change.dest_ids)
        contact, withdrawn = split_withdrawals(dict(change.fields.get("contact", {})))
        identity = record_identity(change.record, opts.match)
        booking = dict(change.fields.get("booking", {}))
        if booking and self._upserts_booking(change, identity, opts):
            booking.setdefault("booking_reference", self._reference(change))
            return await self._upsert_with_booking(change, contact, withdrawn, booking, opts)
        if contact:
            # Only reachable when the sync's policy writes contacts on updates ("always").
            unit_id = await self._unit_for(contact.get(VENUE), change)
            body = await self._contact_upsert_body(change, contact, unit_id, opts)
            withdrawn = self._withdraw_within(body, contact, withdrawn)
            ids["contact"] = str((await self._upsert_contact(body)).id)
            if withdrawn:
                await self._upsert_contact(withdrawal_body(withdrawn, identity, opts))
        elif withdrawn:
            found = await self._withdraw(withdrawn, identity, opts)
            if found is not None:
                ids["contact"] = found
        if booking:
            ids["booking"] = await self._update_booking(change, booking, ids.get("booking"))
        return ids

    @staticmethod
    def _upserts_booking(
        change: Change, identity: dict[str, Any], opts: ContactBookingsOptions
    ) -> bool:
        """Whether a changed booking goes out as one contact upsert (see ``booking_updates``).
        Not when there is no identifier to upsert on, nor when booking fields are written only
        where Airship's are empty: that needs the booking as Airship holds it, whose look-up
        gives its id too."""
        return (
            opts.booking_updates == "upsert" and bool(identity) and not _if_empty(change, "booking")
        )

    async def _contact_upsert_body(
        self,
        change: Change,
        contact: dict[str, Any],
        unit_id: int,
        opts: ContactBookingsOptions,
    ) -> dict[str, Any]:
        # The identifier comes from the record itself: a policy that withholds contact fields
        # must still leave Airship able to find the profile the booking belongs to.
        identity = record_identity(change.record, opts.match)
        keys = _if_empty(change, "contact")
        if keys & contact.keys():
            existing = await self._find_contact(identity)
            if existing is not None:
                _keep_where_empty(contact, keys, existing)
        return contact_body(contact, identity, unit_id, opts)

    @staticmethod
    def _withdraw_within(
        body: dict[str, Any], contact: dict[str, Any], withdrawn: dict[str, Any]
    ) -> dict[str, Any]:
        """Put ``withdrawn`` into ``body`` when the body grants no consent (then it needs no
        ``preserve_consent``: one call instead of two); returns what is left to write."""
        if not withdrawn or grants_consent(contact):
            return withdrawn
        body.pop("rules", None)
        body.update(withdrawn)
        return {}

    async def _withdraw(
        self, withdrawn: dict[str, Any], identity: dict[str, Any], opts: ContactBookingsOptions
    ) -> str | None:
        """Write a withdrawal on its own (the policy kept the rest of the contact back): only
        to a profile Airship still has, so that a customer erased in the CRM is not created
        again by it. Returns the profile's id, None if there is none."""
        existing = await self._find_contact(identity)
        if existing is None:
            return None
        if any(existing.get(name) is not False for name in withdrawn):
            await self._upsert_contact(withdrawal_body(withdrawn, identity, opts))
        return str(existing["id"])

    async def _update_booking(
        self, change: Change, fields: dict[str, Any], known_id: str | None
    ) -> str:
        reference = str(fields.get("booking_reference") or self._reference(change))
        unit_id = await self._unit_for(fields.get(VENUE), change)
        body = booking_body(fields, unit_id)
        body.pop("booking_reference", None)  # the key, not a change
        keys = _if_empty(change, "booking")
        if keys & body.keys() or known_id is None:
            found = await self._find_booking(reference)
            if keys:
                _keep_where_empty(body, keys, found.model_dump())
            known_id = str(found.id)
        if await self._post_booking(int(known_id), body):
            return known_id
        # The stored id is stale (booking deleted and re-made in the CRM): find it again.
        found = await self._find_booking(reference)
        if found.id != int(known_id) and await self._post_booking(found.id, body):
            return str(found.id)
        raise _Refused(self._not_found(reference))

    # -- calls with per-record refusal messages ---------------------------------------

    async def _upsert_contact(self, body: dict[str, Any]) -> ContactOut:
        try:
            return await self.client.upsert_contact(body)
        except RecordRejected as exc:
            raise _Refused(f"POST /contact refused: {exc.message}") from None

    async def _post_booking(self, booking_id: int, body: dict[str, Any]) -> bool:
        try:
            return await self.client.update_booking(booking_id, body)
        except RecordRejected as exc:
            raise _Refused(f"POST /bookings/{booking_id} refused: {exc.message}") from None

    async def _find_booking(self, reference: str) -> BookingOut:
        found = await self.client.find_booking(reference)
        if found is None:
            raise _Refused(self._not_found(reference))
        return found

    async def _find_contact(self, identity: dict[str, Any]) -> dict[str, Any] | None:
        if not identity:
            return None
        found = await self.client.find_contact(**identity)  # exactly one identifier
        return None if found is None else found.model_dump()

    def _not_found(self, reference: str) -> str:
        # Not re-created: the booking (or its contact) may have been erased on purpose, and
        # re-creating it would mean writing the contact profile on an update.
        return (
            f"booking {reference!r} not found in Airship account {self.config.account_id}; "
            "an update does not re-create it"
        )

    @staticmethod
    def _reference(change: Change) -> str:
        data = change.record.data
        return data.confirmation_number if isinstance(data, Booking) else change.key

    # -- units -------------------------------------------------------------------------

    async def _unit_index(self) -> dict[str, int]:
        if self._units is not None:
            return self._units
        async with self._units_lock:  # one fetch, however many writes start at once
            if self._units is None:
                self._units = {_fold(u.name): u.id for u in await self.client.units()}
            return self._units

    async def _unit_for(self, name: str | None, change: Change) -> int:
        data = change.record.data
        name = name or (venue_name(data) if isinstance(data, Booking) else None)
        if not name:
            raise _Refused(f"{change.key}: no venue to file the booking under")
        unit_id = (await self._unit_index()).get(_fold(name))
        if unit_id is None:
            raise _Refused(
                f"venue {name!r} is not a unit of Airship account {self.config.account_id}"
            )
        return unit_id

    # -- checks ------------------------------------------------------------------------

    async def check(self) -> list[CheckResult]:
        """Token accepted, account readable, units listed (``check_venues`` for venues)."""
        account = f"account {self.config.account_id}"
        try:
            units = await self.client.units()
        except AuthError as exc:
            if exc.status == 401:
                return [
                    CheckResult("token", False, "Airship refused the token (HTTP 401)"),
                    CheckResult("account", False, "not checked: token refused"),
                ]
            return [
                CheckResult("token", True, "accepted"),
                CheckResult(
                    "account", False, f"{account} is not readable with this token: {exc.message}"
                ),
            ]
        except ConnectorError as exc:
            return [CheckResult("account", False, f"{account}: {exc.message}")]
        self._units = {_fold(u.name): u.id for u in units}
        venues = sorted(u.name for u in units if not u.is_root)
        return [
            CheckResult("token", True, "accepted"),
            CheckResult("account", True, f"{account} readable"),
            CheckResult(
                "units", bool(units), f"{len(venues)} units: {', '.join(venues) or 'none'}"
            ),
        ]

    async def check_venues(self, names: list[str]) -> list[CheckResult]:
        """One result per configured venue: is it a unit of the account?"""
        try:
            index = await self._unit_index()
        except ConnectorError as exc:
            return [CheckResult(f"venue {n!r}", False, exc.message) for n in names]
        return [
            CheckResult(
                f"venue {n!r}",
                _fold(n) in index,
                f"unit {index[_fold(n)]}"
                if _fold(n) in index
                else f"not a unit of Airship account {self.config.account_id}",
            )
            for n in names
        ]
