"""HTTP only: typed methods over ``http.ApiClient`` for S-360's REST-RPC backend APIs.

Every call is ``POST {base_url}/{api_prefix}/{service}/{version}/{methodName}`` with a JSON
body [DOC 7.2], and every answer carries ``{requestId, statusCode, statusDetail}``. Two layers
of errors, translated in one place (:meth:`Secutix360Client.call`):

* HTTP: 5xx retried and 429 honouring Retry-After by ``ApiClient``; a 401 with a Bearer token
  renews the token once (``RefreshingBearer``) and then is an AuthError;
* the envelope: a non-success ``statusCode`` is looked up in ``status_codes`` (a setting):
  ``renew`` obtains a new token and sends the call once more, ``retry``/``rate_limited`` back
  off and retry like a 5xx, ``auth`` is an AuthError, ``reject`` a RecordRejected carrying the
  ``statusDetail`` (the caller dead-letters the record), ``fail`` a FatalError.

An answer without the envelope is not an S-360 answer: an error of the run, never "nothing".
Secrets live in the auth flows only; no message here contains them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr, ValidationError

from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.connectors.secutix360.config import PLATFORM, CodeAction, Secutix360Config
from ticketbridge.connectors.secutix360.schemas import (
    ContactOut,
    CreationResult,
    Envelope,
    SearchResult,
)
from ticketbridge.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RecordRejected,
    RetryableError,
)
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import Auth, Basic, RefreshingBearer
from ticketbridge.http.client import ApiClient, decode_json
from ticketbridge.http.outcomes import Action
from ticketbridge.http.retry import parse_retry_after

# An RPC answers business errors in its envelope, whatever the HTTP status [INFER]: these
# statuses are read for their envelope instead of being taken for the error by status alone.
_READ_ENVELOPE = {400: Action.OK, 404: Action.OK, 409: Action.OK, 422: Action.OK}


class Secutix360Client(ClientKit):
    def __init__(
        self,
        cfg: Secutix360Config,
        ctx: HttpContext,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self._sleep = ctx.sleep
        self._rng = random.Random()
        self.bearer: RefreshingBearer | None = None
        auth: Auth
        if cfg.auth == "token":
            token_account = f"{PLATFORM}:token:{cfg.base_url}"
            self._token_api = self.own(
                connection_client(cfg, ctx, platform=PLATFORM, account=token_account, auth=None)
            )
            extra = {"clock": clock} if clock is not None else {}
            self.bearer = RefreshingBearer(
                self.fetch_token, margin_s=cfg.token_refresh_margin_s, **extra
            )
            auth = self.bearer
        else:
            auth = Basic(cfg.operator_login, cfg.operator_password)
        # One rate budget per institution, whichever sync writes to it (DESIGN guarantee 6).
        account = f"{PLATFORM}:{cfg.base_url}"
        self.api = self.own(
            connection_client(cfg, ctx, platform=PLATFORM, account=account, auth=auth)
        )
        # Creating contacts is not idempotent: a create whose answer was lost must not be sent
        # again blindly (the caller searches first), so this client never retries by itself.
        self._create_api = self.own(
            connection_client(
                cfg, ctx, platform=PLATFORM, account=account, auth=auth, max_retries=0
            )
        )

    # -- the RPC call and its envelope ---------------------------------------------------

    async def call(
        self, service: str, version: str, method: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """One method call; the answer (envelope included) when ``statusCode`` is success."""
        return await self._call(self.api, self.cfg.rpc_path(service, version, method), body)

    async def _call(
        self,
        api: ApiClient,
        path: str,
        body: dict[str, Any],
        *,
        renewable: bool = True,
        retries: int | None = None,
    ) -> dict[str, Any]:
        limit = self.cfg.max_retries if retries is None else retries
        attempt = 0
        renewed = False
        while True:
            used = await self.bearer.token() if self.bearer and renewable else None
            response = await api.request("POST", path, json_body=body, table=_READ_ENVELOPE)
            answer, envelope = self._envelope(path, response)
            if envelope.status_code == self.cfg.success_code:
                return answer
            action = self.cfg.status_codes.get(envelope.status_code, self.cfg.unknown_code_action)
            if action == "renew" and used is not None and self.bearer and not renewed:
                renewed = True
                await self.bearer.renew(used)
                continue
            if action in ("retry", "rate_limited") and attempt < limit:
                retry_after = _retry_after(response) if action == "rate_limited" else None
                attempt += 1
                await self._sleep(api.retry.delay(attempt - 1, retry_after, self._rng))
                continue
            raise self._error(path, action, envelope, response)

    def _envelope(self, path: str, response: Any) -> tuple[dict[str, Any], Envelope]:
        status = response.status_code
        try:
            answer = decode_json(response) if response.content else None
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
            return answer, Envelope.model_validate(answer)
        except (ValueError, ValidationError):
            pass
        if status >= 400:
            raise FatalError(
                f"POST /{path}: HTTP {status} without the S-360 envelope "
                "(is the service, version or method name right?)",
                platform=PLATFORM,
                status=status,
            )
        raise RetryableError(
            f"POST /{path}: the answer has no {{requestId, statusCode, statusDetail}} envelope",
            platform=PLATFORM,
            status=status,
        )

    @staticmethod
    def _error(path: str, action: CodeAction, envelope: Envelope, response: Any) -> ConnectorError:
        method = path.rsplit("/", 1)[-1]
        detail = envelope.status_detail or "no statusDetail"
        message = f"{method}: {envelope.status_code}: {detail}"
        kw: dict[str, Any] = {
            "platform": PLATFORM,
            "status": response.status_code,
            "request_id": envelope.request_id,
        }
        if action == "reject":
            return RecordRejected(message, **kw)
        if action in ("auth", "renew"):
            return AuthError(message, **kw)
        if action == "rate_limited":
            retry_after = _retry_after(response) if response is not None else None
            return RateLimited(message, retry_after=retry_after, **kw)
        if action == "retry":
            return RetryableError(message, **kw)
        return FatalError(message, **kw)

    # -- auth ----------------------------------------------------------------------------

    async def fetch_token(self) -> tuple[SecretStr, float]:
        """The operator's login and password for a token: ``(token, lifetime s)``."""
        cfg = self.cfg
        body = {
            cfg.token_login_field: cfg.operator_login,
            cfg.token_password_field: cfg.operator_password.get_secret_value(),
        }
        path = cfg.rpc_path(cfg.token_service, cfg.token_version, cfg.token_method)
        try:
            answer = await self._call(self._token_api, path, body, renewable=False)
        except RecordRejected as exc:
            # A token method refusing its one input refuses the credentials.
            raise AuthError(exc.message, platform=PLATFORM, status=exc.status) from None
        token = answer.get(cfg.token_answer_field)
        if not isinstance(token, str) or not token:
            raise FatalError(
                f"{cfg.token_method}: the answer has no {cfg.token_answer_field!r}",
                platform=PLATFORM,
            )
        lifetime = answer.get(cfg.token_lifetime_field)
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else None
        return SecretStr(token), seconds or cfg.token_lifetime_s

    async def pause(self, attempt: int, error: RetryableError) -> None:
        """The back-off before retry ``attempt + 1`` of a call its caller retries itself."""
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        await self._sleep(self.api.retry.delay(attempt, retry_after, self._rng))

    async def check_credentials(self) -> None:
        """Obtain a token now (token auth); Basic has nothing to obtain. Raises AuthError."""
        if self.bearer is not None:
            await self.bearer.token()

    # -- external access control ---------------------------------------------------------

    async def store_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ticket's external status, owner and beneficiary (``status_method`` [GAP])."""
        cfg = self.cfg
        service = cfg.status_service or cfg.access_control_service
        return await self.call(service, cfg.access_control_version, cfg.status_method, body)

    async def access_control_catalog(self) -> dict[str, Any]:
        cfg = self.cfg
        return await self.call(
            cfg.access_control_service, cfg.access_control_version, cfg.catalog_method, {}
        )

    # -- cultural contacts ---------------------------------------------------------------

    async def search_contacts(self, email: str) -> list[ContactOut]:
        """``searchContact`` by e-mail: the contacts whose address is ``email`` (compared
        case-insensitively here too, whatever matching the search itself does)."""
        cfg = self.cfg
        answer = await self.call(
            cfg.contact_service,
            cfg.contact_version,
            cfg.search_contact_method,
            {"criteria": {"email": email}},
        )
        found = SearchResult.model_validate(answer).contacts
        wanted = email.casefold()
        return [c for c in found if (c.email or "").casefold() == wanted]

    async def create_cultural_contacts(self, contacts: list[dict[str, Any]]) -> CreationResult:
        """``createCulturalContacts([CulturalContactData])``: each has an ``identifier``; the
        answer's ``identifierContactMap`` gives the contact number made for it. The body's
        key (``culturalContacts``) is [INFER]. Never retried here: see ``_create_api``."""
        cfg = self.cfg
        path = cfg.rpc_path(cfg.contact_service, cfg.contact_version, cfg.create_contacts_method)
        answer = await self._call(self._create_api, path, {"culturalContacts": contacts}, retries=0)
        return CreationResult.model_validate(answer)

    async def get_contact(self, contact_number: str) -> dict[str, Any]:
        cfg = self.cfg
        return await self.call(
            cfg.contact_service,
            cfg.contact_version,
            cfg.get_contact_method,
            {"contactNumber": _number(contact_number), "details": ["GENERAL"]},
        )


def _number(value: str) -> int | str:
    """Contact numbers are numbers in S-360; one that is not stays text."""
    return int(value) if value.isdigit() else value


def _retry_after(response: Any) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))
