"""Running a sync as the batch work it is, in the eyes of the operating system's scheduler.

``ticketbridge run`` and the forked reader of a large load ask Linux for ``SCHED_BATCH``: the
same share of the CPU as any other process, but a process that wakes up no longer preempts
the one running on its core; it takes a core when one is free or at the next regular turn.

Why: a sync wakes up once for almost every answer it waits for. On the benchmark machine (two
cores shared with the sandboxes, bench/README.md "Round 11"), each of those wake-ups
interrupted whatever ran: the Airship sandbox was preempted 1,400 times a second instead of
60, the run went to sleep and woke 3,300 times a second instead of 1,200, and every process
paid for the caches it lost. As a batch process the same load took 12 % less of ticketbridge's
CPU and ran 8-11 % faster. On a host that serves anything else (the web console, a database,
a web site), the other services keep their response times while a nightly load runs.

What it does not change: the process's priority (``nice``), how much CPU it may use, or
anything on other systems. ``TICKETBRIDGE_CPU_POLICY=normal`` keeps the usual policy (a host
where the sync itself must answer quickly, or a measurement of the difference).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV = "TICKETBRIDGE_CPU_POLICY"
CHOICES = ("batch", "normal")


def choice(environ: Mapping[str, str] | None = None) -> str:
    """The policy asked for in the environment; ``batch`` unless set. Raises ValueError,
    naming the variable and what it takes, for anything else."""
    value = (environ if environ is not None else os.environ).get(ENV, "batch")
    chosen = value.strip().lower() or "batch"
    if chosen not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: expected 'batch' or 'normal'")
    return chosen


def run_as_batch(environ: Mapping[str, str] | None = None) -> bool:
    """Ask for ``SCHED_BATCH`` for this process (and the children it forks from now on),
    unless the environment says ``normal``. True when the policy is now batch.

    Not on Linux (no ``sched_setscheduler``), or where the call is refused (a container's
    seccomp profile), the process goes on as it was: the policy is a matter of speed, never
    of correctness."""
    if choice(environ) != "batch":
        return False
    setter = getattr(os, "sched_setscheduler", None)
    batch = getattr(os, "SCHED_BATCH", None)
    if setter is None or batch is None:
        return False
    try:
        setter(0, batch, os.sched_param(0))
    except OSError:
        return False
    return True
