"""Venues and events."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Venue(BaseModel):
    external_id: str | None = None
    name: str
    address: str | None = None


class Event(BaseModel):
    external_id: str
    name: str
    venue: Venue | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    doors_open_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    status: str | None = None
