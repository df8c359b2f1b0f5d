"""The SECUTIX 360 sandbox: the REST-RPC methods ticketbridge uses, over :class:`S360Store`.

Faithful to ``platforms.md`` section 7: every method is ``POST /tnci/backend-apis/{service}/
{version}/{methodName}`` with a JSON body, and every answer, errors and injected faults
included, is the envelope ``{requestId, statusCode, statusDetail}`` (``success`` or an error
code) with the method's result beside it. Auth [partly INFER]: a Bearer token from
``authenticationService/v1/getToken`` (operator login and password, lifetime
``token_ttl_s``) or HTTP Basic with the same credentials. An expired or unknown token is
HTTP 401 with ``TOKEN_EXPIRED`` / ``INVALID_TOKEN`` (``mutate`` ``expired_answer`` makes it
HTTP 200 with the code). Business errors are HTTP 200 with their code [INFER]; an unknown
method is HTTP 404 ``UNKNOWN_METHOD``. Faults (the shared ``/_sandbox/faults``) answer 429
``TOO_MANY_REQUESTS`` with Retry-After and 503 ``TECHNICAL_ERROR``; a share of records
refused with an envelope error is ``mutate`` op ``refuse``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.secutix360.config import (
    PLATFORM,
    SANDBOX_LOGIN,
    SANDBOX_PASSWORD,
)
from ticketbridge.connectors.secutix360.sandbox_store import S360Error, S360Store
from ticketbridge.sandbox import JsonResponse, SandboxApp, Stats

PREFIX = "/tnci/backend-apis"
TOKEN_PATH = f"{PREFIX}/authenticationService/{{version}}/getToken"
ACCESS_CONTROL = "externalAccessControlService"
CONTACTS = "contactInformationPublicService"
_FAULT_CODES = {429: "TOO_MANY_REQUESTS", 401: "AUTHENTICATION_FAILED", 403: "ACCESS_DENIED"}


def basic_parts(encoded: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, secret = raw.partition(":")
    return user, secret


class _Api:
    def __init__(self, store: S360Store) -> None:
        self.store = store

    def envelope(
        self, result: dict[str, Any] | None = None, *, code: str = "success", detail: str = ""
    ) -> dict[str, Any]:
        return {
            "requestId": self.store.request_id(),
            "statusCode": code,
            "statusDetail": detail or ("OK" if code == "success" else code),
            **(result or {}),
        }

    def error(self, exc: S360Error) -> JsonResponse:
        return JsonResponse(self.envelope(code=exc.code, detail=exc.detail), status_code=exc.http)

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise S360Error("INVALID_PARAMETER", "The body is not JSON") from None
        if not isinstance(body, dict):
            raise S360Error("INVALID_PARAMETER", "The body must be a JSON object")
        return body

    def method(
        self, handler: Callable[[dict[str, Any]], dict[str, Any]], *, guarded: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Credentials (unless the token method), the JSON body, the envelope."""

        async def endpoint(request: Request) -> Response:
            try:
                if guarded:
                    self.store.authorize(request.headers.get("authorization", ""), basic_parts)
                result = handler(await self._body(request))
            except S360Error as exc:
                return self.error(exc)
            return JsonResponse(self.envelope(result))

        return endpoint

    async def unknown(self, request: Request) -> Response:
        path = request.url.path.removeprefix(PREFIX)
        return self.error(S360Error("UNKNOWN_METHOD", f"No method {path}", 404))


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 0,
    today: datetime | None = None,
    token_ttl_s: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    accept_unknown_tickets: bool = True,
) -> SandboxApp:
    """An S-360 institution with ``records`` tickets ``S360-000001``… (injected into
    TIXNGO, no external status yet) and ``records // 10`` buyer contacts. ``token_ttl_s``
    is the token lifetime; ``accept_unknown_tickets`` whether a status for another ticket id
    is taken (a new row) or refused with ``TICKET_NOT_FOUND``."""
    stats = Stats()
    store = S360Store(
        stats=stats,
        seed=seed,
        records=records,
        today=today,
        login=SANDBOX_LOGIN,
        password=SANDBOX_PASSWORD,
        token_ttl_s=token_ttl_s,
        clock=clock,
        accept_unknown_tickets=accept_unknown_tickets,
    )
    stats.reset()
    api = _Api(store)
    m = api.method
    methods: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
        (ACCESS_CONTROL, "updateExternalTicketStatus"): m(store.store_ticket),
        (ACCESS_CONTROL, "getAccessControlCatalog"): m(lambda body: store.catalog()),
        (CONTACTS, "searchContact"): m(store.search_contact),
        (CONTACTS, "createCulturalContacts"): m(store.create_contacts),
        (CONTACTS, "getContactData"): m(store.get_contact),
    }
    routes: list[BaseRoute] = [
        Route(TOKEN_PATH, m(store.issue_token, guarded=False), methods=["POST"])
    ]
    routes += [
        Route(f"{PREFIX}/{service}/{{version}}/{name}", handler, methods=["POST"])
        for (service, name), handler in methods.items()
    ]
    routes.append(Route(PREFIX + "/{rest:path}", api.unknown, methods=["GET", "POST"]))

    def error_body(status: int, message: str) -> Response:
        code = _FAULT_CODES.get(status, "TECHNICAL_ERROR" if status >= 500 else "ERROR")
        return api.error(S360Error(code, message, status))

    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=error_body,
        credentials={"operator_login": SANDBOX_LOGIN, "operator_password": SANDBOX_PASSWORD},
    )


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (the password as an ``${ENV}``
    reference)."""
    return {
        "platform": PLATFORM,
        "base_url": url.rstrip("/"),
        "operator_login": SANDBOX_LOGIN,
        "operator_password": "${S360_OPERATOR_PASSWORD}",
    }
