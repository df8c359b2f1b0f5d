"""A project on the Temporal dev server: sandboxes under uvicorn (tests/e2e/harness.py), the state
in a throwaway PostgreSQL schema, `ticketbridge worker` processes, and a client for the test.

Every test gets its own task queue and its own sync names, so tests sharing the session's
server never meet each other's workflows.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.e2e.harness import Stack
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.project import Project, load_project
from ticketbridge.temporal import ids
from ticketbridge.temporal.cluster import Cluster
from ticketbridge.temporal.commands import request_for, start_run
from ticketbridge.temporal.messages import RunReport
from ticketbridge.temporal.workflows import ScheduledSyncRun

T = TypeVar("T")

HEARTBEAT_S = 3  # a killed worker's run moves on within a few seconds


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Workers:
    stack: Stack
    address: str
    database_url: str
    task_queue: str = field(default_factory=lambda: f"tq-{uuid.uuid4().hex[:10]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stack.env["TICKETBRIDGE_DATABASE_URL"] = self.database_url
        self.stack.env["TICKETBRIDGE_TEMPORAL_HEARTBEAT_TIMEOUT"] = str(HEARTBEAT_S)

    @property
    def cluster(self) -> Cluster:
        return Cluster(self.address, "default", self.task_queue)

    def project(self) -> Project:
        return load_project(self.stack.config, env=self.stack.env)

    def start(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """A worker process; returns once it polls the task queue."""
        n = len(self.procs)
        out = (self.stack.directory / f"worker-{n}.out").open("wb")
        log = (self.stack.directory / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ticketbridge",
                "worker",
                "--temporal",
                self.address,
                "--task-queue",
                self.task_queue,
                "--concurrency",
                str(concurrency),
                "--config",
                str(self.stack.config),
            ],
            stdout=out,
            stderr=log,
            env=self.stack._env(),
            cwd=self.stack.directory,
        )
        self.procs.append(proc)
        ready = self.stack.directory / f"worker-{n}.out"

        def polling() -> bool:
            assert proc.poll() is None, self.output(n)
            return "task queue" in ready.read_text()

        wait_for(f"worker {n} to start", polling, timeout=90)
        return proc

    def output(self, n: int) -> str:
        d = self.stack.directory
        return (d / f"worker-{n}.out").read_text() + (d / f"worker-{n}.log").read_text()

    def cli(self, *args: str) -> subprocess.Popen[str]:
        return self.stack.popen(*args, "--temporal", self.address, "--task-queue", self.task_queue)

    def run(self, sync: str) -> RunReport:
        """One run through the cluster, started from this process (as the CLI does)."""
        request = request_for(self.project(), sync)

        async def go() -> RunReport:
            return await start_run(await self.cluster.connect(), request, self.task_queue)

        return asyncio.run(go())

    def run_scheduled(self, sync: str) -> RunReport:
        """What a schedule's fire does: the scheduled workflow, which starts the sync's own."""
        request = request_for(self.project(), sync)

        async def go() -> RunReport:
            client = await self.cluster.connect()
            return await client.execute_workflow(
                ScheduledSyncRun.run,
                request,
                id=f"{ids.scheduled_workflow_id(sync)}-{uuid.uuid4().hex[:8]}",
                task_queue=self.task_queue,
            )

        return asyncio.run(go())

    @contextmanager
    def store(self) -> Iterator[SqlStateStore]:
        s = open_store(self.database_url)
        try:
            yield s
        finally:
            s.close()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def holder_pid(holder: str) -> int:
    """The worker process of a Temporal lease holder (``…@<pid>@<host>``)."""
    return int(holder.rsplit("@", 2)[-2])


def cli_result(
    proc: subprocess.Popen[str], timeout: float = 120
) -> tuple[int, dict[str, Any], str]:
    """Exit code, the --json summary, and stderr of a finished ``run --temporal --json``."""
    out, err = proc.communicate(timeout=timeout)
    try:
        return proc.returncode, json.loads(out), err
    except json.JSONDecodeError:
        raise AssertionError(f"exit {proc.returncode}: {out}\n{err}") from None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


__all__ = ["HEARTBEAT_S", "Workers", "alive", "cli_result", "holder_pid", "wait_for"]
