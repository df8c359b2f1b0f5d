"""A rate budget shared by every worker: one row per account in PostgreSQL.

``http.RateBudget`` spaces one process's calls to an account; with N workers writing to the
same account, N such buckets would together send N times its ``rate_per_second``. Here the
bucket lives in the state database every worker already shares, as one row per account
holding the account's *theoretical arrival time* (the GCRA form of a token bucket):

* a call may go when ``allowed_at - (burst - 1) / rate <= now``; taking it moves
  ``allowed_at`` to ``max(allowed_at, now) + 1 / rate``, in one conditional UPDATE, so of any
  number of workers racing for a token exactly one gets it;
* a caller that is refused learns how long until the next token and sleeps that long, then
  asks again;
* ``now`` is the database server's ``clock_timestamp()``, so hosts with skewed clocks still
  share one timeline; waits are relative, so no host's clock is compared with another's;
* a 429 pushes ``allowed_at`` to ``now + Retry-After`` for every worker at once (``penalise``).

Each token is taken at the moment its call is about to go, never reserved ahead, so two
calls leave at least ``1 / rate`` apart on the database's clock whichever workers make them:
the same guarantee a single process's bucket gives. Reserving a small batch of tokens per
round trip would save queries, but a worker that then sends late (a busy event loop) would
bunch its calls into the next worker's; at the rates APIs grant (tens a second) one indexed
UPDATE per call costs well under a millisecond (bench/README.md, "Scaling out").

The table is coordination, not state: a few timestamps, safe to drop at any time (the next
call recreates its row). So it is created here, by the workers that need it, rather than by
the state store's migrations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    Table,
    Text,
    extract,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError

from ticketbridge.errors import BudgetExhausted, StateError
from ticketbridge.http.budget import RateBudget
from ticketbridge.http.context import HttpContext

__all__ = ["TABLE", "SharedBucket", "SharedHttpContext", "SharedRateBudget", "rate_budgets"]

TABLE = "ticketbridge_rate_budgets"
_LOCK = 0x74696B72  # pg_advisory_xact_lock key serialising the table's creation ("tikr")

rate_budgets = Table(
    TABLE,
    MetaData(),
    Column("account", Text, primary_key=True),
    # The account's theoretical arrival time: the next call may go once it is (nearly) due.
    Column("allowed_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class SharedBucket:
    """The table's operations. ``clock`` replaces the database's clock (tests only)."""

    engine: Engine
    clock: Callable[[], datetime] | None = None

    def ensure_table(self) -> None:
        if self.engine.dialect.name != "postgresql":
            raise StateError("the shared rate budget needs PostgreSQL")
        try:
            with self.engine.begin() as conn:
                conn.execute(select(func.pg_advisory_xact_lock(_LOCK)))
                rate_budgets.create(conn, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StateError(f"cannot create the shared rate budget table: {exc}") from exc

    def _now(self) -> ColumnElement[datetime]:
        if self.clock is None:
            # The server's clock, read at each statement: one timeline for every host.
            return func.clock_timestamp(type_=DateTime(timezone=True))
        return literal(self.clock(), DateTime(timezone=True))

    def take(self, account: str, rate: float, burst: float) -> float:
        """Take one token: 0.0 if taken, else the seconds until the next one is due."""
        step = timedelta(seconds=1.0 / rate)
        tolerance = timedelta(seconds=(burst - 1.0) / rate)
        b = rate_budgets.c
        now = self._now()
        insert = pg_insert(rate_budgets).values(account=account, allowed_at=now + step)
        take = insert.on_conflict_do_update(
            index_elements=[b.account],
            set_={"allowed_at": func.greatest(b.allowed_at, now) + step},
            where=b.allowed_at - tolerance <= now,
        ).returning(b.account)
        due = select(extract("epoch", b.allowed_at - tolerance - self._now())).where(
            b.account == account
        )
        try:
            with self.engine.begin() as conn:
                if conn.execute(take).first() is not None:
                    return 0.0
                # Refused: the row's next token is not due yet. Same transaction.
                seconds = conn.execute(due).scalar_one()
        except SQLAlchemyError as exc:
            raise StateError(f"shared rate budget of {account}: {exc}") from exc
        # Never 0: a token due "now" but refused means the clock moved between statements.
        return max(float(seconds), 0.001)

    def hold(self, account: str, seconds: float) -> None:
        """Nobody calls ``account`` for ``seconds`` from now (a 429's Retry-After)."""
        b = rate_budgets.c
        later = self._now() + timedelta(seconds=seconds)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(rate_budgets)
                    .where(b.account == account)
                    .values(allowed_at=func.greatest(b.allowed_at, later))
                )
        except SQLAlchemyError as exc:
            raise StateError(f"shared rate budget of {account}: {exc}") from exc


class SharedRateBudget(RateBudget):
    """A :class:`RateBudget` whose tokens come from the shared bucket.

    The per-run call cap (``max_calls``) stays per process: it caps one run, not an account.
    Callers in this process queue on a local lock, so one of them at a time asks the
    database: the query rate is about the call rate, whatever the process's concurrency.
    """

    def __init__(
        self,
        bucket: SharedBucket,
        account: str,
        *,
        rate_per_second: float,
        burst: int | None = None,
        max_calls: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            rate_per_second=rate_per_second,
            burst=burst,
            max_calls=max_calls,
            sleep=sleep,
            monotonic=monotonic,
        )
        self.bucket = bucket
        self.account = account
        self.queries = 0

    async def acquire(self, platform: str = "destination") -> None:
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExhausted(
                f"call budget of {self.max_calls} per run used up", platform=platform
            )
        self.calls += 1
        assert self.rate is not None  # SharedHttpContext builds these for rated accounts only
        async with self._lock:
            while True:
                self.queries += 1
                wait = await asyncio.to_thread(
                    self.bucket.take, self.account, self.rate, self.capacity
                )
                if wait <= 0.0:
                    return
                self.waited_s += wait
                await self._sleep(wait)

    def penalise(self, seconds: float) -> None:
        # Blocking, but rare (a 429 got through): every worker must hold off, not just us.
        self.bucket.hold(self.account, max(seconds, 1.0 / (self.rate or 1.0)))


class SharedHttpContext(HttpContext):
    """An HttpContext whose rated accounts draw from :class:`SharedBucket` (unrated ones,
    with no ``rate_per_second``, keep the plain per-process budget for their call cap)."""

    def __init__(self, bucket: SharedBucket) -> None:
        super().__init__()
        self.bucket = bucket

    def budget(
        self,
        account: str,
        *,
        rate_per_second: float | None,
        burst: int | None,
        max_calls: int | None,
    ) -> RateBudget:
        if rate_per_second is None:
            return super().budget(account, rate_per_second=None, burst=burst, max_calls=max_calls)
        found = self.budgets.get(account)
        if found is None:
            found = SharedRateBudget(
                self.bucket,
                account,
                rate_per_second=rate_per_second,
                burst=burst,
                max_calls=max_calls,
                sleep=self.sleep,
                monotonic=self.monotonic,
            )
            self.budgets[account] = found
        return found
