"""``ticketbridge worker``: one process polling a task queue and running syncs as workflows.

Every worker must see the same state, so a worker refuses to start on a SQLite state file: the
ledger, checkpoints, leases and dead letters must be one PostgreSQL database for all of them,
or a run resumed on another worker would start from nothing and send everything again. The
workers also share each rated account's budget through it (``budget.py``).

Workers read the project file when they start; after changing it, restart them (and run
``ticketbridge schedules apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import make_url
from temporalio.worker import Worker

from ticketbridge.engine.state.sql import open_store
from ticketbridge.errors import ConfigError
from ticketbridge.project import Project
from ticketbridge.runtime import Runtime, database_url
from ticketbridge.temporal.activities import SyncActivities, worker_identity
from ticketbridge.temporal.budget import SharedBucket, SharedHttpContext
from ticketbridge.temporal.cluster import Cluster
from ticketbridge.temporal.workflows import WORKFLOWS

__all__ = ["require_postgresql", "serve_worker"]


def require_postgresql(url: str) -> None:
    """Refuse a state store other workers cannot share."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return
    where = parsed.database if parsed.get_backend_name() == "sqlite" else parsed.drivername
    raise ConfigError(
        f"a Temporal worker needs the state in PostgreSQL, shared by every worker; this "
        f"project's state is {parsed.get_backend_name()} ({where}). Set "
        "TICKETBRIDGE_DATABASE_URL=postgresql+psycopg://USER:PASSWORD@HOST/DB on every worker "
        "(the same database for all of them)"
    )


async def serve_worker(
    project: Project,
    cluster: Cluster,
    *,
    concurrency: int = 4,
    identity: str | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until ``stop`` is set (or SIGTERM / SIGINT): poll ``cluster.task_queue``, run at
    most ``concurrency`` syncs at once in this process."""
    url = database_url(project)
    require_postgresql(url)
    identity = identity or worker_identity()
    store = open_store(url)
    try:
        bucket = SharedBucket(store.engine)
        bucket.ensure_table()
        runtime = Runtime(project, store, SharedHttpContext(bucket), auto_reader=False)
        client = await cluster.connect(identity)
        activities = SyncActivities(runtime, identity)
        worker = Worker(
            client,
            task_queue=cluster.task_queue,
            workflows=WORKFLOWS,
            activities=[activities.run_sync, activities.record_skipped],
            max_concurrent_activities=concurrency,
            identity=identity,
            # On SIGTERM, give running syncs a moment to reach their next commit; whatever is
            # cut off resumes on another worker from its last committed batch.
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with worker:
            if on_ready is not None:
                on_ready(
                    f"worker {identity}: {cluster.where}, task queue {cluster.task_queue}, "
                    f"{len(project.syncs)} syncs, up to {concurrency} runs at once, state "
                    f"{make_url(url).render_as_string(hide_password=True)}"
                )
            await stop.wait()
    finally:
        store.close()
