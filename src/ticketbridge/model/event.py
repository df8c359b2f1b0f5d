"""Venues and events."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ticketbridge.model.times import UtcDatetime


class Venue(BaseModel):
    external_id: str | None = None
    name: str
    address: str | None = None


class Event(BaseModel):
    external_id: str
    name: str
    venue: Venue | None = None
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    doors_open_at: UtcDatetime | None = None
    tags: list[str] = Field(default_factory=list)
    status: str | None = None
