"""Pure functions: canonical tickets -> what S-360 stores from TIXNGO's feedback.

Invariants:

* :func:`prepare_ticket_feedback` depends only on the record and the options: the engine
  hashes its result per entity to tell the destination what changed.
* Three entities: ``"ticket"`` (the TIXNGO status, its mode, when and from which status it
  moved: stored as the ticket's external status, separate from the S-360 ticket status
  [DOC 7.5]), ``"owner"`` (the wallet owner) and ``"holder"`` (the named holder, the ticket's
  beneficiary). Both people are always present, ``{}`` when the ticket names nobody, so
  that a person appearing, changing or leaving is a change of that entity alone.
* A person is identified by the e-mail, compared case-insensitively (``match``); an e-mail
  that is not an address refuses the record naming the field.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ticketbridge.connectors.base import Mapped, Record
from ticketbridge.connectors.secutix360.config import PLATFORM, TicketFeedbackOptions
from ticketbridge.errors import RecordRejected
from ticketbridge.model import Person, Ticket, normalize_email
from ticketbridge.model.mobile_status import STATUSES

TICKET = "ticket"
OWNER = "owner"
HOLDER = "holder"
PEOPLE = (OWNER, HOLDER)


def _refuse(record: Record, message: str) -> RecordRejected:
    return RecordRejected(f"{record.key}: {message}", record_key=record.key, platform=PLATFORM)


def ticket_of(record: Record) -> Ticket:
    if not isinstance(record.data, Ticket):
        raise _refuse(record, f"ticket_feedback accepts tickets, not {record.kind}")
    return record.data


def ticket_fields(record: Record, opts: TicketFeedbackOptions) -> dict[str, Any]:
    ticket = ticket_of(record)
    if not ticket.number.strip():
        raise _refuse(record, "ticket has no number (the S-360 ticket id)")
    status = (ticket.mobile_status or "").strip().upper()
    if not status:
        raise _refuse(record, "mobile_status is empty (the TIXNGO status S-360 stores)")
    mode = (ticket.mobile_status_mode or opts.default_mode).strip().lower()
    if mode not in STATUSES:
        raise _refuse(record, f"mobile_status_mode {mode!r} is neither lifecycle nor history")
    if opts.check_status and status not in STATUSES[mode]:
        raise _refuse(record, f"mobile_status {status!r} is not a TIXNGO {mode} status")
    out: dict[str, Any] = {"ticket_id": ticket.number.strip(), "status": status, "mode": mode}
    if ticket.updated_at is not None:
        out["status_date"] = ticket.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    previous = ticket.attributes.get("previous_status")
    if isinstance(previous, str) and previous.strip():
        out["previous_status"] = previous.strip().upper()
    return out


def person_fields(
    record: Record, role: str, person: Person | None, opts: TicketFeedbackOptions
) -> dict[str, Any]:
    """``{}`` for nobody; else the person with ``match`` (the case-folded e-mail, or absent
    when the person has none)."""
    if person is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in (
        ("first_name", person.first_name),
        ("last_name", person.last_name),
        ("external_id", person.external_id),
    ):
        if value and value.strip():
            out[key] = value.strip()
    raw = (person.email or "").strip()
    if raw:
        try:
            email = normalize_email(raw)
        except ValueError as exc:
            raise _refuse(record, f"{role}.email: {exc}") from None
        out["email"] = email
        out["match"] = email.casefold()
    elif opts.person_without_email == "reject" and out:
        raise _refuse(record, f"{role}.email is empty: S-360 matches cultural contacts by e-mail")
    return out


def prepare_ticket_feedback(record: Record, opts: TicketFeedbackOptions) -> Mapped:
    """``{"ticket": {...}, "owner": {...}, "holder": {...}}`` for one ticket. Raises
    RecordRejected naming the record and the field when it cannot be stored."""
    ticket = ticket_of(record)
    holder = ticket.holder or ticket.assignee  # the named spectator, the beneficiary
    return {
        TICKET: ticket_fields(record, opts),
        OWNER: person_fields(record, OWNER, ticket.owner, opts),
        HOLDER: person_fields(record, HOLDER, holder, opts),
    }


def contact_body(person: dict[str, Any], identifier: str, create_login: bool) -> dict[str, Any]:
    """One ``CulturalContactData`` for ``createCulturalContacts`` (S-360 numbers it)."""
    body: dict[str, Any] = {
        "identifier": identifier,
        "email": person["email"],
        "createLogin": create_login,
    }
    if person.get("first_name"):
        body["firstName"] = person["first_name"]
    if person.get("last_name"):
        body["lastName"] = person["last_name"]
    return body


def ticket_id(record: Record) -> str:
    return ticket_of(record).number.strip()


def ticket_body(
    ticket: str, fields: dict[str, Any], wire: dict[str, str], contacts: dict[str, str]
) -> dict[str, Any]:
    """The external-status call: the ticket id, the status values ``fields`` has (none when
    only a person changed), and the contact number of each person in ``contacts`` (``owner``
    / ``holder``). What is left out is left as it is at S-360 (a partial update)."""
    body: dict[str, Any] = {wire["ticket_id"]: ticket}
    for name in ("status", "mode", "status_date", "previous_status"):
        if name in fields:
            body[wire[name]] = fields[name]
    for role, number in contacts.items():
        body[wire[role]] = int(number) if number.isdigit() else number
    return body
