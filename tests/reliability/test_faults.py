"""Faults on the source and the destination at once (5xx, 429, bodies cut off after the
write happened, slow answers): every integration's run still ends ``ok`` with the final
destination state of a clean run, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import FIGURES, SEED, clean_run
from tests.reliability.integrations import INTEGRATIONS, Integration, differences

pytestmark = pytest.mark.reliability

FAULTS: dict[str, dict[str, Any]] = {
    "all-at-once": {
        "rate_5xx": 0.08,
        "rate_429": 0.08,
        "retry_after_s": 0,
        "malformed_rate": 0.05,  # the handler runs, then its answer is cut in half
        "latency_ms": 20,
        "slow_rate": 0.2,
    },
    "cut-off-bodies": {"malformed_rate": 0.15, "latency_ms": 5, "slow_rate": 0.5},
}
CASES = [(i, name, seed) for i in INTEGRATIONS for name in FAULTS for seed in (1, 2)]


@pytest.mark.parametrize(
    ("integration", "faults", "seed"), CASES, ids=[f"{i.name}-{f}-{s}" for i, f, s in CASES]
)
def test_a_run_under_faults_ends_as_a_clean_run(
    integration: Integration,
    faults: str,
    seed: int,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clean = clean_run(integration, tmp_path_factory.getbasetemp())
    result, data, sandboxes = integration.run_in_process(
        tmp_path, SEED, {**FAULTS[faults], "seed": seed}
    )
    injected = {platform: dict(sandbox.stats.faults) for platform, sandbox in sandboxes.items()}
    assert result.outcome == "ok", (result, injected)
    assert all(injected.values()), f"both sides must have been faulted: {injected}"
    duplicates = integration.duplicates(data)
    hard = {k: n for k, n in duplicates.items() if k not in integration.at_least_once}
    missing, extra, fields = differences(clean.state, integration.state(data))
    FIGURES.faulty_runs += 1
    FIGURES.faults_injected += sum(n for per in injected.values() for n in per.values())
    FIGURES.duplicates += sum(hard.values())
    FIGURES.at_least_once += sum(duplicates.values()) - sum(hard.values())
    FIGURES.misses += len(missing)
    FIGURES.differing_fields += len(fields) + len(extra)
    FIGURES.lines.append(
        f"faults {integration.name} {faults} seed {seed}: injected {injected}; duplicates "
        f"{dict(duplicates) or 0}, missing {len(missing)}, extra {len(extra)}, differing "
        f"fields {len(fields)}"
    )
    assert not hard, hard
    assert not missing and not extra, (missing[:5], extra[:5])
    assert not fields, fields[:10]
