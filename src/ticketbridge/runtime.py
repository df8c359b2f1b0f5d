"""Glue between a loaded project and the engine: build connectors, open the store, run.

The CLI, the scheduler, the demo and the tests all start runs through here, so a run started
any way behaves the same.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ticketbridge.connectors.base import CheckResult, Destination, Source
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.spec import RunOptions, RunResult
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import ConfigError, ConnectorError
from ticketbridge.http.context import HttpContext
from ticketbridge.project import Project

DATABASE_ENV = "TICKETBRIDGE_DATABASE_URL"


def database_url(project: Project) -> str:
    """``TICKETBRIDGE_DATABASE_URL``, else the project's ``database_url``, else a SQLite file
    beside the project file."""
    url = os.environ.get(DATABASE_ENV) or project.file.database_url
    if url:
        return url
    path = (Path(project.path).resolve().parent / "ticketbridge.db").as_posix()
    return f"sqlite:///{path}"


@dataclass
class Runtime:
    project: Project
    store: SqlStateStore
    http: HttpContext = field(default_factory=HttpContext)

    @classmethod
    def open(cls, project: Project, http: HttpContext | None = None,
             url: str | None = None) -> Runtime:
        return cls(project, open_store(url or database_url(project)), http or HttpContext())

    def close(self) -> None:
        self.store.close()

    def source(self, connection: str) -> Source:
        connector = self.project.connector(connection)
        if connector.source is None:
            raise ConfigError(f"{connector.platform} cannot be a source")
        return connector.source(self.project.connections[connection], self.http)

    def destination(self, connection: str) -> Destination:
        connector = self.project.connector(connection)
        if connector.destination is None:
            raise ConfigError(f"{connector.platform} cannot be a destination")
        return connector.destination(self.project.connections[connection], self.http)

    @asynccontextmanager
    async def endpoints(self, sync: str) -> AsyncIterator[tuple[Source, Destination]]:
        cfg = self.project.sync_config(sync)
        source = self.source(cfg.source.connection)
        try:
            destination = self.destination(cfg.destination.connection)
            try:
                yield source, destination
            finally:
                await destination.aclose()
        finally:
            await source.aclose()

    async def run(self, sync: str, opts: RunOptions | None = None) -> RunResult:
        spec = self.project.get_sync(sync)
        cfg = self.project.sync_config(sync)
        async with self.endpoints(sync) as (source, destination):
            result = await run_sync(self.store, spec, source, destination, opts)
        if result.error:
            result.error = self._name_connection(result.error, cfg.source.connection,
                                                 cfg.destination.connection, source.platform,
                                                 destination.platform)
        return result

    @staticmethod
    def _name_connection(message: str, src: str, dst: str, src_p: str, dst_p: str) -> str:
        # Errors come from connectors as "platform: ..."; users know their connection names.
        if message.startswith(f"{dst_p}:"):
            return f"{dst} ({dst_p}):" + message[len(dst_p) + 1:]
        if message.startswith(f"{src_p}:"):
            return f"{src} ({src_p}):" + message[len(src_p) + 1:]
        return message

    async def check(self) -> dict[str, list[CheckResult]]:
        """Reach every connection and run its own checks (credentials, permissions, ids)."""
        results: dict[str, list[CheckResult]] = {}
        for name in self.project.connections:
            connector = self.project.connector(name)
            checks: list[CheckResult] = []
            for role in ("source", "destination"):
                if getattr(connector, role) is None:
                    continue
                endpoint = self.source(name) if role == "source" else self.destination(name)
                try:
                    checks.extend(await endpoint.check())
                except ConnectorError as exc:
                    checks.append(CheckResult(f"{role} reachable", False, str(exc)))
                finally:
                    await endpoint.aclose()
                break  # one endpoint per connection is enough to test credentials
            results[name] = checks
        return results
