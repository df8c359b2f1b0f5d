"""Timestamps in canonical records are timezone-aware UTC.

Sources give local times (TicketCo in the venue's zone, with DST). Keeping those zones in the
canonical record breaks equality: an ambiguous local time in the repeated DST hour never equals
the same instant in another zone (PEP 495), so a record would differ from itself after a JSON
round trip. Naive values are taken as UTC; connectors convert local times before that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]
