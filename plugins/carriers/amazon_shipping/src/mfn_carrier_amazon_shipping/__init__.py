"""Amazon Buy Shipping carrier plugin for mfn-connector (Shipping API v2, ``channelType: AMAZON``).

Registered through the ``mfn_connector`` entry point like any third-party plugin, and built on
``connector.kit`` alone. The carrier calls Amazon with the seller accounts' SP-API clients
(``context.amazon``) and its labels confirm the shipment on Amazon by themselves
(``confirms_shipment``). Its emulator is mounted on the SP-API emulator (``mount_on="spapi"``):
the Shipping API is served by the same host as the Orders API, for the same sellers and orders.
The client, the mapping and the emulator are imported inside the hooks, so loading the plugin
stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "amazon_shipping"  # kept here, not in settings.py: loading the plugin must stay cheap


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .api import QUOTAS
    from .settings import PICKUP, SERVICES, AmazonShippingSettings

    register(
        CarrierSpec(
            code=CODE,
            label="Amazon Buy Shipping",
            factory="mfn_carrier_amazon_shipping.client:AmazonShippingCarrier",
            settings=AmazonShippingSettings,
            services=SERVICES,
            # The label confirms the shipment by itself: no confirmShipment, so no carrier code.
            # Whether Buy Shipping is offered for an order is the site rules' decision.
            confirms_shipment=True,
            amazon_carrier_code="",
            # Amazon issues the tracking number itself, for whichever carrier it picked: there is no
            # format to hold it against (and it is valid on Amazon by construction).
            tracking_number_pattern="",
            # getTracking takes one number: a call per number, so that a request that fails costs its
            # parcel alone, and a stop or tracking.pass_seconds ends a tracking pass between two requests
            batch_sizes={"track": 1},
            pickup=PICKUP,
            spapi_quotas=QUOTAS,  # the Shipping API's operations: amazon.quotas may set them
        )
    )


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import BuyShippingEmulator

    register(EmulatorSpec(name=CODE, factory=BuyShippingEmulator, mount_on="spapi"))
