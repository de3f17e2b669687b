"""The ``carriers.acmepost`` settings schema and the services ACME Post sells (pure data)."""
from __future__ import annotations

from typing import Any

from connector import ServiceSpec

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

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "carriers.acmepost",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "api_key"],
    "properties": {
        "base_url": {"type": "string", "pattern": "^https?://",
                     "description": "API root, e.g. https://api.acmepost.example (sandbox: "
                                    "${MFN_SANDBOX_ACMEPOST})"},
        "api_key": {"type": "string", "minLength": 1, "x-secret": True,
                    "description": "sent as a Bearer token; never logged"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                            "description": "read timeout of every call"},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5},
    },
}
