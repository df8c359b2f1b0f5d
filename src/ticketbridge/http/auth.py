"""Authentication schemes as ``httpx.Auth`` flows. Secrets stay in ``SecretStr`` until sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Generator
from email.utils import formatdate
from typing import cast

import httpx
from pydantic import SecretStr

Auth = httpx.Auth
"""What every scheme here is; connectors name it without importing httpx."""

Static = tuple[dict[str, str], dict[str, str]]


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

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        stamp = self._now()
        signature = hmac_hex_b64(self.secret.get_secret_value(), stamp)
        raw = f"{self.api_key}:{signature}".encode()
        request.headers[self.header] = stamp
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        yield request
