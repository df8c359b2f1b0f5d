"""Error classes -> retry decisions: what Temporal does with a run that ended early."""

from __future__ import annotations

import pytest

from ticketbridge.engine.spec import RunResult
from ticketbridge.engine.state.base import RunCounters
from ticketbridge.engine.verdict import verdict
from ticketbridge.errors import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    FatalError,
    LeaseLost,
    MappingError,
    RateLimited,
    RetryableError,
    StateError,
)
from ticketbridge.temporal.activities import NON_RETRYABLE
from ticketbridge.temporal.workflows import _NON_RETRYABLE


def result(outcome: str, error: BaseException | None) -> RunResult:
    return RunResult("s", outcome, RunCounters(), 1, str(error) if error else None, exception=error)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AuthError("token refused", platform="airship_crm", status=401), (False, None)),
        (FatalError("bad request", platform="airship_crm", status=400), (False, None)),
        (ConfigError("no such venue"), (False, None)),
        (RetryableError("503", platform="airship_crm", status=503), (True, None)),
        (RateLimited("429", platform="airship_crm", status=429, retry_after=7.0), (True, 7.0)),
        (StateError("database restarting"), (True, None)),
        (LeaseLost("taken by a newer attempt"), (True, None)),
        (MappingError("k", "unexpected shape"), (False, None)),
    ],
)
def test_a_failed_run_is_retried_only_when_trying_again_can_help(
    error: BaseException, expected: tuple[bool, float | None]
) -> None:
    outcome = "partial" if isinstance(error, RateLimited) else "failed"
    assert verdict(result(outcome, error)) == expected


def test_finished_runs_and_a_used_up_call_cap_are_final() -> None:
    assert verdict(result("ok", None)) is None
    assert verdict(result("skipped", None)) is None
    cap = BudgetExhausted("call budget of 100 per run used up", platform="airship_crm")
    assert verdict(result("partial", cap)) is None


def test_the_workflows_retry_policy_names_the_same_final_errors() -> None:
    assert sorted(_NON_RETRYABLE) == sorted(NON_RETRYABLE)
