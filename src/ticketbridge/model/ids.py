"""Stable identifiers and content hashes.

Record keys must be stable across runs and processes (they key the ledger); hashes must be
independent of dict ordering and of Python's hash randomisation.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def record_key(kind: str, *parts: str | int) -> str:
    """``record_key("booking", "ticketco", "R123")`` -> ``"booking:ticketco:R123"``.

    Parts must not contain ``:`` ambiguity-wise; they are joined verbatim because users read
    these keys in dead-letter exports and use them in skip lists.
    """
    return ":".join([kind, *(str(p) for p in parts)])


def stable_hash(value: Any) -> str:
    """A short, order-independent hash of JSON-able content (sorted keys, UTC datetimes)."""
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC)
    return hashlib.blake2b(data, digest_size=16).hexdigest()
