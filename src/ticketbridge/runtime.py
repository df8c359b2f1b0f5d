"""Glue between a loaded project and the engine: build connectors, open the store, run.

The CLI, the scheduler, the demo and the tests all start runs through here, so a run started
any way behaves the same.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ticketbridge import logs, notify
from ticketbridge.connectors.base import CheckResult, Destination, Source
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.reader_process import ProcessSource
from ticketbridge.engine.spec import RunOptions, RunResult, SyncSpec
from ticketbridge.engine.state.peek import peek_checkpoint
from ticketbridge.engine.windows import RunReads
from ticketbridge.errors import ConfigError, ConnectorError, TicketbridgeError
from ticketbridge.http.context import HttpContext
from ticketbridge.project import Project

if TYPE_CHECKING:
    from ticketbridge.engine.state.sql import SqlStateStore

DATABASE_ENV = "TICKETBRIDGE_DATABASE_URL"

log = structlog.get_logger("ticketbridge.runtime")


def database_url(project: Project) -> str:
    """``TICKETBRIDGE_DATABASE_URL``, else the project's ``database_url``, else a SQLite file
    beside the project file."""
    url = os.environ.get(DATABASE_ENV) or project.file.database_url
    if url:
        return url
    path = (Path(project.path).resolve().parent / "ticketbridge.db").as_posix()
    return f"sqlite:///{path}"


class Runtime:
    """A loaded project with its state store and HTTP context.

    The store is opened on first use when the runtime was made by :meth:`open` (SQLAlchemy
    and the schema check cost a few tenths of a second; a run's reader starts meanwhile, see
    :meth:`run`)."""

    def __init__(
        self,
        project: Project,
        store: SqlStateStore | None = None,
        http: HttpContext | None = None,
        *,
        auto_reader: bool = True,
        url: str | None = None,
    ) -> None:
        if store is None and url is None:
            raise ValueError("a Runtime needs a store or the URL of one")
        self.project = project
        self._store = store
        self._url = url
        self.http = http or HttpContext()
        # Whether ``source_process: auto`` may fork a reader here. A Temporal worker says no:
        # its rate budget is shared with other workers through this process's HTTP context,
        # which a forked reader would not use, and its SDK runs threads of its own.
        self.auto_reader = auto_reader

    @classmethod
    def open(
        cls, project: Project, http: HttpContext | None = None, url: str | None = None
    ) -> Runtime:
        return cls(project, http=http, url=url or database_url(project))

    @property
    def store(self) -> SqlStateStore:
        """The state store, opened (and its schema brought to head) on first use. Raises
        StateError when the database cannot be opened or is not a state database."""
        if self._store is None:
            from ticketbridge.engine.state.sql import open_store

            assert self._url is not None
            self._store = open_store(self._url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def source(self, connection: str, http: HttpContext | None = None) -> Source:
        connector = self.project.connector(connection)
        if connector.source is None:
            raise ConfigError(f"{connector.platform} cannot be a source")
        return connector.source(self.project.connections[connection], http or self.http)

    def _child_source(self, connection: str) -> tuple[Callable[[], Source], Callable[[], float]]:
        """Builds the source again inside the reader process, with a fresh HTTP context:
        its own connections and rate budget, and the same mounted transports; and what that
        budget made it wait (both called in the child, each on its own copy)."""
        transports = dict(self.http.transports)
        built: list[HttpContext] = []

        def build() -> Source:
            built.append(HttpContext(transports=transports))
            return self.source(connection, built[-1])

        def waited() -> float:
            return sum(b.waited_s for ctx in built for b in ctx.budgets.values())

        return build, waited

    def destination(self, connection: str) -> Destination:
        connector = self.project.connector(connection)
        if connector.destination is None:
            raise ConfigError(f"{connector.platform} cannot be a destination")
        return connector.destination(self.project.connections[connection], self.http)

    def reads_in_child(self, sync: str, source: Source) -> bool:
        """Whether ``sync`` reads ``source`` in a forked child (``source_process``).

        ``auto`` forks where it pays and is safe: the source declares that its reads are
        self-contained and that reading and mapping are a large share of a run
        (``reads_in_child``), the source is reached over the network (a transport mounted in
        this process, e.g. an in-process sandbox, would be a copy in the child), fork exists,
        and this runtime allows it (see ``auto_reader``)."""
        cfg = self.project.sync_config(sync)
        setting = cfg.source_process
        forkable = "fork" in multiprocessing.get_all_start_methods()
        if setting is True and not forkable:
            raise ConfigError(
                "source_process: true needs fork() (Linux); remove it here",
                field=f"syncs.{sync}.source_process",
            )
        if setting != "auto":
            return bool(setting)
        connection = self.project.connections[cfg.source.connection]
        base_url = getattr(connection, "base_url", None)
        mounted = base_url is not None and self.http.transport_for(str(base_url)) is not None
        return (
            forkable
            and self.auto_reader
            and bool(getattr(source, "reads_in_child", False))
            and not mounted
            # A context with a clock of its own (virtual time in tests) stays in this process:
            # the child's context would sleep for real.
            and self.http.sleep is asyncio.sleep
        )

    @asynccontextmanager
    async def endpoints(
        self, sync: str, made: Callable[[Source], None] | None = None
    ) -> AsyncIterator[tuple[Source, Destination]]:
        """The sync's source and destination, closed after the block. ``made`` is called with
        the source before the destination is built (:meth:`run` starts the reader there)."""
        cfg = self.project.sync_config(sync)
        source = self.source(cfg.source.connection)
        if self.reads_in_child(sync, source):
            log.debug("reader.process", sync=sync, platform=source.platform)
            source = ProcessSource(source, *self._child_source(cfg.source.connection))
        try:
            if made is not None:
                made(source)
            destination = self.destination(cfg.destination.connection)
            try:
                yield source, destination
            finally:
                await destination.aclose()
        finally:
            await source.aclose()

    async def run(
        self, sync: str, opts: RunOptions | None = None, spec: SyncSpec | None = None
    ) -> RunResult:
        """One run of ``sync`` (as ``spec`` when given: a manual import's own copy). The run
        stores its log tail and the rate-budget waits of its accounts in its detail."""
        opts = opts or RunOptions()
        spec = spec or self.project.get_sync(sync)
        cfg = self.project.sync_config(sync)
        with logs.capture_tail() as tail:
            prestart = partial(self._prestart, spec=spec, opts=opts)
            async with self.endpoints(sync, prestart) as (source, destination):
                # Budgets exist once the endpoints are built.
                waited = self._budget_waits(source)
                result = await run_sync(
                    self.store,
                    spec,
                    source,
                    destination,
                    replace(opts, on_finish=self._finish_detail(opts, tail, source, waited)),
                )
        if result.run_id is not None and result.counters.rejected and cfg.notify is not None:
            failed = result.error if result.outcome == "failed" else None
            self._report_errors(sync, result.run_id, cfg.notify.errors_to, failed)
        if result.error:
            result.error = self._name_connection(
                result.error,
                cfg.source.connection,
                cfg.destination.connection,
                source.platform,
                destination.platform,
            )
        return result

    def _prestart(self, source: Source, spec: SyncSpec, opts: RunOptions) -> None:
        """Start the reader on the checkpoint as the state file has it, before the store is
        open: the store's import and schema check, the lease and the run row then overlap
        the first source calls instead of coming before them. Only for a store not yet open
        and a SQLite file (:mod:`~ticketbridge.engine.state.peek`); the run itself takes the
        reader over only if it asks for the same first read."""
        if not isinstance(source, ProcessSource) or self._store is not None or not self._url:
            return
        leases = (spec.name,) if spec.shared_lease is None else (spec.name, spec.shared_lease)
        checkpoint = peek_checkpoint(self._url, spec.name, leases)
        if checkpoint is None:
            return
        try:
            first = next(RunReads(spec.with_overrides(opts), opts, checkpoint).requests(), None)
        except (TicketbridgeError, ValueError):
            return  # the run finds and reports the same problem, under its lease
        if first is not None:
            source.prestart(first)

    def _budget_waits(self, source: Source) -> float:
        """Seconds waited on the rate budgets of this process, and of the source's reader
        processes if it reads in one."""
        here = sum(b.waited_s for b in self.http.budgets.values())
        return here + (source.child_budget_wait_s if isinstance(source, ProcessSource) else 0.0)

    def _finish_detail(
        self, opts: RunOptions, tail: Iterable[str], source: Source, waited: float
    ) -> Callable[[], Mapping[str, Any]]:
        def detail() -> Mapping[str, Any]:
            extra = dict(opts.on_finish() if opts.on_finish else {})
            # Waits of every account this process budgets, while the run went on: a run
            # sharing an account with another counts the other's waits too.
            extra["budget_wait_s"] = round(self._budget_waits(source) - waited, 3)
            lines = list(tail)
            if lines:
                extra["log"] = lines
            return extra

        return detail

    def _report_errors(
        self, sync: str, run_id: int, to: list[str], failed: str | None = None
    ) -> None:
        """Email the records that failed in this run; a mail failure never fails the run."""
        smtp = self.project.file.smtp
        assert smtp is not None  # the project loader insists on it
        letters = [d for d in self.store.list_dead_letters(sync) if d.last_run_id == run_id]
        if not letters:
            return
        try:
            report = notify.error_report(sync, run_id, letters, smtp, to, run_failed=failed)
            notify.send(report, smtp)
            log.info("notify.sent", sync=sync, run_id=run_id, records=len(letters))
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notify.failed", sync=sync, run_id=run_id, error=str(exc))

    @staticmethod
    def _name_connection(message: str, src: str, dst: str, src_p: str, dst_p: str) -> str:
        # Errors come from connectors as "platform: ..."; users know their connection names.
        if message.startswith(f"{dst_p}:"):
            return f"{dst} ({dst_p}):" + message[len(dst_p) + 1 :]
        if message.startswith(f"{src_p}:"):
            return f"{src} ({src_p}):" + message[len(src_p) + 1 :]
        return message


def _endpoint(
    project: Project, http: HttpContext, connection: str, role: str
) -> Source | Destination | None:
    connector = project.connector(connection)
    factory = connector.source if role == "source" else connector.destination
    return None if factory is None else factory(project.connections[connection], http)


async def _run_check(label: str, pending: Awaitable[list[CheckResult]]) -> list[CheckResult]:
    try:
        return await pending
    except ConnectorError as exc:
        return [CheckResult(label, False, str(exc))]


NOT_CHECKED = "not checked: "


async def check_project(project: Project, http: HttpContext) -> dict[str, list[CheckResult]]:
    """Reach every connection and run its own checks (credentials, permissions, ids), then
    each sync's checks that need its settings (e.g. its venues exist on both sides).

    Each result is reported once: a sync's check that repeats its connection's (same name,
    same answer) is left out, and a sync whose connection failed is not checked (one result
    saying so). Results whose detail starts with :data:`NOT_CHECKED` were not run.
    """
    results: dict[str, list[CheckResult]] = {}
    for name in project.connections:
        checks: list[CheckResult] = []
        for role in ("source", "destination"):
            endpoint = _endpoint(project, http, name, role)
            if endpoint is None:
                continue
            try:
                checks.extend(await _run_check(f"{role} reachable", endpoint.check()))
            finally:
                await endpoint.aclose()
            break  # one endpoint per connection is enough to test its credentials
        results[name] = checks
    failed = {name for name, checks in results.items() if any(not c.ok for c in checks)}
    for sync, spec in project.syncs.items():
        cfg = project.sync_config(sync)
        blocked = [
            c
            for c in dict.fromkeys((cfg.source.connection, cfg.destination.connection))
            if c in failed
        ]
        if blocked:
            results[f"sync {sync}"] = [
                CheckResult(
                    "settings",
                    False,
                    f"{NOT_CHECKED}connection{'s' if len(blocked) > 1 else ''} "
                    f"{' and '.join(blocked)} failed",
                )
            ]
            continue
        checks = []
        source = _endpoint(project, http, cfg.source.connection, "source")
        destination = _endpoint(project, http, cfg.destination.connection, "destination")
        try:
            # Connectors may offer checks that need the sync's settings; duck-typed, since
            # most have none.
            if source is not None and inspect.signature(source.check).parameters:
                pending = source.check(spec.stream_options)  # type: ignore[call-arg]
                checks += await _run_check("source", pending)
            check_options = getattr(destination, "check_options", None)
            if check_options is not None:
                checks += await _run_check("destination", check_options(spec.object_options))
            venues = getattr(spec.stream_options, "venues", None)
            check_venues = getattr(destination, "check_venues", None)
            if venues and check_venues is not None:
                checks += await _run_check("venues", check_venues(list(venues)))
        finally:
            for endpoint in (source, destination):
                if endpoint is not None:
                    await endpoint.aclose()
        seen = {
            (c.name, c.ok, c.detail)
            for c in results[cfg.source.connection] + results[cfg.destination.connection]
        }
        checks = [c for c in checks if (c.name, c.ok, c.detail) not in seen]
        if checks:
            results[f"sync {sync}"] = checks
    if project.supplier_api is not None:
        from ticketbridge.supplier import check_supplier

        acme = project.connections[project.supplier_api.connection]
        results["supplier_api"] = await _run_check(
            "supplier_api",
            check_supplier(project.supplier_api, acme, http),  # type: ignore[arg-type]
        )
    return results
