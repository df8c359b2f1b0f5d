"""A lean HTTP/1.1 client: keep-alive connections as asyncio protocols, answers parsed by
httptools (llhttp, the parser uvicorn serves the sandboxes with).

Why: a sync to an API without batch endpoints sends one request per record, and the client's
CPU per request is then its throughput on a fast network. aiohttp's request path (its request
and response objects, stream readers, timers and tracing hooks) cost 0.14-0.18 ms of CPU per
``POST`` on the benchmark machine; this path costs 0.07 (``bench/README.md``). It is what the
transport (``http/transport.py``) uses for every request that goes to its origin directly,
http or https; a request through a proxy, and a ``HEAD``, still go through aiohttp.

What it keeps equal to the aiohttp path, so the layers above cannot tell them apart:

* the bytes sent: the request line, the caller's headers as given, ``Host`` unless given,
  ``Content-Length`` for a body (and for a body-less ``POST``, ``PUT``, ``PATCH``), no
  ``Connection`` or ``Transfer-Encoding`` of the caller's;
* the body as it came (chunked framing undone, ``Content-Encoding`` left for httpx), read
  never beyond ``max_bytes`` (:class:`BodyTooLarge`), and a body shorter than its
  ``Content-Length`` failing as :class:`ShortBody` when the server closes or after
  ``stall_s`` without a byte;
* the errors, as httpx's: ``ConnectError`` and ``ConnectTimeout`` (the OS error chained, for
  :func:`transport.unreachable`), ``ReadTimeout`` after ``sock_read`` without a byte,
  ``RemoteProtocolError`` for a malformed answer or a connection closed before its end;
* the timeouts of ``aiohttp.ClientTimeout``: ``connect`` for a free connection and the
  connection together, ``sock_connect`` for the connection, ``sock_read`` between bytes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from functools import lru_cache

import httptools
import httpx
from yarl import URL

from ticketbridge.http import tls
from ticketbridge.http.answer import Answer
from ticketbridge.http.body_errors import BodyTooLarge, ShortBody
from ticketbridge.http.tls import aiohttp

# Headers this module frames itself from the body and the connection.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "host"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Origin:
    __slots__ = ("host", "host_header", "key", "port", "tls")

    def __init__(self, scheme: str, host: str, port: int, host_header: str) -> None:
        self.tls = scheme == "https"
        self.host = host
        self.port = port
        self.host_header = host_header
        self.key = (scheme, host, port)


@lru_cache(maxsize=4096)
def _target(url: str) -> tuple[_Origin, bytes]:
    """The origin of ``url`` and its request target (path and query, percent-encoded as
    aiohttp would send them). Parsed once per URL."""
    parsed = URL(url)
    scheme = (parsed.scheme or "").lower()
    host = parsed.raw_host
    if scheme not in ("http", "https") or not host:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
    port = parsed.port or (443 if scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    origin = _Origin(scheme, host, port, shown if default else f"{shown}:{port}")
    return origin, (parsed.raw_path_qs or "/").encode("ascii")


@lru_cache(maxsize=1024)
def _header_block(headers: tuple[tuple[str, str], ...]) -> tuple[bytes, str | None]:
    """The caller's header lines (framing headers left out) and the Host it gave, if any.
    Made once per distinct header set: most requests of a sync send the same one."""
    lines: list[str] = []
    host = None
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise httpx.LocalProtocolError(f"header {name!r} holds a line break or a colon")
        lowered = name.lower()
        if lowered == "host":
            host = value
        elif lowered not in _FRAMING:
            lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1"), host


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._request: httpx.Request | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._limit: float | None = None
        self._last = 0.0
        self._start(None, None)

    def _start(self, max_bytes: int | None, stall_s: float | None) -> None:
        self._raw: list[tuple[bytes, bytes]] = []
        self._parts: list[bytes] = []
        self._size = 0
        self._declared: int | None = None
        self._chunked = False
        self._encoding: str | None = None
        self._content_type: str | None = None
        self._reason = b""
        self._head_done = False
        self._shrunk = False
        self._max_bytes = max_bytes
        self._stall_s = stall_s

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        if self._timer is not None:
            self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {exc}"))
        if self._shrunk and self._waiter is not None:
            # The head came but not all of the body: the timer, set for the read timeout,
            # now waits the shorter stall time. (Most answers come whole in one piece and
            # never get here, so they pay for one timer, not two.)
            self._shrunk = False
            self._stop_timer()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head_done and self._declared is not None:
            self._fail(ShortBody(self._size, self._declared))
        elif self._head_done and not self._chunked:
            self._complete()  # no length and not chunked: the body runs until the close
        else:
            where = "before its answer" if not self._head_done else "in a chunked body"
            error = httpx.RemoteProtocolError(f"Server disconnected {where}")
            error.__cause__ = exc
            self._fail(error)

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._raw.clear()  # an interim answer: the real one follows
            self._reason = b""
            return
        self._head_done = True
        for name, value in self._raw:
            lowered = name.lower()
            if lowered == b"content-length":
                try:
                    self._declared = int(value)
                except ValueError:
                    self._declared = None
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif lowered == b"content-encoding":
                self._encoding = value.decode("latin-1").strip()
            elif lowered == b"content-type":
                self._content_type = value.decode("latin-1")
        if self._max_bytes is not None and (self._declared or 0) > self._max_bytes:
            self._fail(BodyTooLarge(self._max_bytes, self._declared))
        elif self._declared is not None and self._stall_s is not None:
            # The server has the whole body already: a pause this long means it is short.
            self._limit = min(self._stall_s, self._limit or self._stall_s)
            self._shrunk = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._max_bytes is not None and self._size > self._max_bytes:
            self._fail(BodyTooLarge(self._max_bytes, self._declared))
            return
        self._parts.append(body)

    def on_message_complete(self) -> None:
        if self._head_done:
            self._complete()

    # the exchange

    def send(
        self,
        data: bytes,
        max_bytes: int | None,
        read_s: float | None,
        stall_s: float | None,
        request: httpx.Request | None,
    ) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._start(max_bytes, stall_s)
        self._request = request
        waiter: asyncio.Future[Answer] = self._loop.create_future()
        self._waiter = waiter
        self._limit = read_s
        self._arm()
        self.transport.write(data)
        return waiter

    def _arm(self) -> None:
        """Starts the read timer, unless there is no limit or it runs already (it then
        checks the new limit when it fires)."""
        if self._limit is not None and self._timer is None:
            self._last = self._loop.time()
            self._timer = self._loop.call_at(self._last + self._limit, self._check)

    def _check(self) -> None:
        """The read timer: fails the exchange after ``_limit`` seconds without a byte."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self._limit is None:
            return
        idle = self._loop.time() - self._last
        if idle < self._limit:
            self._timer = self._loop.call_at(self._last + self._limit, self._check)
            return
        if self._head_done and self._declared is not None and self._stall_s is not None:
            self._fail(ShortBody(self._size, self._declared, self._stall_s))
        else:
            self._fail(httpx.ReadTimeout(f"no answer for {self._limit:g} s"))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _complete(self) -> None:
        self._stop_timer()
        waiter, self._waiter = self._waiter, None
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Answer(
                    self._parser.get_status_code(),
                    None,
                    self._raw,
                    b"".join(self._parts),
                    self._request,
                    f"HTTP/{self._parser.get_http_version()}",
                    self._reason.decode("latin-1", "replace"),
                    self._encoding,
                    self._content_type,
                )
            )

    def _fail(self, exc: BaseException) -> None:
        self._stop_timer()
        self.close()  # whatever is left of this answer must not be read as the next one
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()


class H1Pool:
    """Keep-alive connections per origin, at most ``max_connections`` in use at once. Made
    and used in one event loop (the transport makes one per loop)."""

    def __init__(self, max_connections: int = 100) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._loop = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | list[tuple[str, str]],
        body: bytes | None,
        limits: aiohttp.ClientTimeout,
        request: httpx.Request | None = None,
        *,
        max_bytes: int | None = None,
        stall_s: float | None = None,
    ) -> Answer:
        origin, target = _target(url)
        given = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        block, host = _header_block(given)
        head = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nHost: "]
        head.append((host or origin.host_header).encode("latin-1"))
        head.append(b"\r\n")
        head.append(block)
        if body or method in _BODY_METHODS:
            head.append(b"Content-Length: %d\r\n" % len(body or b""))
        head.append(b"\r\n")
        if body:
            head.append(body)
        data = b"".join(head)
        if self._slots.locked():
            try:
                async with asyncio.timeout(limits.connect):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in time") from None
        else:
            await self._slots.acquire()
        try:
            connection = await self._connection(origin, limits)
            try:
                answer = await connection.send(data, max_bytes, limits.sock_read, stall_s, request)
            except BaseException:
                connection.close()  # cancelled or failed mid-answer: never reused
                raise
            if not connection.closed:
                self._idle.setdefault(origin.key, []).append(connection)
            return answer
        finally:
            self._slots.release()

    async def _connection(self, origin: _Origin, limits: aiohttp.ClientTimeout) -> _Connection:
        idle = self._idle.get(origin.key)
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
        context: ssl.SSLContext | None = tls.context() if origin.tls else None
        try:
            async with asyncio.timeout(limits.sock_connect or limits.connect):
                _, made = await self._loop.create_connection(
                    lambda: _Connection(self._loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"ConnectionTimeoutError: no connection to {origin.host}:{origin.port} in time"
            ) from exc
        except OSError as exc:
            raise httpx.ConnectError(
                f"{type(exc).__name__}: cannot connect to {origin.host}:{origin.port}: {exc}"
            ) from exc
        return made

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
