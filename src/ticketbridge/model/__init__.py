"""Canonical records: the only thing sources emit and destinations accept.

Pure pydantic v2; this package imports nothing else of ticketbridge.
"""

from ticketbridge.model.booking import Booking, BookingStatus, Money, Ticket
from ticketbridge.model.contact import Consent, ConsentState, Contact, FieldIssue, Person
from ticketbridge.model.event import Event, Venue
from ticketbridge.model.ids import record_key, stable_hash
from ticketbridge.model.normalize import normalize_email, normalize_mobile

__all__ = [
    "Booking",
    "BookingStatus",
    "Consent",
    "ConsentState",
    "Contact",
    "Event",
    "FieldIssue",
    "Money",
    "Person",
    "Ticket",
    "Venue",
    "normalize_email",
    "normalize_mobile",
    "record_key",
    "stable_hash",
]
