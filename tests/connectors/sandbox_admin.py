"""The admin routes every sandbox serves (``/_sandbox/*``), for connector test harnesses."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxAdmin:
    """Mixed into a harness that has ``transport`` (the sandbox's ASGI transport) and
    ``origin`` (the URL it is mounted at)."""

    transport: httpx.AsyncBaseTransport
    origin: str

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(transport=self.transport, base_url=self.origin) as http:
            response = await http.request(method, "/_sandbox/" + path, json=body)
            response.raise_for_status()
            return response.json()

    async def data(self) -> dict[str, Any]:
        return dict(await self.admin("GET", "data"))

    async def stats(self) -> dict[str, Any]:
        return dict(await self.admin("GET", "stats"))
