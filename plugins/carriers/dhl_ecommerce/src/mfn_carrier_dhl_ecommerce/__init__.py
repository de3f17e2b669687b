"""DHL eCommerce Asia-Pacific carrier plugin for mfn-connector: the REST client and its emulator.

Registered through the ``mfn_connector`` entry point like any third-party plugin. The client,
the mapping and the emulator are imported inside the hooks, so loading the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "dhl_ecommerce"


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .settings import (
        AMAZON_CARRIER_CODE,
        PICKUP,
        SERVICES,
        TRACK_BATCH_MAX,
        TRACKING_NUMBER_PATTERN,
        DhlEcommerceSettings,
    )

    register(CarrierSpec(
        code=CODE,
        label="DHL eCommerce Asia",
        factory="mfn_carrier_dhl_ecommerce.client:DhlEcommerceCarrier",
        settings=DhlEcommerceSettings,
        amazon_carrier_code=AMAZON_CARRIER_CODE,
        services=SERVICES,
        tracking_number_pattern=TRACKING_NUMBER_PATTERN,
        batch_sizes={"create": 1, "track": TRACK_BATCH_MAX, "lookup": 1},
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import DhlEcommerceEmulator

    register(EmulatorSpec(name=CODE, factory=DhlEcommerceEmulator, port_offset=4,
                          env_var="MFN_SANDBOX_DHL_ECOMMERCE"))
