"""The ``carriers.acmepost`` settings and the services ACME Post sells (pure data, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from connector.kit import URL, HttpSettings, Secret, ServiceSpec, settings_schema

SERVICES = (
    ServiceSpec("STD", "ACME Post Standard (USPS last mile)", "fully_tracked",
                amazon_shipping_method="ACME Post Standard"),
    ServiceSpec("ECO", "ACME Post Economy (USPS last mile)", "tracked",
                amazon_shipping_method="ACME Post Economy"),
)

# Amazon sites whose orders ACME Post cannot ship: mapped to None, so the engine holds such an
# order instead of confirming it with a carrier code Amazon would not accept there.
NOT_SERVED_SITES = ("CA", "MX", "BR", "UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR",
                    "AE", "SA", "EG", "IN", "ZA", "JP", "AU", "SG")


@dataclass(frozen=True, kw_only=True)
class AcmePostSettings(HttpSettings):
    """The ``carriers.acmepost`` section, typed. ``HttpSettings`` adds the timeouts, the TLS check
    and pacing; every default is in SCHEMA, none on the fields."""

    SCHEMA: ClassVar[dict[str, Any]] = settings_schema(
        "carriers.acmepost",
        description="ACME Post (fictional): a China-to-US line with USPS last mile.",
        required=["base_url", "api_key"],
        properties={
            "base_url": {**URL, "description": "API root, e.g. https://api.acmepost.example "
                                               "(sandbox: ${MFN_SANDBOX_ACMEPOST})"},
            "api_key": {"type": "string", "minLength": 1, "x-secret": True,
                        "description": "sent as a Bearer token; never logged"},
        },
    )

    base_url: str
    api_key: Secret

    @property
    def api_root(self) -> str:
        return self.base_url.rstrip("/")
