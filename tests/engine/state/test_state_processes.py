"""Single flight between OS processes: racing processes on one database, exactly one wins.

Real processes (multiprocessing, spawn), each with its own store, released together by a
barrier so their transactions genuinely overlap. Run against every backend.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from typing import Any

from ticketbridge.engine.state.sql import open_store

WORKERS = 4
TIMEOUT_S = 60.0


def _race(url: str, worker: int, barrier: Any, results: Any) -> None:
    """One racing process: open (and migrate) the store, then two acquire rounds."""
    try:
        barrier.wait(TIMEOUT_S)
        # Round 0: every process migrates the fresh database at once.
        store = open_store(url)
        holder = f"worker-{worker}"
        try:
            barrier.wait(TIMEOUT_S)
            # Round 1: no lease row yet, so every process tries to insert it.
            first = store.acquire_lease("race", holder, 60)
            results.put(("first", worker, None if first is None else first.token))
            barrier.wait(TIMEOUT_S)
            if first is not None:
                store.release_lease(first)
            barrier.wait(TIMEOUT_S)
            # Round 2: the row exists and is expired, so every process tries to update it.
            second = store.acquire_lease("race", holder, 60)
            results.put(("second", worker, None if second is None else second.token))
        finally:
            store.close()
    except BaseException as error:
        barrier.abort()
        results.put(("error", worker, repr(error)))
        raise


def test_processes_racing_for_a_lease_exactly_one_wins(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_race, args=(db_url, worker, barrier, results), daemon=True)
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()

    outcomes: list[tuple[str, int, Any]] = []
    try:
        while len(outcomes) < 2 * WORKERS:
            outcome = results.get(timeout=TIMEOUT_S)
            assert outcome[0] != "error", f"worker {outcome[1]} failed: {outcome[2]}"
            outcomes.append(outcome)
    except queue_module.Empty:
        raise AssertionError(f"workers did not report in time; got {outcomes}") from None
    finally:
        for process in processes:
            process.join(TIMEOUT_S)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * WORKERS

    for round_name, token in (("first", 1), ("second", 2)):
        winners = [(w, t) for name, w, t in outcomes if name == round_name and t is not None]
        losers = [w for name, w, t in outcomes if name == round_name and t is None]
        assert len(winners) == 1, (round_name, outcomes)
        assert len(losers) == WORKERS - 1
        assert winners[0][1] == token
