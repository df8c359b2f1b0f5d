"""HTTP outcomes as a table: status -> what the caller does next.

One table instead of status checks scattered over connectors; a connector may pass overrides
(e.g. an API that answers 409 for "already exists" where that means success).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum

import httpx

from ticketbridge.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RecordRejected,
    RetryableError,
)
from ticketbridge.http.retry import parse_retry_after


class Action(Enum):
    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REJECT = "reject"  # the request's record is bad; the call as such worked
    FAIL = "fail"


DEFAULT_TABLE: Mapping[int, Action] = {
    401: Action.AUTH,
    403: Action.AUTH,
    408: Action.RETRY,
    409: Action.REJECT,
    422: Action.REJECT,
    425: Action.RETRY,
    429: Action.RATE_LIMITED,
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}


def classify(status: int, table: Mapping[int, Action] = DEFAULT_TABLE) -> Action:
    if status in table:
        return table[status]
    if 300 <= status < 400:
        # ApiClient follows no redirects: a 3xx (a moved API, a login page) carries no answer,
        # and taking it for an empty one would end a broken run ``ok``.
        return Action.FAIL
    if status < 400:
        return Action.OK
    if status >= 500:
        return Action.RETRY
    return Action.FAIL


def error_message(response: httpx.Response, limit: int = 300) -> str:
    """A short message from the body: common error shapes first, else the truncated text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return text[:limit] or response.reason_phrase
    return _message_from(body)[:limit] or response.reason_phrase


def _message_from(body: object) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):  # Laravel / Airship CRM
            parts = []
            for err in body["errors"]:
                if isinstance(err, dict):
                    msg = str(err.get("message", ""))
                    fld = err.get("field")
                    parts.append(f"{fld}: {msg}" if fld else msg)
            return "; ".join(p for p in parts if p)
        fault = body.get("fault")
        if isinstance(fault, dict):  # Apigee (Ticketmaster)
            return str(fault.get("faultstring", ""))
        for key in ("message", "error", "description", "detail", "statusDetail"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:300] if body is not None else ""


def to_error(
    action: Action,
    response: httpx.Response,
    *,
    platform: str,
    request_id_header: str = "x-request-id",
) -> ConnectorError:
    """Translate a failed response into the error hierarchy of DESIGN section 5."""
    status = response.status_code
    message = error_message(response)
    rid = response.headers.get(request_id_header)
    kw: dict[str, object] = {"platform": platform, "status": status, "request_id": rid}
    if action is Action.RATE_LIMITED:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(message, retry_after=retry_after, **kw)
    if action is Action.RETRY:
        return RetryableError(message, **kw)  # type: ignore[arg-type]
    if action is Action.AUTH:
        return AuthError(message or "not authorised", **kw)  # type: ignore[arg-type]
    if action is Action.REJECT:
        return RecordRejected(message, **kw)  # type: ignore[arg-type]
    if 300 <= status < 400:
        # Only where it points, not its query: a redirect may echo a token sent in the URL.
        location = (response.headers.get("location") or "").split("?")[0]
        moved = f" to {location}" if location else ""
        message = f"redirected{moved}, which is not an API answer; check base_url"
    return FatalError(message, **kw)  # type: ignore[arg-type]
