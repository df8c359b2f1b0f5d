"""Reaching a Temporal cluster: the address and namespace from the command line, TLS and the
API key from the environment (Temporal's own variables, read by its SDK's environment
configuration: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH``, ``TEMPORAL_TLS_CLIENT_KEY_PATH``,
``TEMPORAL_TLS_SERVER_CA_CERT_PATH``, ``TEMPORAL_TLS_SERVER_NAME``, or a ``TEMPORAL_PROFILE`` of
``temporal.toml``). An API key turns TLS on, as Temporal Cloud wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from ticketbridge.errors import ConfigError, TicketbridgeError
from ticketbridge.temporal.ids import DEFAULT_TASK_QUEUE

__all__ = ["Cluster", "ClusterUnreachable"]


class ClusterUnreachable(TicketbridgeError):
    """No Temporal frontend answered at the address (or it refused our credentials)."""


@dataclass(frozen=True)
class Cluster:
    """Where to find the cluster; ``None`` fields fall back to the environment."""

    address: str | None = None
    namespace: str | None = None
    task_queue: str = DEFAULT_TASK_QUEUE

    def connect_options(self) -> dict[str, Any]:
        try:
            options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
        except Exception as exc:  # the SDK's loader raises plain RuntimeErrors
            raise ConfigError(f"Temporal client configuration: {exc}") from None
        if self.address:
            options["target_host"] = self.address
        if self.namespace:
            options["namespace"] = self.namespace
        if not options.get("target_host"):
            raise ConfigError(
                "no Temporal address: pass --temporal HOST:PORT (or TEMPORAL_ADDRESS)"
            )
        options.setdefault("namespace", "default")
        return options

    @property
    def where(self) -> str:
        """``address (namespace N)`` for messages; never the key."""
        options = self.connect_options()
        return f"{options['target_host']} (namespace {options['namespace']})"

    async def connect(self, identity: str | None = None) -> Client:
        options = self.connect_options()
        try:
            if identity:
                options["identity"] = identity
            return await Client.connect(**options)
        except RuntimeError as exc:
            # The key and certificates are not in the SDK's message, only the address.
            raise ClusterUnreachable(
                f"cannot reach Temporal at {self.where}: {exc} (is the server running? is the "
                "address right? TLS and API key come from TEMPORAL_TLS* / TEMPORAL_API_KEY)"
            ) from None
