"""Bodies that are cut short or too large, over real sockets with both network transports
(issue 20.9 and 20.10): one clear error each, never a wait for the read timeout on every retry
and never a body read whole into memory because a server chose to send it."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ticketbridge.connectors.kit import connection_client
from ticketbridge.connectors.ticketco import TicketcoConfig
from ticketbridge.errors import FatalError, RetryableError
from ticketbridge.http import ApiClient, HttpContext, RetryPolicy
from ticketbridge.http.transport import ENV
from ticketbridge.sandbox import serve_asgi

MB = 1_000_000
served: list[int] = []


async def endless(request: Request) -> Response:
    """A body with no Content-Length that never ends: only a limit stops the reader."""

    async def parts() -> AsyncIterator[bytes]:
        chunk = b"[" + b"0," * (MB // 2)
        while True:
            served.append(len(chunk))
            yield chunk
            # Sending to a closed connection returns at once under uvicorn: without a pause
            # the server would never see that the client went away.
            await asyncio.sleep(0.001)

    return StreamingResponse(parts(), media_type="application/json")


async def bomb(request: Request) -> Response:
    """20 kB on the wire, 20 MB once decoded."""
    raw = gzip.compress(b'{"x": "' + b"0" * (20 * MB) + b'"}')
    return Response(raw, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def small(request: Request) -> Response:
    return Response(b'{"ok": true}', media_type="application/json")


APP = Starlette(routes=[Route("/endless", endless), Route("/bomb", bomb), Route("/small", small)])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv, thread, url = serve_asgi(APP, "limits-test")
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(params=["h1", "aiohttp", "httpcore"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, request.param)
    return str(request.param)


class RawServer:
    """A loopback socket server that answers every request with ``answer`` and then either
    hangs up or holds the connection open: what no well-behaved framework would send."""

    def __init__(self, answer: bytes, *, hang_up: bool) -> None:
        self.answer = answer
        self.hang_up = hang_up
        self.requests = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawServer:
        self._task = asyncio.create_task(self._serve())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        for conn in self.open:
            conn.close()
        self.listener.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.listener)
            await loop.sock_recv(conn, 65536)
            self.requests += 1
            await loop.sock_sendall(conn, self.answer)
            if self.hang_up:
                conn.close()
            else:
                self.open.append(conn)

    def client(self, **kw: Any) -> ApiClient:
        sleeps: list[float] = []

        async def no_wait(seconds: float) -> None:
            sleeps.append(seconds)

        return ApiClient(
            platform="testapi",
            base_url=f"http://127.0.0.1:{self.port}/v1",
            context=HttpContext(sleep=no_wait),
            **kw,
        )


SHORT = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'


async def test_a_short_body_held_open_fails_at_once_then_is_retried(transport: str) -> None:
    """The server sends 5 of the 100 bytes it announced and keeps the connection: each
    attempt fails after the stall time (5 s by default), not after the 30 s read timeout, and
    the retry policy then applies as to any retryable error."""
    async with RawServer(SHORT, hang_up=False) as srv:
        api = srv.client(timeout_s=30, retry=RetryPolicy(max_retries=1), body_stall_s=0.3)
        try:
            with pytest.raises(RetryableError) as caught:
                # Bounded well below one read timeout: waiting it out fails the test.
                await asyncio.wait_for(api.get_json("x"), 20)
        finally:
            await api.aclose()
        assert srv.requests == 2  # the attempt and its one retry
    assert "stopped after 5 of the 100 bytes its Content-Length announced" in str(caught.value)
    assert f"GET http://127.0.0.1:{srv.port}/v1/x" in str(caught.value)


async def test_the_default_stall_is_well_below_the_read_timeout(transport: str) -> None:
    async with RawServer(SHORT, hang_up=False) as srv:
        api = srv.client(timeout_s=30, retry=RetryPolicy(max_retries=0))
        try:
            with pytest.raises(RetryableError, match="nothing more for 5 s"):
                await asyncio.wait_for(api.get_json("x"), 20)
        finally:
            await api.aclose()


async def test_a_short_body_the_server_hangs_up_on_names_what_is_missing(transport: str) -> None:
    async with RawServer(SHORT, hang_up=True) as srv:
        api = srv.client(retry=RetryPolicy(max_retries=2))
        try:
            with pytest.raises(RetryableError) as caught:
                await asyncio.wait_for(api.get_json("x"), 20)
        finally:
            await api.aclose()
        assert srv.requests == 3
    message = str(caught.value)
    assert "5 of the 100 bytes" in message or "received 5 bytes, expected 100" in message
    assert "could not connect" not in message


async def test_a_declared_body_over_the_limit_is_refused_unread(transport: str) -> None:
    huge = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n[0,"
    )
    async with RawServer(huge, hang_up=False) as srv:
        api = srv.client(retry=RetryPolicy(max_retries=3), max_response_bytes=50 * MB)
        try:
            with pytest.raises(FatalError) as caught:
                await asyncio.wait_for(api.get_json("x"), 20)
        finally:
            await api.aclose()
        assert srv.requests == 1  # not retried: the same answer would come again
    assert "300,000,000 bytes is over the limit of 50,000,000 bytes" in str(caught.value)
    assert "max_response_mb" in str(caught.value)


async def test_an_endless_body_is_read_up_to_the_limit_only(server: str, transport: str) -> None:
    served.clear()
    api = ApiClient(
        platform="testapi",
        base_url=server,
        context=HttpContext(),
        retry=RetryPolicy(max_retries=0),
        max_response_bytes=5 * MB,
    )
    try:
        with pytest.raises(FatalError, match="over the limit of 5,000,000 bytes"):
            await asyncio.wait_for(api.get_json("endless"), 30)
    finally:
        await api.aclose()
    assert sum(served) < 50 * MB  # the server was stopped long before it could send 50 MB


async def test_a_gzip_body_over_the_limit_once_decoded_is_refused(
    server: str, transport: str
) -> None:
    api = ApiClient(
        platform="testapi",
        base_url=server,
        context=HttpContext(),
        retry=RetryPolicy(max_retries=0),
        max_response_bytes=5 * MB,
    )
    try:
        with pytest.raises(FatalError, match="over the limit"):
            await api.get_json("bomb")
        assert await api.get_json("small") == {"ok": True}  # the same client goes on
    finally:
        await api.aclose()


async def test_the_limit_is_a_setting_of_the_connection(server: str, transport: str) -> None:
    cfg = TicketcoConfig.model_validate(
        {"platform": "ticketco", "base_url": server, "token": "t", "max_response_mb": 2}
    )
    api = connection_client(cfg, HttpContext(), platform="ticketco", account="a", auth=None)
    assert TicketcoConfig.model_fields["max_response_mb"].default == 50
    try:
        with pytest.raises(FatalError, match="over the limit of 2,000,000 bytes"):
            await api.get_json("endless")
    finally:
        await api.aclose()
