"""Connection settings and the options of the ``contact_bookings`` object.

Facts come from ``platforms.md`` section 2 (Airship CRM, airship.co.uk); values marked
[INFER] there are defaults a venue can override here, never hard-coded elsewhere.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ticketbridge.connectors.base import ConnectionConfig, ObjectOptions
from ticketbridge.model import BookingStatus

PLATFORM = "airship_crm"
SANDBOX_TOKEN = "sandbox-airship-token"  # noqa: S105 - the fake credential the sandbox accepts

# Stage values are points inside ranges (GET /v1/booking/stage_values). 1 New, 100 Complete and
# 550 Cancelled are documented; a no-show is a lost booking, so it sits in the cancelled range
# (500-599) as 560 [INFER]. Venues that keep no-shows apart set their own value.
DEFAULT_STATUS_MAP: dict[str, int] = {
    BookingStatus.BOOKED.value: 1,
    BookingStatus.ATTENDED.value: 100,
    BookingStatus.CANCELLED.value: 550,
    BookingStatus.NO_SHOW.value: 560,
}

# Source names as ticketing platforms spell them -> Airship source ids (1 Website, 9 In House;
# everything else falls to default_source_id, 10 Third Party). Keys match case-insensitively.
DEFAULT_SOURCE_MAP: dict[str, int] = {
    "web": 1,
    "website": 1,
    "online": 1,
    "box office": 9,
    "box_office": 9,
    "boxoffice": 9,
    "in house": 9,
}

# Where the booking value may go. The booking object documents no "value" field, so the
# destination field is a choice: the money field ``deposit_paid``, one of the head-per-booking
# revenue fields, or a free data element ``data.element_01`` .. ``data.element_20``.
VALUE_FIELD_RE = re.compile(
    r"^(deposit_paid|hpbr_drink|hpbr_food|hpbr_entertainment|data\.element_(0[1-9]|1\d|20))$"
)


MatchKey = Literal["email", "mobile"]
DEFAULT_MATCH: tuple[MatchKey, ...] = ("email", "mobile")


class AirshipCrmConfig(ConnectionConfig):
    """One Airship CRM account. ``token`` is a Personal Access Token sent as Bearer."""

    platform: Literal["airship_crm"]
    base_url: str = "https://api.airship.co.uk/v1"
    token: SecretStr
    account_id: int
    default_region: str | None = "GB"
    concurrency: int = Field(default=8, ge=1)
    """Airship has no batch endpoint: one record per request, this many in flight."""


class GroupsOptions(BaseModel):
    """Which Airship groups a contact joins, under the unit (venue) it booked."""

    model_config = ConfigDict(extra="forbid")

    per_venue: str = "Booking"
    """Every contact joins this group under its booked venue ("" for none)."""
    folder_name: str | None = "TicketCo"
    """Folder new groups are filed in; existing groups keep theirs."""
    event_tags: list[str] = Field(default_factory=list)
    """Event tags that become groups of the same name (matched case-insensitively, written in
    the spelling configured here)."""


class ContactBookingsOptions(ObjectOptions):
    """Options of the ``contact_bookings`` object (the sync's ``destination:`` block)."""

    match: list[MatchKey] = Field(default_factory=lambda: list(DEFAULT_MATCH), min_length=1)
    """Identifiers a contact must have at least one of, in the order Airship matches them.
    Airship upserts on email, else mobile (both unique per account); identifiers are always sent
    so a booking lands on the right profile."""
    groups: GroupsOptions = Field(default_factory=GroupsOptions)
    status_map: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    """Canonical booking status -> Airship ``stage_value``; given keys override the defaults."""
    source_map: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_MAP))
    """Source name (case-insensitive) -> Airship ``source_id``."""
    default_source_id: int = 10
    """Used when the booking's source is missing or not in ``source_map`` (10 Third Party)."""
    type_map: dict[str, int] = Field(default_factory=dict)
    """Booking type name (case-insensitive) -> Airship ``type_id``."""
    default_type_id: int = 13
    """Used when the booking's type is missing or not in ``type_map`` (13 General Booking)."""
    value_field: str = "deposit_paid"
    """Booking field that receives the booking value as a decimal string (see VALUE_FIELD_RE)."""
    source_name: str = "TicketCo"
    """Contact source sent with every contact upsert."""
    preserve_consent: bool = True
    """Send Airship's ``preserve_consent`` rule: existing opt-ins are never overwritten."""
    booking_updates: Literal["upsert", "by_id"] = "upsert"
    """How a changed booking is written. ``upsert``: one ``POST /v1/contact`` holding the
    customer's identifier and the booking, which Airship upserts on ``booking_reference`` (the
    documented upsert key): one call per change, no id needed, and a profile erased in the CRM
    meanwhile is made again (as a new booking of that customer would make it). ``by_id``:
    ``POST /v1/bookings/{id}`` with the id kept in the ledger (Airship's create does not return
    it, so the first update of each booking looks it up: two calls); a booking or profile
    erased in the CRM is refused instead of made again."""

    @field_validator("status_map")
    @classmethod
    def _known_statuses(cls, value: dict[str, int]) -> dict[str, int]:
        known = {s.value for s in BookingStatus}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown booking status {unknown}; known: {sorted(known)}")
        # A partial map overrides the defaults rather than leaving statuses without a stage.
        return {**DEFAULT_STATUS_MAP, **value}

    @field_validator("source_map", "type_map")
    @classmethod
    def _fold_keys(cls, value: dict[str, int]) -> dict[str, int]:
        return {k.strip().casefold(): v for k, v in value.items()}

    @field_validator("value_field")
    @classmethod
    def _value_field(cls, value: str) -> str:
        if not VALUE_FIELD_RE.match(value):
            raise ValueError(
                "value_field must be deposit_paid, hpbr_drink, hpbr_food, hpbr_entertainment "
                f"or data.element_01..data.element_20, not {value!r}"
            )
        return value
