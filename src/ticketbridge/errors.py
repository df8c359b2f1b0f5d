"""The exception hierarchy, named by what the caller should do next (DESIGN section 5).

Messages raised to users never contain secrets: connectors build them from the platform name,
the status and the redacted body; the full detail goes to the debug log only.
"""

from __future__ import annotations

from typing import Any


class TicketbridgeError(Exception):
    """Base of every error ticketbridge raises on purpose."""


class ConfigError(TicketbridgeError):
    """Bad project file or credentials: stop before anything runs and tell the user."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = ""
        if file is not None:
            where = file if line is None else f"{file}:{line}"
        prefix = f"{where}: " if where else ""
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)
        self.message = message


class ConnectorError(TicketbridgeError):
    """A platform answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        status: int | None = None,
        request_id: str | None = None,
        connection: str | None = None,
    ) -> None:
        self.platform = platform
        self.status = status
        self.request_id = request_id
        self.connection = connection
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        who = f"{self.connection} ({self.platform})" if self.connection else self.platform
        status = f" HTTP {self.status}" if self.status is not None else ""
        rid = f" [request {self.request_id}]" if self.request_id else ""
        return f"{who}:{status} {self.message}{rid}"


class RetryableError(ConnectorError):
    """429 / 5xx / timeout: back off and try again; the cursor is not advanced."""


class RateLimited(RetryableError):
    """The platform (or our own budget) says: not now. ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class BudgetExhausted(RateLimited):
    """The run used up the calls it may make: checkpoint and end the run as ``partial``."""


class FatalError(ConnectorError):
    """Another 4xx: this run cannot go on."""


class AuthError(FatalError):
    """401 / 403: the connection needs new credentials."""


class AcmeRefused(FatalError):
    """ACME refused a write with a 4xx and its ``{"message","code"}`` body (e.g. capacity)."""

    def __init__(self, message: str, *, code: str | None, status: int) -> None:
        self.code = code
        super().__init__(message, platform="acme", status=status)


class RecordRejected(ConnectorError):
    """The destination refused one record: dead-letter it with the reason and go on."""

    def __init__(self, message: str, *, record_key: str | None = None, **kw: object) -> None:
        self.record_key = record_key
        kw.setdefault("platform", "destination")
        super().__init__(message, **kw)  # type: ignore[arg-type]


class MappingError(TicketbridgeError):
    """A platform payload could not be turned into a canonical record: dead-letter it, go on."""

    def __init__(self, record_key: str, reason: str) -> None:
        self.record_key = record_key
        self.reason = reason
        super().__init__(f"{record_key}: {reason}")


class StateError(TicketbridgeError):
    """The state store failed or holds something it should not."""


class LeaseLost(StateError):
    """Another holder took the sync's lease: this process must stop writing at once."""


class LeaseBusy(StateError):
    """Another holder has the sync's lease: the sync is running elsewhere; skip, do not wait."""

    def __init__(self, sync: str) -> None:
        self.sync = sync
        super().__init__(f"sync {sync!r} is already running (its lease is held)")


class SupplierError(TicketbridgeError):
    """A Tiqets Supplier API request the spec answers with 400 and one of its error codes."""

    def __init__(self, code: int, error: str, message: str) -> None:
        self.code = code
        self.error = error
        self.message = message
        super().__init__(f"{code} {error}: {message}")

    def body(self) -> dict[str, Any]:
        return {"error_code": self.code, "error": self.error, "message": self.message}


class CallbackRefused(TicketbridgeError):
    """An inbound platform callback without the registered secret, or with a body that is not
    one: answer 401 / 400 and act on nothing."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        self.status = status  # 401: not from the platform; 400: from it, but not readable
        super().__init__(message)
