"""The Tiqets Supplier API as a Starlette app (``tiqets-supplier-api.yaml``, v2 paths).

Every request must carry the shared secret in ``API-Key``; anything else is 403 before routing
(so unknown paths do not reveal themselves). Context errors are 400
``{"error_code", "error", "message"}``; failures of ACME or of the database are 500 with a short
JSON reason (the spec lets any 5xx through and asks for an informative body).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import structlog
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketbridge.connectors.acme.config import AcmeConfig
from ticketbridge.engine.state.db import create_state_engine, migrate
from ticketbridge.errors import SupplierError, TicketbridgeError
from ticketbridge.http import HttpContext
from ticketbridge.supplier.config import SupplierApiConfig
from ticketbridge.supplier.errors import wrong_type
from ticketbridge.supplier.requests import parse_reservation
from ticketbridge.supplier.reservations import ReservationStore
from ticketbridge.supplier.service import SupplierService

log = structlog.get_logger("ticketbridge.supplier")

FORBIDDEN_MESSAGE = "Forbidden - Missing or incorrect API key"


class _ApiKeyGuard:
    """ASGI middleware: 403 unless ``API-Key`` equals the shared secret (constant-time)."""

    def __init__(self, app: ASGIApp, *, secret: str, body: bytes) -> None:
        self.app = app
        self._secret = secret.encode()
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name.lower() == b"api-key":
                given = value
                break
        if not given or not hmac.compare_digest(given, self._secret):
            media = "text/plain" if self._body else None
            await Response(self._body, status_code=403, media_type=media)(scope, receive, send)
            return
        await self.app(scope, receive, send)


Endpoint = Callable[[Request], Awaitable[Response]]


class _TooLarge(Exception):
    """A request body over ``max_request_kb``: answered 413, read no further."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit:,} bytes (max_request_kb)")


def _answer(handler: Endpoint) -> Endpoint:
    """Turn the errors a handler raises into the spec's answers."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except SupplierError as exc:
            return JSONResponse(exc.body(), status_code=400)
        except _TooLarge as exc:
            return JSONResponse({"error": "Payload too large", "message": str(exc)}, 413)
        except TicketbridgeError as exc:
            # ACME unreachable or refusing, or the database: Tiqets logs it and retries later.
            log.warning("supplier.failed", path=request.url.path, error=str(exc))
            return JSONResponse({"error": "Service error", "message": str(exc)}, status_code=500)

    return endpoint


async def _body(request: Request, limit: int) -> bytes:
    """The request body, never more than ``limit`` bytes of it held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise _TooLarge(limit)
    return bytes(raw)


async def _json(request: Request, limit: int) -> Any:
    raw = await _body(request, limit)
    try:
        return json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: a body nested deeper than the parser goes is not a JSON object.
        raise wrong_type("body", "a JSON object", raw.decode("utf-8", "replace")) from None


def create_app(
    config: SupplierApiConfig,
    acme_config: AcmeConfig,
    store: str | Engine,
    http_context: HttpContext | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The Supplier API for ``config`` in front of the ACME connection ``acme_config``.

    ``store`` is the state database (URL or engine; migrated here, so the reservation tables
    exist). ``clock`` (aware datetimes) is for tests. The app's ``state.supplier`` is the
    :class:`SupplierService` behind it; the ACME client opens on the first request and closes
    with the app's lifespan.
    """
    engine = create_state_engine(store) if isinstance(store, str) else store
    migrate(engine)
    service = SupplierService(
        config, acme_config, ReservationStore(engine, clock), http_context or HttpContext(), clock
    )
    limit = config.max_request_kb * 1000

    async def products(request: Request) -> Response:
        return JSONResponse(await service.products())

    async def availability(request: Request) -> Response:
        product_id = request.path_params["product_id"]
        return JSONResponse(await service.availability(product_id, dict(request.query_params)))

    async def reservation(request: Request) -> Response:
        product_id = request.path_params["product_id"]
        service.product(product_id)  # 1001 before looking at the body
        parsed = parse_reservation(await _json(request, limit))
        return JSONResponse(await service.reserve(product_id, parsed))

    async def booking(request: Request) -> Response:
        test = request.headers.get("tiqets-test-order", "").strip().lower() == "true"
        booked = await service.book(await _json(request, limit), test_order=test)
        body = {
            "booking_id": booked.booking_id,
            "barcode_format": "QRCODE",
            "barcode_scope": "ticket",
            "tickets": booked.barcodes,
        }
        return JSONResponse(body, headers={"X-Acme-Order-Id": str(booked.acme_order_id)})

    async def cancellation(request: Request) -> Response:
        detail = await service.cancel(request.path_params["booking_id"])
        # Not part of the spec (Tiqets ignores it): what ACME did, for logs and the demo.
        note = ";".join(f"{k}={v}" for k, v in detail.items())
        return Response(status_code=204, headers={"X-Acme-Cancellation": note})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await service.aclose()
        if isinstance(store, str):
            engine.dispose()

    app = Starlette(
        routes=[
            Route("/v2/products", _answer(products), methods=["GET"]),
            Route("/v2/products/{product_id}/availability", _answer(availability), methods=["GET"]),
            Route("/v2/products/{product_id}/reservation", _answer(reservation), methods=["POST"]),
            Route("/v2/booking", _answer(booking), methods=["POST"]),
            Route("/v2/booking/{booking_id}", _answer(cancellation), methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )
    app.state.supplier = service
    app.add_middleware(
        _ApiKeyGuard,
        secret=config.api_key.get_secret_value(),
        body=FORBIDDEN_MESSAGE.encode() if config.forbidden_body == "tiqets_message" else b"",
    )
    return app


async def serve_supplier(
    config: SupplierApiConfig,
    acme_config: AcmeConfig,
    store: str | Engine,
    http_context: HttpContext | None = None,
) -> None:
    """Serve the Supplier API on ``config.host:config.port`` until cancelled.

    Plain HTTP: Tiqets requires HTTPS, so production puts a TLS-terminating proxy in front.
    """
    app = create_app(config, acme_config, store, http_context)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=config.host, port=config.port, log_level="warning", access_log=False
        )
    )
    await server.serve()
