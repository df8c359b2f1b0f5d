"""What the benchmark needs to know about one integration besides TicketCo -> Airship CRM.

An :class:`Integration` names its two sandboxes, writes ticketbridge's project for it, and
reads its destination sandbox: which source records a run wrote (from the write keys of
``/_sandbox/stats``), what the destination holds (``/_sandbox/data``), and how S3 changes the
source. ``bench/integrations/runner.py`` runs S1, S2, S3 and S5 with it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.contenders import TICKETCO_TOKEN, Contender, Job
from bench.procs import REPO, Sandbox
from ticketbridge.connectors import registry

Row = dict[str, Any]


@dataclass
class Held:
    """What the destination holds, by source key: how many times each key is there."""

    keys: Counter[str]
    extra: Row = field(default_factory=dict)  # integration-specific counts for the row

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.keys.values() if n > 1)


@dataclass
class Change:
    """One S3 change, already applied to the source, and the keys it changes."""

    label: str  # the scenario: S3-1%, S3-10%, S3-event
    expected: set[str]  # source keys the destination must see written
    changed: int  # records changed at the source (in scope or not)
    # After the run: (ok, detail) of a check the write keys cannot make (a pass-group update
    # changes every pass of an event in one call).
    verify: Callable[[Sandbox], tuple[bool, str]] | None = None


class Integration:
    """One integration's sandboxes, ticketbridge project and destination reading."""

    name: str
    sync: str
    source: str  # platform of the source sandbox
    destination: str  # platform of the destination sandbox
    unit: str  # what ``--records`` counts at the source

    def project(self, source: str, destination: str, job: Job) -> dict[str, Any]:
        raise NotImplementedError

    def command(self, contender: Contender, source: str, destination: str) -> list[str] | None:
        """The command of a contender other than ticketbridge; None: not built for it."""
        return None

    def env(self, workdir: Path) -> dict[str, str]:
        """ticketbridge's environment: the sandboxes' fake credentials, a fresh state file."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
            "TICKETCO_TOKEN": TICKETCO_TOKEN,
            "TICKETBRIDGE_DATABASE_URL": f"sqlite:///{workdir / 'state.db'}",
        }
        for platform in (self.source, self.destination):
            spec = registry.get(platform).sandbox
            assert spec is not None
            env.update(spec.env)
        return env

    def written(self, writes: dict[str, Any], destination: Sandbox) -> set[str]:
        """Source keys a run wrote, from the destination's per-key write counts."""
        raise NotImplementedError

    def held(self, destination: Sandbox) -> Held:
        raise NotImplementedError

    def changes(
        self,
        share: float,
        run: int,
        source: Sandbox,
        destination: Sandbox,
        oracle: set[str],
        first: bool,
    ) -> Iterator[Change]:
        """Apply the S3 changes for ``share`` to the source one at a time (each is measured
        before the next is applied) and say what each should write; ``oracle`` is the
        source keys a full load writes; ``first``: the first share of this round."""
        raise NotImplementedError


def connection(platform: str, url: str) -> dict[str, Any]:
    """The connection ``ticketbridge init`` writes for a sandbox at ``url``."""
    spec = registry.get(platform).sandbox
    assert spec is not None
    return dict(spec.config(url))
