"""Canonical records to and from JSON, for dead letters that are retried on a later run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketbridge.connectors.base import Record, RecordData
from ticketbridge.model import Booking, Contact, Ticket

_KINDS: dict[str, type[RecordData]] = {"booking": Booking, "contact": Contact, "ticket": Ticket}


def record_to_json(record: Record) -> dict[str, Any]:
    return {
        "key": record.key,
        "kind": record.kind,
        "data": record.data.model_dump(mode="json"),
        "cursor": record.cursor.isoformat() if record.cursor else None,
    }


def record_from_json(data: dict[str, Any]) -> Record:
    model = _KINDS[data["kind"]]
    cursor = data.get("cursor")
    return Record(
        key=data["key"],
        kind=data["kind"],
        data=model.model_validate(data["data"]),
        cursor=datetime.fromisoformat(cursor) if cursor else None,
    )
