"""The ``carriers.acmepost`` settings and the services ACME Post sells (pure data, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from connector.kit import URL, HttpSettings, PickupCoverage, Secret, ServiceSpec, settings_schema

# Every service says what it takes: weight, size (longest side; length + width + height) and the
# countries it delivers to. The engine skips a service for a parcel that breaks a limit, with the
# reason; the emulator enforces the same values (it reads them here). Say where each value comes
# from: ACME Post is fictional, so these are example data.
SERVICES = (
    ServiceSpec("STD", "ACME Post Standard (USPS last mile)", "fully_tracked",
                amazon_shipping_method="ACME Post Standard",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=("US",)),
    ServiceSpec("ECO", "ACME Post Economy (USPS last mile)", "tracked",
                amazon_shipping_method="ACME Post Economy",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=("US",)),
)
SERVICE_SPECS = {s.code: s for s in SERVICES}

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


# Where ACME Post collects from the seller, as data: these cities, and anywhere in these provinces
# (matched with the ship-from city and state). Say where the list comes from (a URL, or "example
# data"). A carrier nobody has captured the coverage of declares PickupCoverage() ("unknown"); one
# that is asked with the ship-from address and only quotes what it serves, PickupCoverage("by_quote").
PICKUP = PickupCoverage.listed(("Shenzhen", "Dongguan", "Yiwu"), ("Guangdong",),
                               source="example data (ACME Post is fictional)")
