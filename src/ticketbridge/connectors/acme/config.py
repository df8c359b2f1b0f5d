"""Connection settings for ACME Ticketing (``platforms.md`` section 8).

ACME runs two separate environments whose ids (event templates, ticket types, organizations)
differ [DOC seed page]; ``environment`` picks the base URL unless one is given explicitly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, model_validator

from ticketbridge.connectors.base import ConnectionConfig

PLATFORM = "acme"
Environment = Literal["sandbox", "production"]

BASE_URLS: dict[str, str] = {
    "production": "https://api.acmeticketing.net",
    "sandbox": "https://sand1-api.acmeticketing.net",
}

# The fake credentials the local sandbox accepts (never real ones).
SANDBOX_API_KEY = "sandbox-acme-key"
SANDBOX_USERNAME = "api_tiqets"
SANDBOX_PASSWORD = "sandbox-acme-password"  # noqa: S105 - the sandbox's fake password
SANDBOX_TENANT_ID = "1234"

# The API user's permissions the Tiqets integration needs, with the role that grants each,
# exactly as ACME's Tiqets set-up page lists them (seeds/acme-tiqets-integration.txt).
TIQETS_PERMISSIONS: dict[str, str] = {
    "ACCT_ORDERS_CREATE": "accounts-admin",
    "ACCT_ORDERS_UPDATE": "accounts-admin",
    "ACCT_ORDERS_VIEW": "accounts-admin",
    "ACCT_ORDERS_DELETE": "accounts-admin",
    "ACCT_PMNT_POLICY_VIEW": "accounts-admin",
    "EVENT_VIEW": "event-user",
    "EVENT_TEMPLATE_VIEW": "event-user",
    "ORDER_CREATE": "orders-admin",
    "ORDER_UPDATE": "orders-admin",
    "ORDER_VIEW": "orders-admin",
    "ORDER_DELETE": "orders-admin",
    "ORDER_PAYMENT": "orders-admin",
    "REFUNDS_EXECUTE": "orders-admin",
}


class AcmeConfig(ConnectionConfig):
    """One ACME tenant, reached as one API user.

    ``api_key`` goes in ``x-acme-api-key`` on every call. ``username``/``password`` (with
    ``tenant_id`` for a username-only user) open the B2B session that order calls need.
    Invariant: ``base_url`` is never empty; when not given it is the ``environment``'s default.
    """

    platform: Literal["acme"]
    environment: Environment = "sandbox"
    base_url: str = ""
    api_key: SecretStr
    username: str | None = None
    password: SecretStr | None = None
    tenant_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("base_url"):
            env = data.get("environment") or "sandbox"
            if env in BASE_URLS:
                data = {**data, "base_url": BASE_URLS[env]}
        return data

    @model_validator(mode="after")
    def _credentials(self) -> AcmeConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (both or neither)")
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def uses_default_url(self) -> bool:
        return self.base_url == BASE_URLS[self.environment]

    def for_environment(self, environment: Environment) -> AcmeConfig:
        """This connection pointed at ``environment``.

        A default base URL follows the environment; an explicit one cannot be guessed for the
        other environment, so switching it is refused (a ``ValueError`` naming the fix).
        """
        if environment == self.environment:
            return self
        if not self.uses_default_url:
            raise ValueError(
                f"the ACME connection is configured for {self.environment} at a custom "
                f"base_url; set its environment to {environment} (or its base_url) as well"
            )
        return self.model_copy(
            update={"environment": environment, "base_url": BASE_URLS[environment]}
        )
