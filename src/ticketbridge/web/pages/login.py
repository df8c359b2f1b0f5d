"""Logging in and out: a password from the environment opens a role; a one-time link (printed
by ``ticketbridge ui`` and ``demo --ui``) logs in as operator once."""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ticketbridge.web.auth import (
    User,
    csrf_ok,
    current_user,
    log_in,
    log_out,
    log_out_everyone,
    role_for,
    safe_next,
    sessions_ended,
)
from ticketbridge.web.pages.common import console_of, refuse
from ticketbridge.web.settings import OPERATOR

FAILED_LOGIN_DELAY_S = 0.5  # slows guessing down; the password never shows in a page or log


async def login_form(request: Request) -> Response:
    console = console_of(request)
    if current_user(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return console.render(
        request,
        "login.html",
        {
            "next": safe_next(request.query_params.get("next")),
            "error": None,
            "name": "",
            "ended": sessions_ended(request),
        },
    )


async def login(request: Request) -> Response:
    console = console_of(request)
    if not await csrf_ok(request):
        return refuse(
            request, 403, "The login form was refused: its security token is missing or old."
        )
    form = await request.form()
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    settings = console.settings
    role = role_for(
        password,
        settings.operator_password.get_secret_value() if settings.operator_password else None,
        settings.viewer_password.get_secret_value() if settings.viewer_password else None,
    )
    if role is None:
        await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return console.render(
            request,
            "login.html",
            {"next": target, "error": "Wrong password.", "name": name},
            status_code=401,
        )
    log_in(request, name, role)
    return RedirectResponse(target, status_code=303)


async def login_once(request: Request) -> Response:
    """The one-time link: logs in as operator and is spent."""
    console = console_of(request)
    token = console.settings.one_time_token
    given = request.query_params.get("token", "")
    if (
        token is None
        or console.one_time_used
        or not hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    ):
        await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return refuse(request, 403, "This login link is not valid (or was used already).")
    console.one_time_used = True
    log_in(request, "first login", OPERATOR)
    return RedirectResponse("/", status_code=303)


async def logout(request: Request, user: User) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)


async def logout_everyone(request: Request, user: User) -> Response:
    log_out_everyone(request)
    return RedirectResponse("/login", status_code=303)
