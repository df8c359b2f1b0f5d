"""Dead letters as users export them: the one CSV that ``ticketbridge errors --csv`` and the
console's download both write, and the same rows as JSON."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

from ticketbridge.engine.state.base import DeadLetter

FIELDS = ["key", "stage", "reason", "attempts", "first_seen", "last_seen", "resolved_at"]


def values(letter: DeadLetter) -> list[Any]:
    """One CSV row of :data:`FIELDS` (times in ISO 8601, UTC)."""
    return [
        letter.key,
        letter.stage,
        letter.reason,
        letter.attempts,
        letter.first_seen.isoformat(),
        letter.last_seen.isoformat(),
        letter.resolved_at.isoformat() if letter.resolved_at else "",
    ]


def as_dicts(letters: Iterable[DeadLetter]) -> list[dict[str, Any]]:
    return [dict(zip(FIELDS, values(d), strict=True)) for d in letters]


def write_csv(letters: Iterable[DeadLetter], fh: TextIO) -> int:
    """Write the header and one row per dead letter; returns how many rows."""
    writer = csv.writer(fh)
    writer.writerow(FIELDS)
    count = 0
    for letter in letters:
        writer.writerow(values(letter))
        count += 1
    return count
