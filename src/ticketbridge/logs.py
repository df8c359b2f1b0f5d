"""Logging setup: structlog to stderr, with every known secret redacted from every event."""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

REDACTED = "***"
_level = {"debug": True}  # until configure() says otherwise, every event is wanted


def debug_enabled() -> bool:
    """Whether debug events are kept: a per-request debug line costs a logger bind even when
    it is filtered out, so hot paths ask first."""
    return _level["debug"]


class Redactor:
    """A structlog processor replacing secret values wherever they appear in an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        return value

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        return {k: self.scrub(v) for k, v in event.items()}


# The log tail of the run in progress in this context (task), if one is being kept.
_tail: ContextVar[deque[str] | None] = ContextVar("ticketbridge_log_tail", default=None)
TAIL_LINES = 100
LINE_CHARS = 300


@contextmanager
def capture_tail(limit: int = TAIL_LINES) -> Iterator[deque[str]]:
    """Keep the last ``limit`` log lines emitted in this context (one run's: asyncio tasks it
    starts share it), secrets already redacted, each cut at ``LINE_CHARS``. Lines below the
    configured level are never made, so they are not kept either. Inside another capture it
    keeps to that one's lines (the console watches a run's tail while it runs)."""
    outer = _tail.get()
    if outer is not None:
        yield outer
        return
    tail: deque[str] = deque(maxlen=limit)
    token = _tail.set(tail)
    try:
        yield tail
    finally:
        _tail.reset(token)


def extend_tail(lines: Iterable[str]) -> None:
    """Add lines logged elsewhere for this run (its reader process) to the capture of this
    context, if there is one."""
    tail = _tail.get()
    if tail is not None:
        tail.extend(lines)


def _tee(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
    tail = _tail.get()
    if tail is not None:
        head = " ".join(str(event.get(k, "")) for k in ("timestamp", "level", "event"))
        rest = " ".join(
            f"{k}={v}" for k, v in event.items() if k not in ("timestamp", "level", "event")
        )
        tail.append(f"{head} {rest}".strip()[:LINE_CHARS])
    return event


def configure(level: str = "INFO", secrets: Iterable[str] = (), json: bool = False) -> Redactor:
    redactor = Redactor(secrets)
    _level["debug"] = logging.getLevelName(level.upper()) <= logging.DEBUG
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    for noisy in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redactor,
            _tee,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return redactor
