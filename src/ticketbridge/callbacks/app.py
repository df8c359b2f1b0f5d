"""Airship Wallet's pass callbacks as a Starlette app (platforms.md 3.7).

Wallet POSTs ``{baseUrl}/pass/install``, ``{baseUrl}/pass/uninstall`` and
``{baseUrl}/pass/{id}/personalize`` with the headers registered for the project. Invariants:

* A request without the registered secret header, or with another value (compared in constant
  time), is answered 401 before its path, method or body is looked at, and nothing is
  recorded. So an unknown path does not reveal itself either.
* With the secret: an install or uninstall is recorded in the state store as its pass's status
  (the newest report per pass wins, see ``StateStore.record_pass_install``), then answered
  200. A body that is not a pass event, or names no pass, is 400; a state store that cannot
  write is 500, so Wallet delivers it again. Personalize callbacks are acknowledged and
  logged only: they carry a holder's entered data, which ticketbridge does not keep.
* Paths are matched by their end (``.../pass/install``): a proxy may or may not strip the
  base URL's path.
* Neither the secret nor any header value reaches a log line, a response or the database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticketbridge.connectors.airship_wallet.config import AirshipWalletConfig, WalletCallbacks
from ticketbridge.connectors.airship_wallet.schemas import (
    CallbackEvent,
    check_callback_secret,
    verify_callback,
)
from ticketbridge.engine.state.base import PassInstall, StateStore
from ticketbridge.errors import CallbackRefused, StateError

log = structlog.get_logger("ticketbridge.callbacks")

MAX_BODY = 64 * 1024
"""A pass event is a few hundred bytes; anything far larger is not one."""

STATUS: dict[str, Literal["installed", "uninstalled"]] = {
    "install": "installed",
    "uninstall": "uninstalled",
}


def _kind(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "pass" and parts[-1] in STATUS:
        return parts[-1]
    if len(parts) >= 3 and parts[-3] == "pass" and parts[-1] == "personalize":
        return "personalize"
    return None


def _when(stamp: str | None, received: datetime) -> datetime:
    """When Wallet says the pass changed (``updatedAt``), else when we heard of it."""
    if stamp:
        try:
            parsed = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
        except ValueError:
            return received
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return received


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> bytes | None:
    """The body, or None when it is larger than :data:`MAX_BODY` (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def report_of(event: CallbackEvent, project_id: int, received: datetime) -> PassInstall:
    """The install status an install/uninstall callback reports. Raises CallbackRefused
    (400) when it names no pass. A pass without an external id (one not issued by
    ticketbridge) is kept under ``pass:<passId>``: recorded, though no ticket shows it."""
    if event.template_id is None or (event.external_id is None and event.pass_id is None):
        raise CallbackRefused("callback names no pass (templateId and externalId)", status=400)
    return PassInstall(
        project_id=str(project_id),
        template_id=event.template_id,
        external_id=event.external_id or f"pass:{event.pass_id}",
        status=STATUS[event.kind],
        changed_at=_when(event.updated_at, received),
        pass_id=event.pass_id,
        platform=(event.platform or "").strip().lower()[:20] or None,
    )


def create_app(connection: str, config: AirshipWalletConfig, store: StateStore) -> Starlette:
    """The callback endpoint of the Wallet connection ``connection`` (whose ``callbacks``
    block must be set), recording into ``store``."""
    callbacks = config.callbacks
    assert callbacks is not None, "create_app needs a connection with callbacks"
    settings: WalletCallbacks = callbacks
    secret = settings.secret.get_secret_value()
    if not secret:
        raise ValueError(f"connections.{connection}.callbacks.secret is empty")

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        try:
            check_callback_secret(request.headers, header=settings.header, secret=secret)
        except CallbackRefused as exc:
            log.warning("wallet_callback.refused", connection=connection, path=path[:200])
            return _error(401, str(exc))
        kind = _kind(path)
        if kind is None:
            return _error(404, "not a Wallet callback path")
        if request.method != "POST":
            return _error(405, "callbacks are POSTed")
        body = await _body(request)
        if body is None:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        received = datetime.now(UTC)
        try:
            event = verify_callback(
                request.headers, body, path, header=settings.header, secret=secret
            )
            if kind == "personalize":
                log.info(
                    "wallet_callback.personalize", connection=connection, pass_id=event.pass_id
                )
                return JSONResponse({"ok": True})
            report = report_of(event, config.project_id, received)
        except CallbackRefused as exc:
            return _error(exc.status, str(exc))
        try:
            stored = await asyncio.to_thread(store.record_pass_install, report)
        except StateError as exc:
            log.error("wallet_callback.not_recorded", connection=connection, error=str(exc))
            return _error(500, "could not record the callback; deliver it again")
        log.info(
            "wallet_callback",
            connection=connection,
            kind=kind,
            external_id=report.external_id,
            template_id=report.template_id,
            recorded=stored,
        )
        return JSONResponse({"ok": True, "recorded": stored})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
