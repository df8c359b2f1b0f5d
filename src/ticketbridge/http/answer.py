"""A whole response as the transport read it, without an ``httpx.Response``."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from multidict import CIMultiDict, CIMultiDictProxy

from ticketbridge.http.tls import aiohttp


class Answer:
    """Status, headers and body, without an ``httpx.Response`` (building one, with its
    header parsing, was a tenth of a request's CPU). :meth:`response` makes the
    ``httpx.Response`` for whoever needs one."""

    __slots__ = (
        "_built",
        "_headers",
        "_request",
        "content",
        "content_type",
        "encoded",
        "raw_headers",
        "reason",
        "status_code",
        "version",
    )

    def __init__(
        self,
        status: int,
        headers: CIMultiDict[str] | CIMultiDictProxy[str] | None,
        raw_headers: Iterable[tuple[bytes, bytes]],
        content: bytes,
        request: httpx.Request | None,
        version: str = "HTTP/1.1",
        reason: str = "",
        encoding: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """``headers`` may be left out (made from ``raw_headers`` when first asked for, as
        most answers are read for their body only), ``encoding`` and ``content_type`` then
        being their ``Content-Encoding`` and ``Content-Type``."""
        self.status_code = status
        self._headers = headers
        self.raw_headers = raw_headers
        self.content = content
        if headers is not None:
            encoding = headers.get("Content-Encoding")
            content_type = headers.get("Content-Type")
        # Read from every JSON answer (its charset), so kept apart from the header map.
        self.content_type = content_type or ""
        self.encoded = (encoding or "identity").lower() != "identity"
        self.version = version
        self.reason = reason
        self._request = request
        self._built: httpx.Response | None = None

    @property
    def headers(self) -> CIMultiDict[str] | CIMultiDictProxy[str]:
        """Case-insensitive, like httpx's."""
        if self._headers is None:
            self._headers = CIMultiDict(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers
            )
        return self._headers

    @classmethod
    def of(
        cls, head: aiohttp.ClientResponse, content: bytes, request: httpx.Request | None
    ) -> Answer:
        """The answer aiohttp read: its head, and the body read from it."""
        version = f"HTTP/{head.version.major}.{head.version.minor}" if head.version else "HTTP/1.1"
        return cls(
            head.status,
            head.headers,
            head.raw_headers,
            content,
            request,
            version,
            head.reason or "",
        )

    def response(self) -> httpx.Response:
        """The ``httpx.Response`` of this answer (made once). Its body is decoded when read
        (``await response.aread()``) if it came encoded; otherwise it is already in place."""
        if self._built is not None:
            return self._built
        # A byte stream, not ``content=``: the body is decoded (Content-Encoding) once, when
        # the caller reads it, and httpx does not rebuild the framing headers.
        response = httpx.Response(
            self.status_code,
            headers=list(self.raw_headers),
            stream=httpx.ByteStream(self.content),
            request=self._request,
            extensions={
                "http_version": self.version.encode("ascii"),
                "reason_phrase": self.reason.encode("latin-1", "replace"),
            },
        )
        if not self.encoded:
            # Nothing to decode: the body read (and capped) is the content, as ``aread()``
            # would store it, without reading it a second time through httpx.
            response._content = self.content
        self._built = response
        return response
