"""The lean HTTP/1.1 path (``http/h1.py``) against a scripted loopback server: what a
keep-alive pool must get right that the shared transport tests (``test_transport.py``,
``test_limits.py``, run on every transport) do not reach: connections the server ends,
answers without a length, interim answers, cancelled requests and the connection limit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from ticketbridge.errors import RetryableError
from ticketbridge.http import ApiClient, HttpContext, RetryPolicy
from ticketbridge.http.h1 import H1Pool
from ticketbridge.http.transport import ENV, aiohttp_timeout

Answerer = Callable[[int, bytes], Awaitable[bytes | None]]
LIMITS = aiohttp_timeout(httpx.Timeout(5.0).as_dict())


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(
        line + b"\r\n" for line in extra
    )
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Scripted:
    """Serves each request with ``answer(connection number, request bytes)``; ``None``
    closes the connection without an answer. Counts connections and open ones."""

    def __init__(self, answer: Answerer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.readers: list[asyncio.StreamReader] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        for writer in self.writers:
            writer.close()
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.writers.append(writer)
        self.readers.append(reader)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = await self.answer(number, request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        return ok(b'{"connection": %d}' % number, b"Connection: close")

    async with Scripted(answer, close_after=True) as srv:
        pool = H1Pool()
        try:
            first = await pool.exchange("GET", f"{srv.url}/a", {}, None, LIMITS)
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
            second = await pool.exchange("GET", f"{srv.url}/b", {}, None, LIMITS)
        finally:
            pool.close()
    assert (first.content, second.content) == (b'{"connection": 1}', b'{"connection": 2}')


async def test_a_keep_alive_connection_dropped_by_the_server_is_replaced() -> None:
    """The server drops the connection after each answer without saying so (no
    ``Connection: close``): the next request still gets its answer on a new connection."""

    async def answer(number: int, request: bytes) -> bytes:
        return ok(b'{"connection": %d}' % number)

    async with Scripted(answer, close_after=True) as srv:
        pool = H1Pool()
        try:
            bodies = []
            for _ in range(3):
                bodies.append((await pool.exchange("GET", f"{srv.url}/", {}, None, LIMITS)).content)
                await asyncio.sleep(0.05)
        finally:
            pool.close()
    assert bodies == [b'{"connection": %d}' % n for n in (1, 2, 3)]


async def test_an_answer_without_length_runs_until_the_server_closes() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"rows": [1, 2, 3]}'

    async with Scripted(answer, close_after=True) as srv:
        pool = H1Pool()
        try:
            got = await pool.exchange("GET", f"{srv.url}/", {}, None, LIMITS)
        finally:
            pool.close()
    assert (got.status_code, got.content) == (200, b'{"rows": [1, 2, 3]}')


async def test_an_interim_answer_is_passed_over_for_the_real_one() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        return b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"[]", b"X-Real: yes")

    async with Scripted(answer) as srv:
        pool = H1Pool()
        try:
            got = await pool.exchange("GET", f"{srv.url}/", {}, None, LIMITS)
        finally:
            pool.close()
    assert (got.status_code, got.content, got.headers.get("x-real")) == (200, b"[]", "yes")
    assert "link" not in got.headers


async def test_a_cancelled_request_leaves_no_half_answer_for_the_next() -> None:
    """The first request is cancelled before its (late) answer: that connection is closed,
    so the late answer can never be read as the second request's."""
    release = asyncio.Event()

    async def answer(number: int, request: bytes) -> bytes:
        if b"/slow" in request:
            await release.wait()
            return ok(b'"late"')
        return ok(b'"fresh"')

    async with Scripted(answer) as srv:
        pool = H1Pool()
        try:
            slow = asyncio.create_task(pool.exchange("GET", f"{srv.url}/slow", {}, None, LIMITS))
            await asyncio.sleep(0.05)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            await asyncio.sleep(0.05)
            assert srv.readers[0].at_eof(), "the cancelled request's connection was closed"
            release.set()
            got = await pool.exchange("GET", f"{srv.url}/fast", {}, None, LIMITS)
        finally:
            pool.close()
    assert got.content == b'"fresh"'
    assert srv.connections == 2


async def test_no_more_connections_than_the_limit_and_each_is_reused() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        await asyncio.sleep(0.01)
        return ok(b"{}")

    async with Scripted(answer) as srv:
        pool = H1Pool(max_connections=3)
        try:
            await asyncio.gather(
                *(pool.exchange("POST", f"{srv.url}/", {}, b"{}", LIMITS) for _ in range(30))
            )
        finally:
            pool.close()
    assert srv.most_open <= 3 and srv.connections == 3
    assert len(srv.requests) == 30


async def test_the_request_carries_host_length_and_the_callers_headers_only() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        return ok(b"{}")

    async with Scripted(answer) as srv:
        pool = H1Pool()
        try:
            headers = [("X-Api-Key", "k"), ("Connection", "upgrade"), ("Content-Length", "9")]
            await pool.exchange("POST", f"{srv.url}/v1/x?a=1&b=%20", headers, b"[1]", LIMITS)
            await pool.exchange("POST", f"{srv.url}/v1/empty", {}, None, LIMITS)
            await pool.exchange("GET", f"{srv.url}/v1/get", {"Host": "api.example"}, None, LIMITS)
        finally:
            pool.close()
    host = f"Host: 127.0.0.1:{srv.port}".encode()
    assert srv.requests[0] == (
        b"POST /v1/x?a=1&b=%20 HTTP/1.1\r\n" + host + b"\r\nX-Api-Key: k\r\n"
        b"Content-Length: 3\r\n\r\n[1]"
    )
    assert (
        srv.requests[1] == b"POST /v1/empty HTTP/1.1\r\n" + host + b"\r\nContent-Length: 0\r\n\r\n"
    )
    assert srv.requests[2] == b"GET /v1/get HTTP/1.1\r\nHost: api.example\r\n\r\n"


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    async def answer(number: int, request: bytes) -> bytes:
        return ok(b"{}")

    async with Scripted(answer) as srv:
        pool = H1Pool()
        try:
            with pytest.raises(httpx.LocalProtocolError, match="X-Evil"):
                await pool.exchange(
                    "GET", f"{srv.url}/", {"X-Evil": "a\r\nX-Admin: 1"}, None, LIMITS
                )
        finally:
            pool.close()
    assert srv.requests == []


async def test_a_malformed_answer_is_a_retryable_protocol_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "h1")

    async def answer(number: int, request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: nine\r\n\r\n{}"

    async with Scripted(answer) as srv:
        api = ApiClient(
            platform="testapi",
            base_url=f"{srv.url}/v1",
            context=HttpContext(),
            retry=RetryPolicy(max_retries=0),
        )
        try:
            with pytest.raises(RetryableError, match="malformed answer"):
                await api.get_json("x")
        finally:
            await api.aclose()
