"""The network transport under every ApiClient: httpx's interface over a lean HTTP/1.1 path
(``http/h1.py``) for direct requests, and aiohttp's engine for requests through a proxy.

Why: a sync writes one request per record to APIs without batch endpoints (Airship CRM), so
the client's CPU per request is the sync's throughput once the network is fast. httpx's own
transport (httpcore + h11 + anyio, pure Python) cost 2.3-2.6 ms of CPU per request on the
benchmark machine; aiohttp's (C parser, asyncio streams) costs 0.4 ms, and httpx over this
transport 0.7-0.8 ms (``bench/README.md``); the h1 path took a further 0.06-0.08 ms off
aiohttp's. Everything above the transport stays httpx: auth flows, request building,
``httpx.Response`` for the connectors, ``ASGITransport`` in tests.
``TICKETBRIDGE_HTTP_TRANSPORT`` chooses: ``h1`` (the default), ``aiohttp`` (aiohttp for
every request) or ``httpcore`` (httpx's own).

What the transport keeps equal to httpx's:

* bodies are not decompressed here (``auto_decompress=False``): httpx decodes them from the
  ``Content-Encoding`` header, as it does for its own transport;
* no redirects are followed and no cookies are kept here (httpx does both, above);
* aiohttp's errors (and h1's) become httpx's (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
  ``ReadError``, ``RemoteProtocolError``), which ``http/client.py`` translates once more into
  the retryable errors of DESIGN section 5;
* httpx's per-request timeouts (connect, read, pool) are applied per request.

What it adds (issue 20.9 and 20.10): a body is read in chunks, never beyond the caller's
size limit (:class:`BodyTooLarge`, a declared ``Content-Length`` over it is refused before
reading), and a body shorter than its ``Content-Length`` fails as :class:`ShortBody` at once
when the server closes, or after ``stall_s`` without a byte when it holds the connection open,
instead of waiting out the read timeout on every retry.
"""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from ticketbridge.http import tls
from ticketbridge.http.answer import Answer
from ticketbridge.http.body_errors import BodyTooLarge, ShortBody
from ticketbridge.http.h1 import H1Pool
from ticketbridge.http.tls import aiohttp

ENV = "TICKETBRIDGE_HTTP_TRANSPORT"
# aiohttp computes these itself from the body it is given; passing httpx's too would send them
# twice or contradict the body aiohttp frames.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
# Request extensions the ApiClient sets: the body limit and the stall time (see read_capped).
MAX_BYTES = "ticketbridge.max_response_bytes"
STALL_S = "ticketbridge.body_stall_s"


def network_transport(max_connections: int = 100) -> httpx.AsyncBaseTransport | None:
    """The transport for real network origins (None: httpx's default, httpcore)."""
    choice = os.environ.get(ENV, "h1").strip().lower()
    if choice == "httpcore":
        return None
    if choice not in ("h1", "aiohttp"):
        raise ValueError(f"{ENV}={choice!r}: expected 'h1', 'aiohttp' or 'httpcore'")
    return AiohttpTransport(max_connections=max_connections, h1=choice == "h1")


def aiohttp_timeout(timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's timeouts (``Timeout.as_dict()``: connect, read, write, pool) in aiohttp's terms."""
    connect, pool = timeout.get("connect"), timeout.get("pool")
    return aiohttp.ClientTimeout(
        total=None,
        # aiohttp's ``connect`` covers waiting for a free connection and connecting.
        connect=None if connect is None and pool is None else (connect or 0) + (pool or 0),
        sock_connect=connect,
        sock_read=timeout.get("read"),
    )


def _translate(exc: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, TimeoutError):  # aiohttp's read timeouts subclass it
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text, request=request)
    return httpx.ReadError(text, request=request)


def declared_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def read_capped(
    content: aiohttp.StreamReader,
    declared: int | None,
    max_bytes: int | None,
    stall_s: float | None,
) -> bytes:
    """The whole body of an aiohttp response, within ``max_bytes``. With a ``Content-Length``
    the server has the whole body already, so ``stall_s`` without a byte means it is short."""
    if max_bytes is not None and declared is not None and declared > max_bytes:
        raise BodyTooLarge(max_bytes, declared)
    if declared is not None and content.is_eof():
        # The usual small answer: its whole body came with its head and is buffered, so no
        # wait and no timer (one per chunk below, a share of a request's CPU).
        body = content.read_nowait()
        if len(body) < declared:
            raise ShortBody(len(body), declared)
        return body
    wait = stall_s if declared is not None else None
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(wait):
                chunk = await content.readany()
        except TimeoutError:
            assert declared is not None
            raise ShortBody(size, declared, wait) from None
        except aiohttp.ClientPayloadError as exc:
            if declared is not None and size < declared:
                raise ShortBody(size, declared) from exc
            raise
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise BodyTooLarge(max_bytes, declared)
        parts.append(chunk)


_REFUSED = ("connection refused", "errno 111", "connect call failed")
_NO_HOST = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
)


def unreachable(exc: BaseException) -> str | None:
    """Why no connection could be made, when the server plainly is not there: "connection
    refused" (nothing listens on that port) or "host not found" (DNS). A retry a moment
    later will not help, so ``check`` fails at once on these. None for anything else
    (timeouts, resets, protocol errors), which may be transient.

    Works for both transports: aiohttp's errors are chained under httpx's (``_translate``),
    httpcore's carry the OS error in their chain or their text.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return "host not found"
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    if any(marker in text for marker in _REFUSED):
        return "connection refused"
    if any(marker in text for marker in _NO_HOST):
        return "host not found"
    return None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Per ApiClient: an h1 pool (``http/h1.py``) for direct requests when ``h1`` is on, and
    an aiohttp session (its own connection pool) for the rest. Both are made on first use,
    since each belongs to the event loop it was made in."""

    def __init__(self, *, max_connections: int = 100, h1: bool = True) -> None:
        self.max_connections = max_connections
        self.h1 = h1
        self._pool: H1Pool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _proxy_for(self, url: httpx.URL) -> str | None:
        """``HTTP(S)_PROXY`` / ``ALL_PROXY`` unless ``NO_PROXY`` exempts the host, as httpx
        does for its own transport; looked up once per scheme and host."""
        key = (url.scheme, url.host)
        if key not in self._proxies:
            found = urllib.request.getproxies_environment()
            proxy = found.get(url.scheme) or found.get("all")
            if proxy and urllib.request.proxy_bypass(url.host):
                proxy = None
            self._proxies[key] = proxy if proxy and urlsplit(proxy).scheme else None
        return self._proxies[key]

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # Not trust_env: aiohttp would then look up netrc and the proxy variables in a
                # thread on every request; the proxy is looked up once per origin instead.
                trust_env=False,
                # httpx builds the whole header set; aiohttp adds nothing of its own.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    def _pool_now(self) -> H1Pool:
        pool = self._pool
        if pool is None or pool.loop is not asyncio.get_running_loop():
            pool = self._pool = H1Pool(self.max_connections)
        return pool

    def proxy_for_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        return self._proxy_for(httpx.URL(f"{parts.scheme}://{parts.netloc}/"))

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | list[tuple[str, str]],
        body: bytes | None,
        limits: aiohttp.ClientTimeout,
        proxy: str | None,
        request: httpx.Request | None = None,
        *,
        max_bytes: int | None = None,
        stall_s: float | None = None,
    ) -> Answer:
        """One exchange, the whole body read (within ``max_bytes``, see :func:`read_capped`);
        ``headers`` exactly as sent (no framing headers: aiohttp writes those for ``body``).
        The answer's body is as it came (``Answer.encoded`` says whether it still needs
        decoding by its Content-Encoding)."""
        if proxy is None and method != "HEAD" and self.h1:
            return await self._pool_now().exchange(
                method,
                url,
                headers,
                body,
                limits,
                request,
                max_bytes=max_bytes,
                stall_s=stall_s,
            )
        session = self._session_now()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=body if body or method not in ("GET", "HEAD") else None,
                allow_redirects=False,
                timeout=limits,
                proxy=proxy,
                ssl=tls.context() if tls.needs_context(url, proxy) else True,
            ) as answer:
                content = await read_capped(
                    answer.content, answer.content_length, max_bytes, stall_s
                )
                return Answer.of(answer, content, request)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc, request) from exc

    async def fetch(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | list[tuple[str, str]],
        body: bytes | None,
        limits: aiohttp.ClientTimeout,
        proxy: str | None,
        request: httpx.Request | None = None,
        *,
        max_bytes: int | None = None,
        stall_s: float | None = None,
    ) -> httpx.Response:
        """:meth:`exchange` as an ``httpx.Response`` whose body is not decoded yet (``await
        response.aread()`` does, by its Content-Encoding)."""
        answer = await self.exchange(
            method,
            url,
            headers,
            body,
            limits,
            proxy,
            request,
            max_bytes=max_bytes,
            stall_s=stall_s,
        )
        return answer.response()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _FRAMING]
        return await self.fetch(
            request.method,
            str(request.url),
            headers,
            body,
            aiohttp_timeout(request.extensions.get("timeout", {})),
            self._proxy_for(request.url),
            request,
            max_bytes=request.extensions.get(MAX_BYTES),
            stall_s=request.extensions.get(STALL_S),
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None
