"""A run killed after its writes and before their commit, at every batch at once: the next run
starts from an empty state file against a destination that already holds everything, and must
end as a clean run, field by field (every write is an upsert on a match key, and whatever a
destination derives from "is this record new" must not change on a second look).

The SIGKILL trials (test_sigkill.py) land such a kill inside one batch at a random point;
this is its deterministic limit, and it found what those trials only hit at some points: a
Heyloyalty member the first attempt created and unsubscribed from e-mail was re-activated by
the rerun's upsert and left active, against the customer's "no"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import SEED, clean_run
from tests.reliability.integrations import INTEGRATIONS, Integration, differences

pytestmark = [pytest.mark.reliability]


@pytest.mark.parametrize("integration", INTEGRATIONS, ids=[i.name for i in INTEGRATIONS])
def test_a_rerun_that_lost_every_acknowledgement_ends_as_a_clean_run(
    integration: Integration, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clean = clean_run(integration, tmp_path_factory.getbasetemp())
    first, _, sandboxes = integration.run_in_process(tmp_path / "first", SEED)
    assert first.outcome == "ok", first
    # Its own state file: nothing the first run acknowledged is known to this one.
    again, data, _ = integration.run_in_process(tmp_path / "again", SEED, sandboxes=sandboxes)
    assert again.outcome == "ok", again

    duplicates = integration.duplicates(data)
    hard = {k: n for k, n in duplicates.items() if k not in integration.at_least_once}
    assert not hard, hard
    missing, extra, fields = differences(clean.state, integration.state(data))
    assert not missing and not extra, (missing[:5], extra[:5])
    assert not fields, fields[:10]
