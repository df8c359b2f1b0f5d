"""What a response body can be besides whole: over the caller's limit, or shorter than its
``Content-Length``. Raised by both request paths of the transport (``http/transport.py``
and ``http/h1.py``)."""

from __future__ import annotations

import httpx


class BodyTooLarge(Exception):
    """A response body over the caller's limit: reading stopped there (or never began, when
    its ``Content-Length`` said so). Not an httpx error: a retry would get the same body."""

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"{declared:,} bytes" if declared is not None else "more"
        super().__init__(f"response body of {size} is over the limit of {limit:,} bytes")


class ShortBody(httpx.RemoteProtocolError):
    """The body ended, or stopped coming, before the length its ``Content-Length`` gave."""

    def __init__(self, got: int, declared: int, stalled_s: float | None = None) -> None:
        announced = f"{got:,} of the {declared:,} bytes its Content-Length announced"
        if stalled_s is None:
            super().__init__(f"the response ended after {announced}")
        else:
            super().__init__(
                f"the response stopped after {announced} (nothing more for {stalled_s:g} s)"
            )
