"""Connection settings and the options of the ``ticket_feedback`` object.

Facts come from ``platforms.md`` section 7 (SECUTIX 360). The REST-RPC transport is [DOC]:
``POST {base_url}/tnci/backend-apis/{service}/{version}/{methodName}`` with a JSON body and a
``{requestId, statusCode, statusDetail}`` envelope on every answer. What the sources mark
[GAP] or [INFER] is a setting here, with the sandbox's shape as its default:

* the auth handshake [partly INFER]: a Bearer token obtained with the operator's login and
  password from a token method (its service, version, method, body and answer key are
  settings), or HTTP Basic with the same credentials;
* which envelope ``statusCode`` means what ([INFER], :data:`DEFAULT_STATUS_CODES`);
* the method that stores the external (TIXNGO) status on a ticket [GAP: no public name],
  its body's key names [INFER], and the version of the contact service ("v2_xx" [DOC]).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from ticketbridge.connectors.base import ConnectionConfig, ObjectOptions

PLATFORM = "secutix360"

# The fake credentials the sandbox accepts (never real ones: platforms.md, "Secrets").
SANDBOX_LOGIN = "sandbox-operator"
SANDBOX_PASSWORD = "sandbox-s360-password"  # noqa: S105

CodeAction = Literal["renew", "auth", "retry", "rate_limited", "reject", "fail"]
"""What a non-success ``statusCode`` makes the connector do:

* ``renew``: the token expired or is unknown: obtain a new one and send the call once more;
* ``auth``: the credentials are refused (AuthError: the connection needs new ones);
* ``retry`` / ``rate_limited``: an outage: retried with back-off (RetryableError/RateLimited);
* ``reject``: this record is refused: its ``statusDetail`` becomes the dead letter's reason;
* ``fail``: the call as such is wrong (FatalError: the run stops).
"""

# [INFER] S-360 publishes no list of its status codes. These are the codes the sandbox
# answers; any other non-success code is ``unknown_code_action`` (by default a refusal of
# the record, so an unexpected code dead-letters a ticket instead of stopping the feed).
DEFAULT_STATUS_CODES: dict[str, CodeAction] = {
    "INVALID_TOKEN": "renew",
    "TOKEN_EXPIRED": "renew",
    "AUTHENTICATION_FAILED": "auth",
    "ACCESS_DENIED": "auth",
    "TECHNICAL_ERROR": "retry",
    "SERVICE_UNAVAILABLE": "retry",
    "TOO_MANY_REQUESTS": "rate_limited",
    "INVALID_PARAMETER": "reject",
    "TICKET_NOT_FOUND": "reject",
    "CONTACT_NOT_FOUND": "reject",
    "UNKNOWN_METHOD": "fail",
}

# [INFER] key names of the external-status body; platforms.md 7.5 names the stored values
# (status, mode, owner, beneficiary), not the wire keys.
DEFAULT_TICKET_FIELDS: dict[str, str] = {
    "ticket_id": "ticketId",
    "status": "externalStatus",
    "mode": "externalStatusMode",
    "status_date": "externalStatusDate",
    "previous_status": "previousExternalStatus",
    "owner": "ownerContactNumber",
    "holder": "beneficiaryContactNumber",
}


class Secutix360Config(ConnectionConfig):
    """One S-360 institution reached over REST-RPC with an operator's credentials."""

    platform: Literal["secutix360"]
    base_url: str = "https://institution.ws.secutix.com"
    """``https://{institution}.ws.secutix.com`` [DOC]; the RPC path is appended."""
    api_prefix: str = "tnci/backend-apis"
    operator_login: str
    operator_password: SecretStr
    auth: Literal["token", "basic"] = "token"
    """[partly INFER] a Bearer token from ``token_method`` (the apidocs mention a token), or
    HTTP Basic with the same operator credentials."""
    token_service: str = "authenticationService"  # noqa: S105 - a name, not a secret
    """[INFER] the service, version and method that issue a token (POST, JSON body)."""
    token_version: str = "v1"  # noqa: S105 - a name, not a secret
    token_method: str = "getToken"  # noqa: S105 - a name, not a secret
    token_login_field: str = "login"  # noqa: S105 - a name, not a secret
    token_password_field: str = "password"  # noqa: S105 - a key name, not a secret
    token_answer_field: str = "token"  # noqa: S105 - a key name, not a secret
    token_lifetime_field: str = "expiresIn"  # noqa: S105 - a name, not a secret
    token_lifetime_s: float = Field(default=3600.0, gt=0)
    """Assumed when the token answer has no lifetime [INFER]."""
    token_refresh_margin_s: float = Field(default=60.0, ge=0)

    access_control_service: str = "externalAccessControlService"  # [DOC]
    access_control_version: str = "v1_6"  # [DOC]
    contact_service: str = "contactInformationPublicService"  # [DOC]
    contact_version: str = "v2_24"
    """[INFER] the docs say ``v2_xx``: set the version the institution runs."""
    status_method: str = "updateExternalTicketStatus"
    """[GAP] the method storing a ticket's external (TIXNGO) status, owner and beneficiary is
    not published: this name is the sandbox's, in ``access_control_service``."""
    status_service: str | None = None
    """The service of ``status_method`` when it is not ``access_control_service``."""
    search_contact_method: str = "searchContact"  # [DOC]
    create_contacts_method: str = "createCulturalContacts"  # [DOC]
    get_contact_method: str = "getContactData"  # [DOC]
    catalog_method: str = "getAccessControlCatalog"  # [DOC] what ``check`` calls
    ticket_fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TICKET_FIELDS))
    """Wire key of each value of the external-status body [INFER]; a partial map overrides
    the defaults."""

    success_code: str = "success"  # [DOC]
    status_codes: dict[str, CodeAction] = Field(default_factory=lambda: dict(DEFAULT_STATUS_CODES))
    """``statusCode`` -> action [INFER]; a partial map overrides the defaults."""
    unknown_code_action: CodeAction = "reject"

    concurrency: int = Field(default=8, ge=1)
    """Ticket calls (one per ticket) and contact searches in flight at once."""
    create_batch_size: int = Field(default=50, ge=1)
    """[INFER] cultural contacts per ``createCulturalContacts`` call (it takes a list)."""
    contact_cache_size: int = Field(default=100_000, ge=0)
    """E-mail -> contact number remembered for a run; beyond it a person is searched again."""

    @model_validator(mode="after")
    def _merge_defaults(self) -> Secutix360Config:
        self.status_codes = {**DEFAULT_STATUS_CODES, **self.status_codes}
        self.ticket_fields = {**DEFAULT_TICKET_FIELDS, **self.ticket_fields}
        return self

    def rpc_path(self, service: str, version: str, method: str) -> str:
        return f"{self.api_prefix.strip('/')}/{service}/{version}/{method}"


class TicketFeedbackOptions(ObjectOptions):
    """Options of the ``ticket_feedback`` object (the sync's ``destination:`` block)."""

    default_mode: Literal["lifecycle", "history"] = "lifecycle"
    """The mode of a ticket whose ``mobile_status_mode`` is unset (S-360's
    ``TIXNGO_LIFECYCLE_MODE``: lifecycle is current, history the legacy list)."""
    check_status: bool = True
    """Refuse a status that is not in its mode's list (platforms.md 6.5)."""
    person_without_email: Literal["skip", "reject"] = "skip"
    """A wallet owner or holder without an e-mail cannot be matched to a cultural contact
    (S-360 matches by e-mail): ``skip`` stores the ticket's status and leaves that person
    (and the ticket's owner or beneficiary) as it is; ``reject`` dead-letters the ticket."""
    create_login: bool = False
    """``createLogin`` of each new cultural contact (an online account for the person)."""
