"""ApiClient: one async HTTP client per connection, with retries, budget and error translation.

Every request any connector makes goes through :meth:`ApiClient.request`, so retry, back-off,
rate budget, call counting, redaction and error translation happen in exactly one place.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import orjson
import structlog

from ticketbridge.errors import FatalError, RateLimited, RetryableError
from ticketbridge.http.answer import Answer
from ticketbridge.http.auth import Signed, signed_headers, static_parts
from ticketbridge.http.body_errors import BodyTooLarge, ShortBody
from ticketbridge.http.budget import RateBudget
from ticketbridge.http.context import HttpContext
from ticketbridge.http.outcomes import DEFAULT_TABLE, Action, classify, to_error
from ticketbridge.http.retry import RetryPolicy
from ticketbridge.http.tls import aiohttp
from ticketbridge.http.transport import (
    MAX_BYTES,
    STALL_S,
    AiohttpTransport,
    aiohttp_timeout,
    declared_length,
    network_transport,
    unreachable,
)
from ticketbridge.logs import debug_enabled


def _version() -> str:
    try:
        return version("ticketbridge")
    except PackageNotFoundError:
        return "dev"


log = structlog.get_logger("ticketbridge.http")

DEFAULT_HEADERS = {
    "Accept": "application/json, */*;q=0.5",
    # What httpx decodes without optional packages.
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"ticketbridge/{_version()}",
}


def encode_json(body: Any) -> bytes:
    """orjson (several times faster than ``json``), falling back to ``json`` for what only
    ``json`` takes (non-string keys, integers beyond 64 bits), so a body httpx sent still goes."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


_UTF8 = frozenset({"", "utf-8", "utf8", "ascii", "us-ascii"})


def _charset(content_type: str) -> str:
    # ``Response.charset_encoding`` parses the header with email.message: a sizeable share
    # of a request's CPU at one request per record.
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower().replace("_", "-")
    return ""


def decode_json(response: httpx.Response | Answer) -> Any:
    """orjson on UTF-8 bodies (what JSON APIs send); a body in another declared charset is
    decoded by that charset first (``httpx.Response.json`` would read it as UTF-8)."""
    ctype = (
        response.content_type
        if isinstance(response, Answer)
        else response.headers.get("content-type", "")
    )
    if _charset(ctype) in _UTF8:
        return orjson.loads(response.content)
    return json.loads(_as_response(response).text)


def _as_response(response: httpx.Response | Answer) -> httpx.Response:
    return response.response() if isinstance(response, Answer) else response


# A page of JSON larger than this is not a page (issue 20.9): a broken or hostile server
# could otherwise make a run hold gigabytes. ``max_response_mb`` on a connection changes it.
DEFAULT_MAX_RESPONSE_BYTES = 50_000_000
# With a Content-Length the server has the whole body: this long without a byte mid-body means
# it sent less than it announced (issue 20.10), however long the read timeout is.
DEFAULT_BODY_STALL_S = 5.0


async def read_body(response: httpx.Response, max_bytes: int | None, stall_s: float | None) -> None:
    """``response.aread()`` within ``max_bytes`` of decoded body (a small gzip body can
    inflate to gigabytes), and failing as :class:`ShortBody` when a body with a
    ``Content-Length`` stops coming for ``stall_s``."""
    declared = declared_length(response.headers.get("content-length"))
    if max_bytes is not None and declared is not None and declared > max_bytes:
        await response.aclose()
        raise BodyTooLarge(max_bytes, declared)
    wait = stall_s if declared is not None else None
    parts: list[bytes] = []
    size = 0
    chunks = response.aiter_bytes().__aiter__()
    while True:
        try:
            async with asyncio.timeout(wait):
                part = await anext(chunks)
        except StopAsyncIteration:
            break
        except TimeoutError:
            await response.aclose()
            raise ShortBody(response.num_bytes_downloaded, declared or 0, wait) from None
        except httpx.RemoteProtocolError as exc:
            got = response.num_bytes_downloaded
            if declared is None or got >= declared or isinstance(exc, ShortBody):
                raise
            raise ShortBody(got, declared) from exc
        size += len(part)
        if max_bytes is not None and size > max_bytes:
            await response.aclose()
            raise BodyTooLarge(max_bytes, declared)
        parts.append(part)
    # What ``aread()`` stores: ``.content``, ``.json()`` and ``.text`` read it from there.
    response._content = b"".join(parts)


def _merged(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, header names compared case-insensitively."""
    out = dict(base)
    for name, value in extra.items():
        for old in [k for k in out if k.lower() == name.lower()]:
            del out[old]
        out[name] = value
    return out


@dataclass(frozen=True)
class _Direct:
    headers: dict[str, str]
    json_headers: dict[str, str]
    params: dict[str, str]
    timeout: aiohttp.ClientTimeout
    proxy: str | None
    signed: Signed | None = None  # headers made afresh for each attempt, added last


@lru_cache(maxsize=4096)
def _parsed(url: str) -> httpx.URL:
    """Parsed once per URL: parsing is two thirds of building a request. URLs are immutable."""
    return httpx.URL(url)


class ApiClient:
    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        context: HttpContext,
        auth: httpx.Auth | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        table: Mapping[int, Action] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id_header: str = "x-request-id",
        seed: int | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        body_stall_s: float | None = None,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.table = {**DEFAULT_TABLE, **(table or {})}
        self.request_id_header = request_id_header
        self._sleep = context.sleep
        self._unreachable_retries = context.unreachable_retries
        self._rng = random.Random(seed)
        self.calls = 0
        self.statuses: Counter[int] = Counter()
        self.retries = 0
        mounted = context.transport_for(base_url)
        # A mounted transport (an in-process sandbox in tests) belongs to the context; a
        # network transport belongs to this client and is closed with it.
        self._owned = mounted is None
        self._transport = mounted or network_transport() or httpx.AsyncHTTPTransport()
        self._auth = auth or httpx.Auth()  # the base class's flow sends the request as is
        # Built once: httpx.Request copies the headers it is given, so these are never changed.
        self._headers = httpx.Headers({**DEFAULT_HEADERS, **dict(headers or {})})
        self._json_headers = httpx.Headers({**self._headers, "Content-Type": "application/json"})
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        self._max_bytes = max_response_bytes
        self._stall_s = (
            min(timeout_s, DEFAULT_BODY_STALL_S) if body_stall_s is None else body_stall_s
        )
        self._extensions = {
            "timeout": self._timeout,
            MAX_BYTES: self._max_bytes,
            STALL_S: self._stall_s,
        }
        self._direct = self._direct_parts(headers)

    def _direct_parts(self, headers: Mapping[str, str] | None) -> _Direct | None:
        """What a request needs when it can go straight to the aiohttp transport: the auth
        is static (merged in here, once) or signs the time only, and the transport is ours."""
        if not isinstance(self._transport, AiohttpTransport):
            return None
        signed = signed_headers(self._auth)
        parts = static_parts(self._auth) if signed is None else ({}, {})
        if parts is None:
            return None
        auth_headers, auth_params = parts
        plain = _merged(_merged(DEFAULT_HEADERS, headers or {}), auth_headers)
        return _Direct(
            headers=plain,
            json_headers=_merged(plain, {"Content-Type": "application/json"}),
            params=auth_params,
            timeout=aiohttp_timeout(self._timeout),
            proxy=self._transport.proxy_for_url(self.base_url),
            signed=signed,
        )

    async def aclose(self) -> None:
        if self._owned:
            await self._transport.aclose()

    def _build(
        self,
        method: str,
        rel: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Request:
        content: bytes | None = None
        merged = self._headers
        if json_body is not None:
            content = encode_json(json_body)
            merged = self._json_headers
        if headers:
            merged = merged.copy()
            merged.update(headers)
        # An absolute URL (a next link) is used as it is, as httpx does under a base URL.
        url = _parsed(rel if "://" in rel else f"{self.base_url}/{rel}")
        if params:
            # Merged into a query the path already has (httpx's ``params=`` would replace it).
            url = url.copy_merge_params(params)
        return httpx.Request(
            method,
            url,
            headers=merged,
            content=content,
            data=data,
            extensions=self._extensions,
        )

    async def _send_direct(
        self,
        direct: _Direct,
        method: str,
        rel: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response | Answer:
        """One attempt without an httpx request: the same URL, query, headers and body that
        :meth:`_build` and the auth flow make (tests/http/test_transport.py holds both to it),
        for a tenth of a record's CPU less at one request per record. The answer stays an
        :class:`Answer` unless its body needs decoding."""
        absolute = "://" in rel
        url = rel if absolute else f"{self.base_url}/{rel}"
        if params or direct.params:
            # The auth's parameters last, as its flow merges them after the call's.
            url = str(_parsed(url).copy_merge_params({**(params or {}), **direct.params}))
        body = None if json_body is None else encode_json(json_body)
        sent = direct.headers if body is None else direct.json_headers
        if headers:
            sent = _merged(sent, headers)
        if direct.signed is not None:
            sent = _merged(sent, direct.signed())  # after the call's own, as the auth flow
        assert isinstance(self._transport, AiohttpTransport)
        proxy = self._transport.proxy_for_url(url) if absolute else direct.proxy
        answer = await self._transport.exchange(
            method,
            url,
            sent,
            body,
            direct.timeout,
            proxy,
            max_bytes=self._max_bytes,
            stall_s=self._stall_s,
        )
        if not answer.encoded:
            return answer
        response = answer.response()  # an encoded body: decoded within the limit
        await read_body(response, self._max_bytes, None)  # in memory already: no stall
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One attempt: the auth flow around the transport, the body read in full.

        Why not ``httpx.AsyncClient.send``: its cookie jar, redirect and event-hook handling
        cost a third of a request's CPU once the transport is fast, and none of it is used
        (APIs here authenticate per request and redirects are never followed).
        """
        flow = self._auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._transport.handle_async_request(request)
                response.request = request
                await read_body(response, self._max_bytes, self._stall_s)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        table: Mapping[int, Action] | None = None,
    ) -> httpx.Response:
        """Send with retries; return the response of the first attempt that is not an error.

        Raises the translated error once retries are used up, or at once for errors that a
        retry cannot fix (auth, rejected record, other 4xx).
        """
        return _as_response(
            await self._exchange(
                method,
                path,
                params=params,
                json_body=json_body,
                data=data,
                headers=headers,
                table=table,
            )
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        table: Mapping[int, Action] | None = None,
    ) -> httpx.Response | Answer:
        """:meth:`request`, its answer as the transport gave it (see :meth:`_send_direct`)."""
        rel = path.lstrip("/")
        outcomes = {**self.table, **table} if table else self.table
        attempt = 0
        while True:
            if self.budget is not None:
                await self.budget.acquire(self.platform)
            self.calls += 1
            response: httpx.Response | Answer
            try:
                if self._direct is not None and data is None:
                    response = await self._send_direct(
                        self._direct, method, rel, params, json_body, headers
                    )
                else:
                    response = await self._send(
                        self._build(method, rel, params, json_body, data, headers)
                    )
            except BodyTooLarge as exc:
                raise FatalError(
                    f"{self._target(method, rel)}: {exc}: raise max_response_mb on the "
                    "connection if the API really answers that much at once",
                    platform=self.platform,
                ) from None
            except httpx.TimeoutException:
                error: RetryableError = RetryableError(
                    f"{method} /{rel} timed out", platform=self.platform
                )
                self.statuses[0] += 1
            except httpx.TransportError as exc:
                reason = unreachable(exc)
                error = RetryableError(
                    self._transport_message(method, rel, exc, reason),
                    platform=self.platform,
                )
                self.statuses[0] += 1
                if reason is not None and attempt >= min(
                    self._unreachable_retries, self.retry.max_retries
                ):
                    raise error from None
            else:
                self.statuses[response.status_code] += 1
                if debug_enabled():
                    log.debug(
                        "http",
                        platform=self.platform,
                        method=method,
                        path=rel,
                        status=response.status_code,
                        attempt=attempt,
                    )
                action = classify(response.status_code, outcomes)
                if action is Action.OK:
                    return response
                translated = to_error(
                    action,
                    _as_response(response),
                    platform=self.platform,
                    request_id_header=self.request_id_header,
                )
                if not isinstance(translated, RetryableError):
                    raise translated
                error = translated
                if isinstance(error, RateLimited) and self.budget is not None:
                    self.budget.penalise(error.retry_after or self.retry.min_delay_s)
            if attempt >= self.retry.max_retries:
                raise error
            retry_after = error.retry_after if isinstance(error, RateLimited) else None
            delay = self.retry.delay(attempt, retry_after, self._rng)
            log.info(
                "http.retry",
                platform=self.platform,
                path=rel,
                status=error.status,
                **({} if error.status is not None else {"error": error.message}),
                attempt=attempt + 1,
                delay_s=round(delay, 3),
            )
            self.retries += 1
            attempt += 1
            await self._sleep(delay)

    def _transport_message(
        self, method: str, rel: str, exc: httpx.TransportError, reason: str | None
    ) -> str:
        """What went wrong, with the URL (never its query: it may hold a key) and what to do."""
        url = _parsed(rel if "://" in rel else f"{self.base_url}/{rel}")
        target = self._target(method, rel)
        if isinstance(exc, ShortBody):
            return f"{target}: {exc}: the server or a proxy cut the answer short"
        hostport = f"{url.host}:{url.port}" if url.port else url.host
        if reason == "connection refused":
            return (
                f"{target}: could not connect: connection refused by {hostport} "
                "(is the service running? is base_url right?)"
            )
        if reason == "host not found":
            return (
                f"{target}: could not connect: host {url.host!r} not found "
                "(DNS lookup failed; is base_url right?)"
            )
        detail = str(exc).strip()
        cause = type(exc).__name__ + (f" ({detail})" if detail else "")
        return f"{target}: could not connect to {hostport}: {cause}"

    def _target(self, method: str, rel: str) -> str:
        """``GET https://host:port/path``: the URL without its query (it may hold a key)."""
        url = _parsed(rel if "://" in rel else f"{self.base_url}/{rel}")
        where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        return f"{method} {where}{url.path}"

    async def request_json(self, method: str, path: str, **kw: Any) -> Any:
        """Like :meth:`request` and decode JSON; a malformed body is retried like a 5xx."""
        _, body = await self.request_status_json(method, path, **kw)
        return body

    async def request_status_json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """:meth:`request_json` with the answer's status, for callers whose ``table`` lets
        more than one status through (e.g. a 404 that means "none")."""
        attempt = 0
        while True:
            response = await self._exchange(method, path, **kw)
            if not response.content:
                return response.status_code, None
            try:
                return response.status_code, decode_json(response)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if attempt >= self.retry.max_retries:
                    raise RetryableError(
                        f"{method} {path}: malformed JSON body ({type(exc).__name__})",
                        platform=self.platform,
                        status=response.status_code,
                    ) from None
                attempt += 1
                self.retries += 1
                await self._sleep(self.retry.delay(attempt, None, self._rng))

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.request_json("GET", path, params=params)
