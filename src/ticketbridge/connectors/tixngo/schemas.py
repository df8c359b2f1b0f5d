"""TIXNGO's own payloads, parsed tolerantly (``extra="allow"``, blank strings as missing).

Field provenance:

* A diff update (platforms.md 6.4, [INFER] in its details): ``ticketId, status,
  previousStatus, updatedAt, owner{id, email, firstName, lastName}, holder{email, firstName,
  lastName}, assignee{...}``. The feed's documented content is "the ticket's status, the
  wallet owner and the ticket holder" [DOC].
* ``event`` and ``spectatorDetails`` are the injection payload's names (platforms.md 6.3
  [DOC]); an update that carries them is read with the same names.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator


def _blank_to_none(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        return _blank_to_none(data)


class TixngoPerson(_Payload):
    """A wallet owner, holder or assignee (or the injected ``spectatorDetails``)."""

    id: str | None = Field(None, validation_alias=AliasChoices("id", "userId", "ownerId"))
    email: str | None = None
    first_name: str | None = Field(None, validation_alias=AliasChoices("firstName", "first_name"))
    last_name: str | None = Field(None, validation_alias=AliasChoices("lastName", "last_name"))

    @property
    def empty(self) -> bool:
        return not (self.id or self.email or self.first_name or self.last_name)


class TixngoAddress(_Payload):
    site: str | None = None
    city: str | None = None
    country_code: str | None = Field(
        None, validation_alias=AliasChoices("countryCode", "country_code")
    )
    zip: str | None = None


class TixngoEvent(_Payload):
    id: str | None = None
    name: str | None = None
    start_time: str | None = Field(None, validation_alias=AliasChoices("startTime", "start_time"))
    address: TixngoAddress | None = None


class TicketUpdate(_Payload):
    """One entry of the diff feed: a ticket as it is now, and the status it came from."""

    ticket_id: str | None = Field(None, validation_alias=AliasChoices("ticketId", "ticket_id"))
    status: str | None = None
    previous_status: str | None = Field(
        None, validation_alias=AliasChoices("previousStatus", "previous_status")
    )
    updated_at: str | None = Field(None, validation_alias=AliasChoices("updatedAt", "updated_at"))
    owner: TixngoPerson | None = None
    holder: TixngoPerson | None = None
    assignee: TixngoPerson | None = None
    spectator: TixngoPerson | None = Field(
        None, validation_alias=AliasChoices("spectatorDetails", "spectator")
    )
    event: TixngoEvent | None = None
