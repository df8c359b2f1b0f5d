"""Connection settings for TIXNGO, the SECUTIX mobile-ticket wallet (platforms.md section 6).

TIXNGO documents that an organizer is reached with an **organizer admin e-mail and an API key**
[DOC], but not how they are sent, nor the path and body keys of the diff (feedback) endpoint
[GAP]. Each of those is a setting here, with the sandbox's shape as the default (platforms.md
6.2 and 6.4 [INFER]): the e-mail and the key in ``X-Organizer-Email`` / ``X-Api-Key``
headers, or ``auth: basic`` for HTTP Basic ``email:apiKey``; ``GET organizer/tickets/diff``
with ``paginationKey`` and ``limit``, answering ``{"tickets": [...], "nextPageKey": ...}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from ticketbridge.connectors.base import ConnectionConfig
from ticketbridge.model import normalize_email
from ticketbridge.model.mobile_status import (
    STATUSES,
    StatusMode,
)


class TixngoConfig(ConnectionConfig):
    """One TIXNGO organizer, reached with its admin e-mail and API key.

    ``status_mode`` says which status list the organizer's feed uses (S-360's
    ``TIXNGO_LIFECYCLE_MODE``): ``lifecycle`` (current) or ``history`` (legacy). A status
    outside that list is a dead letter naming it, never a guess.
    """

    platform: Literal["tixngo"] = "tixngo"
    base_url: str
    organizer_email: str
    api_key: SecretStr
    auth: Literal["headers", "basic"] = "headers"
    email_header: str = "X-Organizer-Email"
    api_key_header: str = "X-Api-Key"
    status_mode: StatusMode = "lifecycle"
    # The diff endpoint [GAP]: path, parameters and body keys, with the sandbox's as defaults.
    diff_path: str = "organizer/tickets/diff"
    key_param: str = "paginationKey"
    limit_param: str = "limit"
    # S-360 pulls batches of 1 000, the recommended value [DOC]; the reporting endpoint
    # allows up to 10 000.
    limit: int = Field(1000, ge=1, le=10_000)
    tickets_key: str = "tickets"
    next_key_field: str = "nextPageKey"

    @field_validator("organizer_email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)  # a ValueError names the bad address

    @field_validator("email_header", "api_key_header", "key_param", "limit_param")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @property
    def statuses(self) -> frozenset[str]:
        return STATUSES[self.status_mode]

    def lease_scope(self) -> str:
        """The organizer this connection reads: every sync reading it shares one lease, so
        only one run per organizer is ever active (the feedback interface "does not support
        simultaneous executions"). Host and e-mail only: never the API key."""
        return f"tixngo:{self.base_url.rstrip('/').lower()}:{self.organizer_email.casefold()}"
