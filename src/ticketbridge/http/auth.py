"""Authentication schemes as ``httpx.Auth`` flows. Secrets stay in ``SecretStr`` until sent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from email.utils import formatdate
from typing import cast

import httpx
from pydantic import SecretStr

Auth = httpx.Auth
"""What every scheme here is; connectors name it without importing httpx."""

Static = tuple[dict[str, str], dict[str, str]]


Signed = Callable[[], dict[str, str]]
"""Headers a scheme computes afresh for each attempt, from nothing but the clock."""


def signed_headers(auth: httpx.Auth | None) -> Signed | None:
    """For a scheme whose per-request headers depend on the time only (Heyloyalty's signed
    timestamp), what makes them; None for every other scheme. Such a request needs no httpx
    request either: ApiClient adds these headers last, as the auth flow would."""
    if type(auth) is TimestampHmacBasic:
        return auth.headers_now
    return None


def static_parts(auth: httpx.Auth | None) -> Static | None:
    """The headers and query parameters ``auth`` adds to every request, when they are the
    same every time (tokens, Basic); None for schemes that compute something per request.

    ApiClient sends requests of a static scheme without building an httpx request for the
    auth flow to edit: the parts are merged in once, when the client is made.
    """
    if auth is None or type(auth) is httpx.Auth:
        return {}, {}
    # Exact types: a subclass may change the flow.
    if type(auth) in (QueryToken, HeaderToken, Basic):
        return cast(QueryToken | HeaderToken | Basic, auth).static()
    return None


class QueryToken(httpx.Auth):
    """The secret as a query parameter (TicketCo ``?token=``, Ticketmaster ``?apikey=``)."""

    def __init__(self, param: str, secret: SecretStr) -> None:
        self.param = param
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self.param: self.secret.get_secret_value()})
        yield request

    def static(self) -> Static:
        return {}, {self.param: self.secret.get_secret_value()}


class HeaderToken(httpx.Auth):
    """A header carrying the secret, optionally with a scheme (``Bearer``, ``Token``)."""

    def __init__(self, header: str, secret: SecretStr, scheme: str | None = None) -> None:
        self.header = header
        self.secret = secret
        self.scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.static()[0])
        yield request

    def static(self) -> Static:
        value = self.secret.get_secret_value()
        return {self.header: f"{self.scheme} {value}" if self.scheme else value}, {}


def bearer(secret: SecretStr) -> HeaderToken:
    return HeaderToken("Authorization", secret, "Bearer")


class Basic(httpx.Auth):
    def __init__(self, username: str, password: SecretStr) -> None:
        self.username = username
        self.password = password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.static()[0])
        yield request

    def static(self) -> Static:
        raw = f"{self.username}:{self.password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}, {}


def hmac_hex_b64(secret: str, message: str) -> str:
    """base64 of the *hex* HMAC-SHA256, as Heyloyalty's official PHP client computes it."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


class TimestampHmacBasic(httpx.Auth):
    """Basic auth whose password signs the request timestamp header (Heyloyalty).

    A fresh timestamp is taken per request (also per retry), since servers reject stale ones.
    """

    def __init__(
        self,
        api_key: str,
        secret: SecretStr,
        header: str = "X-Request-Timestamp",
        now: Callable[[], str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.header = header
        self._now = now or (lambda: formatdate(usegmt=True))

    def headers_now(self) -> dict[str, str]:
        """The timestamp header and the Basic credentials signing it, for one attempt."""
        stamp = self._now()
        signature = hmac_hex_b64(self.secret.get_secret_value(), stamp)
        raw = f"{self.api_key}:{signature}".encode()
        return {
            self.header: stamp,
            "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers_now())
        yield request


TokenFetch = Callable[[], Awaitable[tuple[SecretStr, float]]]
"""Obtains a fresh access token: ``(token, lifetime in seconds)``."""


class RefreshingBearer(httpx.Auth):
    """A Bearer token that expires, shared by every request of one connection (OAuth 2.0
    client credentials and the like; ``fetch`` does the grant).

    Invariants:

    * at most one ``fetch`` is in flight: N concurrent requests without a valid token wait
      for the same fetch instead of each starting one;
    * a token is renewed ``margin_s`` before it expires (at most a tenth of its lifetime, so
      short-lived tokens are still used), never after a request has been refused for it;
    * a 401 renews the token once (unless another request already did) and resends the
      request once; a second 401 is returned to the caller (an ``AuthError`` there).

    The token is a ``SecretStr`` from fetch to header, so it never shows in a repr or log.
    """

    def __init__(
        self,
        fetch: TokenFetch,
        *,
        margin_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin_s = margin_s
        self._clock = clock
        self._token: SecretStr | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fetches={self.fetches})"

    def _valid(self) -> SecretStr | None:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return None

    async def token(self) -> SecretStr:
        """The current token, fetched (once, for every waiter) when missing or due."""
        found = self._valid()
        if found is not None:
            return found
        async with self._lock:
            found = self._valid()
            if found is not None:  # another request fetched it while this one waited
                return found
            token, lifetime = await self._fetch()
            self.fetches += 1
            self._token = token
            self._renew_at = self._clock() + lifetime - min(self._margin_s, lifetime / 10)
            return token

    async def renew(self, refused: SecretStr) -> SecretStr:
        """A new token after ``refused`` got a 401; the same fetch serves every request
        refused with that token."""
        async with self._lock:
            if self._token is refused:
                self._token = None
        return await self.token()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("RefreshingBearer fetches tokens asynchronously; use an async client")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            fresh = await self.renew(token)
            request.headers["Authorization"] = f"Bearer {fresh.get_secret_value()}"
            yield request
