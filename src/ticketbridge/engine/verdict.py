"""Whether a run that ended early is worth starting again: one decision for every scheduler
(``ticketbridge serve`` and the Temporal worker)."""

from __future__ import annotations

from ticketbridge.engine.spec import RunResult
from ticketbridge.errors import BudgetExhausted, RateLimited, RetryableError, StateError


def verdict(result: RunResult) -> tuple[bool, float | None] | None:
    """None if the run's outcome is final (ok, skipped, partial on its own call cap), else
    ``(retryable, delay)``: whether to try again, and after how long (a rate limit's
    Retry-After; None for the caller's back-off)."""
    if result.outcome in ("ok", "skipped"):
        return None
    error = result.exception
    if isinstance(error, BudgetExhausted):
        return None  # partial by design: a retry would just spend a second cap
    if isinstance(error, RateLimited):
        return True, error.retry_after
    if isinstance(error, RetryableError | StateError):
        # An outage that outlasted the HTTP client's retries, a database blip, or a lease
        # taken by a newer attempt (whose retry then finds the sync running and skips).
        return True, None
    # Anything else (the project file, credentials, a response of the wrong shape, …) ended
    # the run on purpose: retrying the same request would meet the same answer.
    return False, None
