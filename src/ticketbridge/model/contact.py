"""Contacts and their consent.

Consent is per channel and carries where it came from and when: a destination must be able to
tell "the source says no" (``denied``) from "the source does not say" (``unknown``), because only
the first may ever be written, and only when the sync's write policy allows it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ticketbridge.model.normalize import normalize_email, normalize_mobile
from ticketbridge.model.times import UtcDatetime


class ConsentState(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"


class Consent(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: ConsentState = ConsentState.UNKNOWN
    source: str | None = None
    at: UtcDatetime | None = None

    @property
    def granted(self) -> bool:
        return self.state is ConsentState.GRANTED


class FieldIssue(BaseModel):
    """A value the source had that could not be used; kept so it is reported, not dropped."""

    model_config = ConfigDict(frozen=True)

    field: str
    value: str
    reason: str


class Person(BaseModel):
    """A named person on a ticket (holder, wallet owner, assignee): no consent of its own."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    external_id: str | None = None


class Contact(BaseModel):
    """A customer. ``email`` and ``mobile`` are normalised (E.164) or None; invalid raw values
    are in ``issues``. ``attributes`` holds further source fields for user-defined mappings."""

    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    email_consent: Consent = Field(default_factory=Consent)
    sms_consent: Consent = Field(default_factory=Consent)
    updated_at: UtcDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    issues: list[FieldIssue] = Field(default_factory=list)

    @classmethod
    def build(
        cls,
        *,
        email: str | None = None,
        mobile: str | None = None,
        default_region: str | None = None,
        **fields: Any,
    ) -> Contact:
        """Build a contact from raw source values, normalising email and mobile.

        A value that does not normalise is recorded in ``issues`` with its reason and the
        field is left empty, so one bad phone number never loses the rest of the record.
        """
        issues: list[FieldIssue] = []
        norm_email = None
        if email is not None and email.strip():
            try:
                norm_email = normalize_email(email)
            except ValueError as exc:
                issues.append(FieldIssue(field="email", value=email, reason=str(exc)))
        norm_mobile = None
        if mobile is not None and str(mobile).strip():
            try:
                norm_mobile = normalize_mobile(str(mobile), default_region)
            except ValueError as exc:
                issues.append(FieldIssue(field="mobile", value=str(mobile), reason=str(exc)))
        return cls(email=norm_email, mobile=norm_mobile, issues=issues, **fields)

    def issue_text(self) -> str:
        return "; ".join(f"{i.field}: {i.reason}" for i in self.issues)
