"""Pure functions: one TIXNGO diff update -> a canonical :class:`Ticket` status change.

The mapping is fixed (the feedback interface's own rule: only what S-360 needs and shows):
the mobile status with the list it belongs to, the wallet owner, the holder (the named
spectator) and the assignee as people, when it changed, and the status it came from. No I/O
and no clock here, so a stored payload maps to the same record in a dead-letter retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ticketbridge.connectors.tixngo.schemas import TicketUpdate, TixngoEvent, TixngoPerson
from ticketbridge.errors import MappingError
from ticketbridge.model import (
    Event,
    Person,
    Ticket,
    Venue,
    normalize_email,
    record_key,
    stable_hash,
)
from ticketbridge.model.mobile_status import STATUSES, StatusMode

PLATFORM = "tixngo"


def ticket_key(ticket_id: str) -> str:
    """``ticket:tixngo:<ticketId>``: what the ledger, dead letters and skip lists use."""
    return record_key("ticket", PLATFORM, ticket_id)


def key_of(raw: Mapping[str, Any]) -> str:
    """The record key of a raw update; one without a usable ``ticketId`` gets a key from its
    content, so that the same broken entry read again is the same dead letter."""
    ticket_id = raw.get("ticketId", raw.get("ticket_id"))
    if isinstance(ticket_id, str | int) and not isinstance(ticket_id, bool):
        text = str(ticket_id).strip()
        if text:
            return ticket_key(text)
    return ticket_key("?" + stable_hash(dict(raw))[:16])


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "update"
    return f"{where}: {first['msg']}"


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 time (``Z`` or an offset); a time without an offset is taken as UTC."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{field}: not an RFC 3339 time: {value!r}") from None


def check_status(value: str | None, mode: StatusMode, field: str = "status") -> str:
    """The status in upper case if it is on ``mode``'s list (platforms.md 6.5), else a
    ValueError naming the field, the value and the mode."""
    if value is None:
        raise ValueError(f"{field}: missing")
    status = value.strip().upper()
    if status not in STATUSES[mode]:
        other = "history" if mode == "lifecycle" else "lifecycle"
        hint = (
            f" (it is a {other}-mode status: is status_mode right?)"
            if status in STATUSES[other]
            else ""
        )
        raise ValueError(f"{field}: {value!r} is not a TIXNGO {mode}-mode status{hint}")
    return status


def _person(person: TixngoPerson | None, field: str) -> Person | None:
    if person is None or person.empty:
        return None
    email = None
    if person.email is not None:
        try:
            email = normalize_email(person.email)
        except ValueError as exc:
            raise ValueError(f"{field}.email: {exc}") from None
    return Person(
        external_id=person.id,
        email=email,
        first_name=person.first_name.strip() if person.first_name else None,
        last_name=person.last_name.strip() if person.last_name else None,
    )


def _event(event: TixngoEvent | None) -> Event | None:
    if event is None or event.id is None:
        return None
    venue = None
    address = event.address
    if address is not None and address.site:
        where = ", ".join(p for p in (address.zip, address.city, address.country_code) if p)
        venue = Venue(name=address.site, address=where or None)
    starts = parse_time(event.start_time, "event.startTime") if event.start_time else None
    return Event(external_id=event.id, name=event.name or event.id, venue=venue, starts_at=starts)


def map_update(raw: Mapping[str, Any], mode: StatusMode) -> Ticket:
    """A diff update as a canonical ticket. Raises MappingError (with the record key and the
    field at fault) for an update that cannot be one: no ticketId, a status outside
    ``mode``'s list, an unreadable time or e-mail address."""
    key = key_of(raw)
    try:
        update = TicketUpdate.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(key, _reason(exc)) from None
    if update.ticket_id is None:
        raise MappingError(key, "ticketId: missing")
    try:
        status = check_status(update.status, mode)
        updated_at = parse_time(update.updated_at, "updatedAt") if update.updated_at else None
        # The holder is the named spectator: TIXNGO calls them holder or assignee (6.5), and
        # an update may carry only the injected spectatorDetails.
        named = update.holder or update.assignee or update.spectator
        holder_field = (
            "holder" if update.holder else "assignee" if update.assignee else "spectatorDetails"
        )
        return Ticket(
            number=update.ticket_id.strip(),
            mobile_status=status,
            mobile_status_mode=mode,
            owner=_person(update.owner, "owner"),
            holder=_person(named, holder_field),
            assignee=_person(update.assignee, "assignee"),
            updated_at=updated_at,
            event=_event(update.event),
            attributes={
                "previous_status": (
                    update.previous_status.strip().upper() if update.previous_status else None
                )
            },
        )
    except ValueError as exc:
        raise MappingError(key, str(exc)) from None
