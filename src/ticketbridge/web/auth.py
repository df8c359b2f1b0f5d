"""Login, roles and CSRF.

* The session is Starlette's signed cookie (itsdangerous): HttpOnly, SameSite=strict, Secure
  when ``TICKETBRIDGE_UI_SECURE_COOKIE=1``; it holds the user's name, role, CSRF token and the
  stamp of the password that opened it (:func:`credential_stamp`), and a random token whose
  hash the state store keeps while the session lasts. A session whose stamp is not its
  role's current one is no session: changing or removing a role's password (and restarting
  the console) ends every session that password opened, and a new secret key ends them all.
  Logging out ends the session in the store, so a copy of its cookie is refused as well;
  an operator's "Log out everyone" ends every session in the store at once.
* Every POST (login and logout included) must carry the session's CSRF token in its
  ``csrf`` field; anything else is refused with 403 before the handler runs.
* A viewer sees every page; only an operator may start or change anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ticketbridge.web.settings import OPERATOR, VIEWER, UiSettings

if TYPE_CHECKING:
    from ticketbridge.web.console import Console

CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def operator(self) -> bool:
        return self.role == OPERATOR

    @property
    def label(self) -> str:
        """How the run history names whoever started an action from the console."""
        return f"{self.name} (console, {self.role})"


STAMP_FIELD = "stamp"
SESSION_ID_FIELD = "sid"
ENDED_FIELD = "ended"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


# Where a request keeps who it is from, once looked up: ``guarded`` and the page it renders
# both ask, and each look-up reads the session's row in the state store.
_USER_KEY = "ticketbridge.user"


def credential_stamp(settings: UiSettings, role: str) -> str | None:
    """A keyed digest of ``role``'s current password (None: the role has none): what a
    session must hold to stay valid. Not the password, nor anything it can be found from
    without the secret key."""
    password = settings.operator_password if role == OPERATOR else settings.viewer_password
    if role not in (OPERATOR, VIEWER) or password is None:
        return None
    key = settings.secret_key.get_secret_value().encode()
    message = f"{role}\0{password.get_secret_value()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def current_user(request: Request) -> User | None:
    if _USER_KEY not in request.scope:
        request.scope[_USER_KEY] = _session_user(request)
    user: User | None = request.scope[_USER_KEY]
    return user


def _session_user(request: Request) -> User | None:
    session = request.scope.get("session")
    if not session or session.get("role") not in (OPERATOR, VIEWER):
        return None
    role = str(session["role"])
    expected = credential_stamp(_console(request).settings, role)
    given = session.get(STAMP_FIELD)
    if expected is None or not isinstance(given, str):
        return None
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return None
    token = session.get(SESSION_ID_FIELD)
    if not isinstance(token, str) or not _console(request).store.console_session_open(
        _token_hash(token)
    ):
        return None
    return User(str(session.get("name") or role), role)


def csrf_token(request: Request) -> str:
    session = request.scope.get("session")
    if session is None:
        return ""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


async def csrf_ok(request: Request) -> bool:
    expected = request.scope.get("session", {}).get(CSRF_FIELD)
    given = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def role_for(password: str, operator: str | None, viewer: str | None) -> str | None:
    """The role a password opens, comparing in constant time with each configured one."""
    found = None
    for role, expected in ((OPERATOR, operator), (VIEWER, viewer)):
        if expected and hmac.compare_digest(password.encode(), expected.encode()):
            found = role
    return found


def log_in(request: Request, name: str, role: str) -> None:
    session = request.scope["session"]
    session.clear()  # a new session at each login: nothing carried over from before
    session.update(name=name[:60].strip() or role, role=role)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    session[STAMP_FIELD] = credential_stamp(_console(request).settings, role)
    token = secrets.token_urlsafe(32)
    _console(request).store.start_console_session(_token_hash(token), role)
    session[SESSION_ID_FIELD] = token
    request.scope.pop(_USER_KEY, None)  # who this request is from has just changed


def log_out(request: Request) -> None:
    """End the session here and in the store: a copy of its cookie is refused from now on."""
    session = request.scope["session"]
    token = session.get(SESSION_ID_FIELD)
    if isinstance(token, str):
        _console(request).store.end_console_sessions(_token_hash(token))
    session.clear()
    request.scope.pop(_USER_KEY, None)


def log_out_everyone(request: Request) -> int:
    """End every open session in the store, this one too (a laptop lost, a password seen):
    each cookie, wherever it is, is refused from now on. Returns how many ended."""
    ended = _console(request).store.end_console_sessions()
    session = request.scope["session"]
    session.clear()
    # For the login page to say once, from the signed cookie: a link cannot make it up.
    session[ENDED_FIELD] = ended
    request.scope.pop(_USER_KEY, None)
    return ended


def sessions_ended(request: Request) -> int | None:
    """How many sessions this browser's "Log out everyone" ended, once; else None."""
    ended = request.scope.get("session", {}).pop(ENDED_FIELD, None)
    return ended if isinstance(ended, int) else None


def safe_next(value: str | None) -> str:
    """Only a path of this site: never another host (``//evil``, ``https://…``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


Handler = Callable[[Request, User], Awaitable[Response]]
Refuse = Callable[[Request, int, str], Response]


def guarded(handler: Handler, refuse: Refuse, *, operator: bool = False) -> Callable[..., object]:
    """The endpoint for ``handler``: logged-in users only (others go to the login page),
    a valid CSRF token on every POST, and the operator role where ``operator``."""

    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            return refuse(request, 401, "Your session has ended: log in again.")
        if request.method == "POST" and not await csrf_ok(request):
            await asyncio.sleep(0)
            return refuse(
                request,
                403,
                "This form was refused: its security token is missing or out of date. "
                "Reload the page and try again.",
            )
        if operator and not user.operator:
            return refuse(
                request, 403, "Your login is read-only: only an operator can start or change this."
            )
        return await handler(request, user)

    return endpoint
