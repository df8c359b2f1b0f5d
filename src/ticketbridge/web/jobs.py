"""Actions started from the console, run on one event loop in one worker thread.

Runs write to the state store synchronously and map records on the CPU, as they do under the
CLI; on their own loop they never hold up a page. One loop for every action also means one
HTTP context, so syncs that share a destination account share its rate budget, as under
``ticketbridge serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ticketbridge import logs
from ticketbridge.engine.state.base import RunCounters

KEEP = 200  # finished jobs remembered (their runs are in the store anyway)


@dataclass
class Job:
    """One action in flight or done: what the waiting page and a running run's page show."""

    sync: str
    kind: str  # run | dry-run | retry | backfill
    started_by: str
    id: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    run_id: int | None = None
    done: bool = False
    outcome: str | None = None
    error: str | None = None
    counters: RunCounters = field(default_factory=RunCounters)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=logs.TAIL_LINES))

    def progress(self, counters: RunCounters) -> None:
        self.counters = replace(counters)

    def started(self, run_id: int) -> None:
        self.run_id = run_id


Work = Callable[[Job], Coroutine[Any, Any, None]]


class Jobs:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="console-actions", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def start(self, job: Job, work: Work) -> Job:
        loop = self._ensure_loop()
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                oldest = next(iter(self._jobs))
                if not self._jobs[oldest].done:
                    break
                self._jobs.pop(oldest)
                self._futures.pop(oldest, None)
        self._futures[job.id] = asyncio.run_coroutine_threadsafe(self._run(job, work), loop)
        return job

    @staticmethod
    async def _run(job: Job, work: Work) -> None:
        # The job's log tail is the run's: Runtime.run keeps to an enclosing capture.
        with logs.capture_tail() as tail:
            job.log = tail
            try:
                await work(job)
            except Exception as exc:  # shown on the job's page; the run (if any) says more
                job.error = job.error or str(exc) or type(exc).__name__
                job.outcome = job.outcome or "failed"
            finally:
                job.done = True

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def for_run(self, run_id: int) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.run_id == run_id), None)

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.done]

    def wait(self, timeout: float = 30.0) -> None:
        """Wait for every job started so far to end (tests, shutdown)."""
        for future in list(self._futures.values()):
            with contextlib.suppress(Exception):
                future.result(timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Let running actions finish (up to ``timeout``), cancel the rest, stop the loop."""
        loop = self._loop
        if loop is None:
            return
        self.wait(timeout)
        for future in self._futures.values():
            future.cancel()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = None
