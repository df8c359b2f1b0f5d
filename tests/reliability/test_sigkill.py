"""SIGKILL at random points (seeded) in runs of every integration, then a rerun: the final
destination state equals a clean run's, field by field, with no duplicate and no miss.

The killed run is the CLI as a subprocess against sandboxes under uvicorn
(``tests/e2e/harness.py``), the destination slowed down so that the kill lands while writes
are in flight; the rerun goes through the same code in this process, over the same sockets
and state file (it saves a second interpreter start per trial).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.e2e.harness import sigkill_when
from tests.reliability.conftest import FIGURES, SEED, clean_run
from tests.reliability.integrations import INTEGRATIONS, Integration, differences
from ticketbridge.engine.state.sql import open_store
from ticketbridge.http import HttpContext

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

# Four trials of the first integration, three of each other (13 with four integrations; an
# entry added to INTEGRATIONS gets three).
CASES = [(i, n) for k, i in enumerate(INTEGRATIONS) for n in range(4 if k == 0 else 3)]


@pytest.mark.parametrize(("integration", "trial"), CASES, ids=[f"{i.name}-{n}" for i, n in CASES])
def test_sigkill_at_a_random_point_then_a_rerun_ends_as_a_clean_run(
    integration: Integration, trial: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clean = clean_run(integration, tmp_path_factory.getbasetemp())
    assert clean.landed >= 10, "too little data to kill a run in the middle"
    # Not in the last fifth: a kill there may come after the run has finished.
    kill_at = random.Random(f"{integration.name}:{trial}").randint(1, clean.landed * 4 // 5)
    stack = integration.start(tmp_path, SEED)
    state = f"sqlite:///{tmp_path / 'state.db'}"  # the harness's TICKETBRIDGE_DATABASE_URL
    try:
        stack.admin(integration.destination, "faults", integration.slow)
        proc = stack.popen("run", integration.name)

        def landed() -> int:
            return integration.landed_in(stack)

        sigkill_when(stack, proc, landed, kill_at, f"{integration.destination} record")
        at_kill = landed()
        stack.admin(integration.destination, "faults", {})
        result = integration.run(stack.config, stack.env, state, HttpContext())
        assert result.outcome == "ok", result
        data = stack.data(integration.destination)
    finally:
        stack.stop()
    store = open_store(state)
    try:
        outcomes = [r.outcome for r in store.list_runs(integration.name)]
    finally:
        store.close()
    assert outcomes == ["ok", "crashed"], outcomes  # the killed run is closed as crashed

    duplicates = integration.duplicates(data)
    tolerated = {k: n for k, n in duplicates.items() if k in integration.at_least_once}
    hard = {k: n for k, n in duplicates.items() if k not in integration.at_least_once}
    missing, extra, fields = differences(clean.state, integration.state(data))
    FIGURES.trials += 1
    FIGURES.duplicates += sum(hard.values())
    FIGURES.at_least_once += sum(tolerated.values())
    FIGURES.misses += len(missing)
    FIGURES.differing_fields += len(fields) + len(extra)
    FIGURES.lines.append(
        f"kill {integration.name} #{trial} aimed at {kill_at}, landed {at_kill}/"
        f"{clean.landed}: duplicates "
        f"{hard or 0}, re-imported {tolerated or 0}, missing {len(missing)}, extra "
        f"{len(extra)}, differing fields {len(fields)}"
    )
    assert not hard, hard
    assert not missing and not extra, (missing[:5], extra[:5])
    assert not fields, fields[:10]
