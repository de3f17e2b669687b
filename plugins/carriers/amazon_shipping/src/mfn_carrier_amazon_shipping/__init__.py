"""Amazon Buy Shipping carrier plugin for mfn-connector (Shipping API v2, ``channelType: AMAZON``).

Registered through the ``mfn_connector`` entry point like any third-party plugin. The carrier
needs the seller accounts' SP-API clients (``needs_amazon``) and its labels confirm the shipment
on Amazon by themselves (``confirms_shipment``). Its sandbox is the SP-API emulator itself
(``connector/sandbox/spapi.py``), so it registers no emulator of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector import hookimpl

from .settings import BUY_SHIPPING_SITES, CODE

# The CarrierCode field is required by CarrierSpec but never sent: Buy Shipping labels are not
# confirmed with confirmShipment. "Amazon Buy Shipping" is deliberately NOT one of Amazon's
# carrier codes (the label's real carrier is YunExpress, China Post, ...): if anything ever sent
# it in a confirmShipment, Amazon would refuse it instead of recording the wrong carrier.
AMAZON_CARRIER_CODE = "Amazon Buy Shipping"


def _site_carrier_codes() -> dict[str, str | None]:
    """Every site Amazon does not offer Buy Shipping on maps to None: the engine never routes there."""
    from connector.amazon.sites import SITES

    return {site: None for site in SITES if site not in BUY_SHIPPING_SITES}


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.carriers import CarrierSpec

    from .client import AmazonShippingCarrier
    from .settings import SERVICES, SETTINGS_SCHEMA

    register(
        CarrierSpec(
            code=CODE,
            label="Amazon Buy Shipping",
            factory=AmazonShippingCarrier,
            amazon_carrier_code=AMAZON_CARRIER_CODE,
            services=SERVICES,
            settings_schema=SETTINGS_SCHEMA,
            site_carrier_codes=_site_carrier_codes(),
            # Amazon issues the tracking number itself, for whichever carrier it picked: there is no
            # format to hold it against (and it is valid on Amazon by construction).
            tracking_number_pattern="",
            needs_amazon=True,
            confirms_shipment=True,
        )
    )
