"""Small pieces every connector needs, so each writes only what is particular to its platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from ticketbridge.connectors.base import ConnectionConfig
from ticketbridge.errors import ConfigError
from ticketbridge.http.auth import Auth
from ticketbridge.http.client import ApiClient
from ticketbridge.http.context import HttpContext
from ticketbridge.http.retry import RetryPolicy

M = TypeVar("M", bound=BaseModel)


def connection_client(
    cfg: ConnectionConfig,
    ctx: HttpContext,
    *,
    platform: str,
    account: str,
    auth: Auth | None,
    base_url: str | None = None,
    max_retries: int | None = None,
    timeout_s: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiClient:
    """An ApiClient with the connection's timeout and retries, and the rate budget of
    ``account``: one bucket per account, shared by every sync that calls it (DESIGN 3.6)."""
    budget = ctx.budget(
        account,
        rate_per_second=cfg.rate_per_second,
        burst=cfg.rate_burst,
        max_calls=cfg.max_calls_per_run,
    )
    return ApiClient(
        platform=platform,
        base_url=base_url or cfg.base_url,
        context=ctx,
        auth=auth,
        timeout_s=cfg.timeout_s if timeout_s is None else timeout_s,
        retry=RetryPolicy(max_retries=cfg.max_retries if max_retries is None else max_retries),
        budget=budget,
        headers=headers,
    )


def coerce_options(options: BaseModel | Mapping[str, Any] | None, model: type[M]) -> M:
    """The engine hands options as the model it validated; tests and callers may pass a dict
    or a base options object. Always returns ``model``, validated."""
    if isinstance(options, model):
        return options
    data = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
    return model.model_validate(data)


def expect_name(platform: str, kind: str, name: str, known: Sequence[str]) -> None:
    """Refuse a stream/object name the connector does not have, naming the ones it has."""
    if name not in known:
        raise ConfigError(f"{platform} has no {kind} {name!r} ({kind}s: {', '.join(known)})")
