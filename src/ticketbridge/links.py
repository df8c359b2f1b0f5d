"""``ticketbridge links SYNC``: each ticket of a sync with its pass URL, from the ledger.

The ledger keeps, per record, the ids the destination acknowledged (``dest_ids``); the
Wallet destination stores there the adaptive link's id and URLs. Listing them needs no call
to the destination. Install status is shown when something recorded it in the ledger
(``install_status``), empty otherwise: the ledger does not hear of installs by itself.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from ticketbridge.engine.state.base import LedgerRow, StateStore

FIELDS = [
    "key",
    "ticket",
    "event",
    "url",
    "ios_url",
    "android_url",
    "install_status",
    "outcome",
    "updated_at",
]


def link_rows(store: StateStore, sync: str) -> Iterator[dict[str, str]]:
    """One row per ledger entry of ``sync`` (key order), with the :data:`FIELDS`."""
    for row in store.iter_ledger(sync):
        yield _row(row)


def _row(row: LedgerRow) -> dict[str, str]:
    ids = row.dest_ids
    return {
        "key": row.key,
        "ticket": ids.get("link_external", ""),
        "event": ids.get("event", ""),
        "url": ids.get("url", ""),
        "ios_url": ids.get("ios_url", ""),
        "android_url": ids.get("android_url", ""),
        "install_status": ids.get("install_status", ""),
        "outcome": row.last_outcome,
        "updated_at": row.updated_at.isoformat() if row.updated_at else "",
    }


def write_csv(rows: Iterator[dict[str, str]], fh: TextIO) -> int:
    writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n
