"""ApiClient over real sockets (uvicorn on loopback), with both network transports.

The aiohttp transport is the default because it costs a third of httpx's own per request;
these tests hold it to what httpx's own transport (``httpcore``) does for the same requests:
same bytes out, same decoded answers in, same errors for the engine.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ticketbridge.errors import RetryableError
from ticketbridge.http import ApiClient, HttpContext, RetryPolicy
from ticketbridge.http.auth import QueryToken, TimestampHmacBasic, bearer, hmac_hex_b64
from ticketbridge.http.outcomes import Action
from ticketbridge.http.transport import ENV, AiohttpTransport, network_transport
from ticketbridge.sandbox import free_port, serve_asgi

TRANSPORTS = ["h1", "aiohttp", "httpcore"]
hits: list[str] = []


async def echo(request: Request) -> Response:
    hits.append(request.url.path)
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode(),
            "client_port": request.client.port if request.client else None,
            "raw_headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
        }
    )


async def gzipped(request: Request) -> Response:
    raw = b'{"name": "R\xc3\xb8ros", "n": 1}'
    return Response(
        gzip.compress(raw), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )


async def chunked(request: Request) -> Response:
    async def parts() -> Any:
        yield b'{"items": ['
        for i in range(200):
            yield (b"," if i else b"") + b'{"i": %d}' % i
        yield b"]}"

    return StreamingResponse(parts(), media_type="application/json")


async def slow(request: Request) -> Response:
    await asyncio.sleep(2.0)
    return JSONResponse({"late": True})


async def moved(request: Request) -> Response:
    hits.append(request.url.path)
    return RedirectResponse("/v1/echo", status_code=302)


async def latin1(request: Request) -> Response:
    return Response(
        '{"city": "Tromsø"}'.encode("latin-1"), media_type="application/json; charset=iso-8859-1"
    )


APP = Starlette(
    routes=[
        Route("/v1/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/v1/gzip", gzipped),
        Route("/v1/chunked", chunked),
        Route("/v1/slow", slow),
        Route("/v1/moved", moved),
        Route("/v1/latin1", latin1),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv, thread, url = serve_asgi(APP, "transport-test")
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, request.param)
    return str(request.param)


def client(url: str, **kw: Any) -> ApiClient:
    kw.setdefault("retry", RetryPolicy(max_retries=0))
    return ApiClient(platform="testapi", base_url=f"{url}/v1", context=HttpContext(), **kw)


async def test_request_goes_out_as_built(server: str, transport: str) -> None:
    api = client(server, auth=bearer(SecretStr("s3cret-token")), headers={"X-Custom": "yes"})
    try:
        got = await api.request_json(
            "POST", "echo", params={"a": 1, "b": "x y"}, json_body={"name": "Ærø", "n": [1, 2]}
        )
    finally:
        await api.aclose()
    assert got["method"] == "POST" and got["path"] == "/v1/echo"
    assert got["query"] == {"a": "1", "b": "x y"}
    assert got["headers"]["authorization"] == "Bearer s3cret-token"
    assert got["headers"]["x-custom"] == "yes"
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["user-agent"].startswith("ticketbridge/")
    assert got["headers"]["content-length"] == str(len(got["body"].encode()))
    assert httpx.Response(200, content=got["body"].encode()).json() == {"name": "Ærø", "n": [1, 2]}


async def test_query_token_and_get_without_body(server: str, transport: str) -> None:
    api = client(server, auth=QueryToken("token", SecretStr("qtok")))
    try:
        got = await api.get_json("echo", {"page": 2})
    finally:
        await api.aclose()
    assert got["query"] == {"page": "2", "token": "qtok"}
    assert got["body"] == ""
    assert "content-type" not in got["headers"]


async def test_call_headers_override_client_headers_whatever_their_case(
    server: str,
    transport: str,
) -> None:
    api = client(server, auth=bearer(SecretStr("tok")), headers={"X-Custom": "client"})
    try:
        got = await api.request_json(
            "POST",
            "echo",
            json_body={"a": 1},
            headers={"x-custom": "call", "content-type": "application/vnd.test+json"},
        )
    finally:
        await api.aclose()
    names = [k for k, _ in got["raw_headers"]]
    assert names.count("x-custom") == 1 and got["headers"]["x-custom"] == "call"
    assert names.count("content-type") == 1
    assert got["headers"]["content-type"] == "application/vnd.test+json"
    assert names.count("authorization") == 1


async def test_query_token_wins_over_a_call_parameter_of_its_name(
    server: str,
    transport: str,
) -> None:
    api = client(server, auth=QueryToken("token", SecretStr("real")))
    try:
        got = await api.get_json("echo?fixed=1", {"token": "forged", "page": 3})
    finally:
        await api.aclose()
    assert got["query"] == {"fixed": "1", "token": "real", "page": "3"}


async def test_absolute_next_link_is_followed_as_given(server: str, transport: str) -> None:
    api = ApiClient(
        platform="testapi",
        base_url="http://127.0.0.1:9/elsewhere",
        context=HttpContext(),
        retry=RetryPolicy(max_retries=0),
    )
    try:
        got = await api.get_json(f"{server}/v1/echo?cursor=abc")
    finally:
        await api.aclose()
    assert got["path"] == "/v1/echo" and got["query"] == {"cursor": "abc"}


async def test_a_time_signed_request_goes_out_signed_afresh_on_every_transport(
    server: str, transport: str
) -> None:
    """Heyloyalty's scheme signs the request's timestamp: each attempt carries its own stamp
    and the Basic credentials of that stamp, over a call's own Authorization header, whether
    the request goes straight to aiohttp or through httpx's request and the auth flow."""
    stamps = iter(["Tue, 01 Dec 2026 10:00:00 GMT", "Tue, 01 Dec 2026 10:00:01 GMT"])
    api = client(
        server, auth=TimestampHmacBasic("key", SecretStr("secret"), now=lambda: next(stamps))
    )
    assert (api._direct is not None) == (transport != "httpcore")
    try:
        first = await api.request_json("POST", "echo", json_body={"a": 1})
        second = await api.request_json(
            "PUT", "echo", json_body={"a": 2}, headers={"authorization": "forged"}
        )
    finally:
        await api.aclose()
    for got, stamp in (
        (first, "Tue, 01 Dec 2026 10:00:00 GMT"),
        (second, "Tue, 01 Dec 2026 10:00:01 GMT"),
    ):
        assert got["headers"]["x-request-timestamp"] == stamp
        signature = hmac_hex_b64("secret", stamp)
        expected = base64.b64encode(f"key:{signature}".encode()).decode()
        assert got["headers"]["authorization"] == f"Basic {expected}"
        assert [k for k, _ in got["raw_headers"]].count("authorization") == 1
        assert got["headers"]["content-type"] == "application/json"
    assert first["body"] == '{"a":1}' and second["method"] == "PUT"


async def test_signed_auth_and_form_bodies_take_the_httpx_path(server: str, transport: str) -> None:
    """A scheme that signs every request (Heyloyalty's) and form bodies still go out right
    over the aiohttp transport, through httpx's request and the auth flow."""
    api = client(
        server,
        auth=TimestampHmacBasic(
            "key", SecretStr("secret"), now=lambda: "Tue, 01 Dec 2026 10:00:00 GMT"
        ),
    )
    try:
        got = await api.request_json("POST", "echo", data={"a": "1", "b": "x y"})
    finally:
        await api.aclose()
    assert got["headers"]["x-request-timestamp"] == "Tue, 01 Dec 2026 10:00:00 GMT"
    assert got["headers"]["authorization"].startswith("Basic ")
    assert got["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert got["body"] == "a=1&b=x+y"


async def test_gzip_body_is_decoded(server: str, transport: str) -> None:
    api = client(server)
    try:
        assert await api.get_json("gzip") == {"name": "Røros", "n": 1}
    finally:
        await api.aclose()


async def test_chunked_body_is_read_whole(server: str, transport: str) -> None:
    api = client(server)
    try:
        got = await api.get_json("chunked")
    finally:
        await api.aclose()
    assert [x["i"] for x in got["items"]] == list(range(200))


async def test_declared_charset_is_honoured(server: str, transport: str) -> None:
    api = client(server)
    try:
        assert await api.get_json("latin1") == {"city": "Tromsø"}
    finally:
        await api.aclose()


async def test_redirect_is_not_followed(server: str, transport: str) -> None:
    hits.clear()
    api = client(server, table={302: Action.OK})
    try:
        response = await api.request("GET", "moved")
    finally:
        await api.aclose()
    assert response.status_code == 302
    assert response.headers["location"] == "/v1/echo"
    assert hits == ["/v1/moved"]


async def test_read_timeout_is_retryable(server: str, transport: str) -> None:
    api = client(server, timeout_s=0.3)
    try:
        with pytest.raises(RetryableError, match="timed out"):
            await api.get_json("slow")
    finally:
        await api.aclose()
    assert api.statuses[0] == 1


async def test_refused_connection_is_retryable(transport: str) -> None:
    port = free_port()  # bound and released: nothing listens there
    api = ApiClient(
        platform="testapi",
        base_url=f"http://127.0.0.1:{port}/v1",
        context=HttpContext(),
        retry=RetryPolicy(max_retries=0),
    )
    try:
        with pytest.raises(RetryableError, match="could not connect"):
            await api.get_json("echo")
    finally:
        await api.aclose()


async def test_connection_closed_mid_answer_is_retryable(transport: str) -> None:
    """A server that sends a status line and hangs up: a retry, never a half answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def serve_one() -> None:
        conn, _ = await loop.sock_accept(listener)
        await loop.sock_recv(conn, 65536)
        await loop.sock_sendall(conn, b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"par')
        conn.close()

    task = asyncio.create_task(serve_one())
    api = ApiClient(
        platform="testapi",
        base_url=f"http://127.0.0.1:{port}/v1",
        context=HttpContext(),
        retry=RetryPolicy(max_retries=0),
    )
    try:
        with pytest.raises(RetryableError):
            await api.get_json("x")
    finally:
        await api.aclose()
        await task
        listener.close()


async def test_connections_are_kept_alive(server: str, transport: str) -> None:
    api = client(server)
    try:
        ports = {(await api.get_json("echo"))["client_port"] for _ in range(20)}
    finally:
        await api.aclose()
    assert len(ports) == 1  # one keep-alive connection served all twenty requests


def test_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    transport = AiohttpTransport()
    assert transport._proxy_for(httpx.URL("https://api.example/v1")) == "http://proxy.example:3128"
    assert transport._proxy_for(httpx.URL("https://internal.example/v1")) is None
    assert transport._proxy_for(httpx.URL("http://api.example/v1")) is None


def test_transport_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert isinstance(network_transport(), AiohttpTransport)
    monkeypatch.setenv(ENV, "httpcore")
    assert network_transport() is None
    monkeypatch.setenv(ENV, "curl")
    with pytest.raises(ValueError, match=ENV):
        network_transport()
