"""aiohttp without its import-time TLS contexts, and the TLS context of https requests.

Why: importing ``aiohttp.connector`` builds two TLS contexts at once, each loading the system's
CA bundle (about 30 ms of CPU apiece), in every process and before its first request, though a
sync of http endpoints (every sandbox on loopback) never does TLS. Imported through here (the
only place ticketbridge imports aiohttp from), they are built without the bundle, and the
transport never uses them: it passes :func:`context` with every request that may do TLS, the
same settings as aiohttp's own verified default, built at the first such request. Were other
code in the process to rely on aiohttp's default contexts, its TLS connections would fail
verification (no CA loaded); they could never go unverified.
"""

from __future__ import annotations

import ssl
import sys
from functools import cache


def _import_aiohttp() -> None:
    if "aiohttp" in sys.modules or "set_default_verify_paths" in vars(ssl.SSLContext):
        return  # already imported (with its contexts), or someone else's patch is in place

    def no_ca_bundle(self: ssl.SSLContext) -> None:
        """Stands in for loading the CA bundle while aiohttp builds its default contexts."""

    ssl.SSLContext.set_default_verify_paths = no_ca_bundle  # type: ignore[method-assign]
    try:
        import aiohttp.connector  # noqa: F401
    finally:
        del ssl.SSLContext.set_default_verify_paths  # the inherited one again


_import_aiohttp()

import aiohttp  # noqa: E402  - imported above already; this binds the name

__all__ = ["aiohttp", "context", "needs_context"]


@cache
def context() -> ssl.SSLContext:
    """What aiohttp verifies https with by default: the system's CAs, host names checked,
    HTTP/1.1 offered by ALPN. Built once, at the first request that needs it."""
    made = ssl.create_default_context()
    made.set_alpn_protocols(("http/1.1",))
    return made


def needs_context(url: str, proxy: str | None) -> bool:
    """Whether a request may do TLS: an https URL, or any URL through an https proxy."""
    return url[:6].lower() == "https:" or (proxy is not None and proxy[:6].lower() == "https:")
