"""HTTP only: typed methods over ``http.ApiClient`` for the ACME Ticketing B2B API.

Auth (``platforms.md`` 8.2): ``x-acme-api-key`` on every call; calls that act as staff also send
``x-acme-session``, opened with ``GET /v2/b2b/customer/session`` (``x-acme-user-name``,
``x-acme-password``, ``x-acme-tenantId``). A session is reopened before it expires and once more
when ACME answers 401 to a session call (revoked or expired early).

Writes that are not idempotent (order create, refund) go through a client that never retries:
ACME documents no idempotency key [GAP], so a blind retry after a timeout could sell twice.
Order update sends absolute quantities, so it is safe to retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ticketbridge.connectors.acme.config import PLATFORM, AcmeConfig
from ticketbridge.connectors.acme.mapping import (
    order_update_body,
    refund_body,
    session_deadline,
    time_param,
)
from ticketbridge.connectors.acme.schemas import (
    EventInstance,
    EventTemplate,
    Order,
    Organization,
    Refund,
    Session,
)
from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.errors import AcmeRefused, AuthError, ConfigError, FatalError, RetryableError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import HeaderToken
from ticketbridge.http.outcomes import Action

_MAX_PAGES = 1000
_SESSION_MARGIN_S = 30.0  # reopen a session this long before ACME says it ends
_NOT_FOUND_IS_ANSWER = {404: Action.OK}
_REFUSAL_IS_ANSWER = {400: Action.OK, 404: Action.OK, 409: Action.OK, 422: Action.OK}


class AcmeClient(ClientKit):
    """One API user of one ACME tenant. Not shared between event loops."""

    def __init__(
        self,
        cfg: AcmeConfig,
        ctx: HttpContext,
        *,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self._clock = clock
        common: dict[str, Any] = {
            "platform": PLATFORM,
            "account": f"{PLATFORM}:{cfg.base_url}",
            "auth": HeaderToken("x-acme-api-key", cfg.api_key),
            "timeout_s": timeout_s,
        }
        self.api = self.own(connection_client(cfg, ctx, max_retries=max_retries, **common))
        # Writes ACME cannot deduplicate (no idempotency key) are sent once, never retried.
        self._once = self.own(connection_client(cfg, ctx, max_retries=0, **common))
        self._session: Session | None = None
        self._session_until = 0.0
        self._login_lock = asyncio.Lock()

    # -- session ---------------------------------------------------------------------------

    async def login(self) -> Session:
        """Open a new B2B session (``GET /v2/b2b/customer/session``)."""
        cfg = self.cfg
        if cfg.username is None or cfg.password is None:
            raise ConfigError("ACME order calls need the API user's username and password")
        headers = {
            "x-acme-user-name": cfg.username,
            "x-acme-password": cfg.password.get_secret_value(),
        }
        if cfg.tenant_id:
            headers["x-acme-tenantId"] = cfg.tenant_id
        _, body = await self._send("GET", "v2/b2b/customer/session", headers=headers)
        session = Session.model_validate(body)
        self._session = session
        self._session_until = session_deadline(session.expireMs, self._clock())
        return session

    async def session(self) -> Session:
        """The current session, opened or reopened when it is (nearly) expired."""
        async with self._login_lock:
            if self._session is None or self._clock() >= self._session_until - _SESSION_MARGIN_S:
                await self.login()
            assert self._session is not None
            return self._session

    async def permissions(self) -> list[str]:
        """The API user's permission codes, as the session reports them in ``roles``."""
        return list((await self.session()).roles)

    # -- plumbing --------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        session: bool = False,
        once: bool = False,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        table: Mapping[int, Action] | None = None,
    ) -> tuple[int, Any]:
        api = self._once if once else self.api
        for attempt in (0, 1):
            sent = dict(headers or {})
            if session:
                sent["x-acme-session"] = (await self.session()).session
            try:
                response = await api.request(
                    method, path, params=params, json_body=json_body, headers=sent, table=table
                )
            except AuthError as exc:
                if session and exc.status == 401 and attempt == 0:
                    self._session = None  # expired or revoked early: log in again, once
                    continue
                raise
            if not response.content:
                return response.status_code, None
            try:
                return response.status_code, response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RetryableError(
                    f"{method} /{path}: malformed JSON body",
                    platform=PLATFORM,
                    status=response.status_code,
                ) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _refusal(status: int, body: Any, what: str) -> AcmeRefused:
        message = body.get("message") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        return AcmeRefused(f"{what}: {message or 'refused'}", code=code, status=status)

    async def _list(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        session: bool = False,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every item of a ``{list, pagination{count}}`` envelope (or a bare ``{list}``)."""
        out: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            query = {**(params or {}), "page": page, "pageSize": page_size}
            _, body = await self._send("GET", path, params=query, session=session)
            items = body.get("list") if isinstance(body, dict) else body
            if not isinstance(items, list):
                raise FatalError(f"GET /{path}: expected a list", platform=PLATFORM)
            out.extend(i for i in items if isinstance(i, dict))
            pagination = body.get("pagination") if isinstance(body, dict) else None
            count = pagination.get("count") if isinstance(pagination, dict) else None
            if not items or count is None or len(out) >= int(count):
                break
        return out

    async def _b2c_headers(self) -> dict[str, str]:
        tenant = self.cfg.tenant_id or (await self.session()).tenantId
        return {"x-b2c-tenant-id": str(tenant)} if tenant else {}

    # -- events ----------------------------------------------------------------------------

    async def event_templates(self) -> list[EventTemplate]:
        items = await self._list("v2/b2b/event/templates")
        return [EventTemplate.model_validate(i) for i in items]

    async def event_template(self, template_id: str) -> EventTemplate | None:
        status, body = await self._send(
            "GET", f"v2/b2b/event/template/{template_id}", table=_NOT_FOUND_IS_ANSWER
        )
        return None if status == 404 else EventTemplate.model_validate(body)

    async def event_instances(
        self, start: datetime, end: datetime, template_id: str | None = None
    ) -> list[EventInstance]:
        """Instances starting in ``[start, end)``, of one template when ``template_id`` is set
        (ACME documents no template filter, so it is applied here)."""
        items = await self._list(
            "v2/b2b/event/instances",
            {"startTime": time_param(start), "endTime": time_param(end)},
            page_size=500,
        )
        found = [EventInstance.model_validate(i) for i in items]
        if template_id is not None:
            found = [e for e in found if e.templateId == template_id]
        return sorted(found, key=lambda e: e.start)

    # -- organizations ---------------------------------------------------------------------

    async def organizations(self) -> list[Organization]:
        """``GET /v2/b2b/organizations`` [INFER: path not in the public docs]."""
        items = await self._list("v2/b2b/organizations", session=True)
        return [Organization.model_validate(i) for i in items]

    async def organization(self, organization_id: str) -> Organization | None:
        status, body = await self._send(
            "GET",
            f"v2/b2b/organizations/{organization_id}",
            session=True,
            table=_NOT_FOUND_IS_ANSWER,
        )
        return None if status == 404 else Organization.model_validate(body)

    # -- orders ----------------------------------------------------------------------------

    async def create_organization_order(self, organization_id: str, body: dict[str, Any]) -> Order:
        """``POST /v2/b2b/orders/organizations/{id}``: sent once, never retried (see module)."""
        status, answer = await self._send(
            "POST",
            f"v2/b2b/orders/organizations/{organization_id}",
            session=True,
            once=True,
            json_body={**body, "organizationId": organization_id},
            table=_REFUSAL_IS_ANSWER,
        )
        if status >= 400:
            raise self._refusal(status, answer, "order create")
        return Order.model_validate(answer)

    async def order(self, order_id: str) -> Order | None:
        """``GET /v2/b2c/orders/{id}`` (a B2C path: it also needs ``x-b2c-tenant-id``)."""
        status, body = await self._send(
            "GET",
            f"v2/b2c/orders/{order_id}",
            session=True,
            headers=await self._b2c_headers(),
            table=_NOT_FOUND_IS_ANSWER,
        )
        return None if status == 404 else Order.model_validate(body)

    async def update_order(self, order_id: str, quantities: Mapping[str, int]) -> Order:
        """``POST /v2/b2b/orders/update``: set item quantities. A lower quantity refunds the
        difference; 0 cancels the item. Absolute values, so a retry changes nothing."""
        status, answer = await self._send(
            "POST",
            "v2/b2b/orders/update",
            session=True,
            json_body=order_update_body(order_id, quantities),
            table=_REFUSAL_IS_ANSWER,
        )
        if status >= 400:
            raise self._refusal(status, answer, "order update")
        return Order.model_validate(answer)

    async def refund(
        self,
        order_id: str,
        quantities: Mapping[str, int] | None = None,
        *,
        reason: str = "Miscellaneous",
        notes: str | None = None,
    ) -> Refund:
        """``POST /v1/b2b/b2b/refunds`` (the doubled ``b2b`` is real): the given item
        quantities, or the whole order when ``quantities`` is None. Sent once."""
        status, answer = await self._send(
            "POST",
            "v1/b2b/b2b/refunds",
            session=True,
            once=True,
            json_body=refund_body(order_id, quantities, reason=reason, notes=notes),
            table=_REFUSAL_IS_ANSWER,
        )
        if status >= 400:
            raise self._refusal(status, answer, "refund")
        return Refund.model_validate(answer)


__all__ = ["AcmeClient"]
