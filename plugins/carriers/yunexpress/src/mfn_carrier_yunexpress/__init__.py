"""YunExpress (云途) carrier plugin for mfn-connector: the OMS API client and its sandbox emulator.

Registered through the ``mfn_connector`` entry point like any third-party plugin. The client,
the mapping and the emulator are imported inside the hooks, so loading the plugin stays cheap.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import PickupCoverage, hookimpl

CODE = "yunexpress"

# Where YunExpress collects from the seller: EXAMPLE DATA (UNVERIFIED). No public source lists its
# pickup coverage; these are the cities where it is generally known to run pickup/receiving, and
# the provinces of its South China base (anywhere there). Check with the account manager before
# relying on it; the site rules refuse a pickup outside it unless selection.drop_off is set.
PICKUP_CITIES = ("Shenzhen", "Guangzhou", "Dongguan", "Foshan", "Yiwu", "Hangzhou", "Shanghai",
                 "Xiamen", "Quanzhou", "Beijing")
PICKUP_PROVINCES = ("Guangdong", "Fujian")
PICKUP = PickupCoverage.listed(PICKUP_CITIES, PICKUP_PROVINCES, source="example data (UNVERIFIED)")


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .client import YunExpressCarrier
    from .settings import SERVICES, YunExpressSettings

    register(CarrierSpec(
        code=CODE,
        label="YunExpress (云途)",
        factory=YunExpressCarrier,
        settings=YunExpressSettings,
        amazon_carrier_code="Yun Express",
        services=SERVICES,
        tracking_number_pattern=r"^YT\d{16}$",
        batch_sizes={"create": 10, "track": 40},
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import YunExpressEmulator

    register(EmulatorSpec(name=CODE, factory=YunExpressEmulator, port_offset=1,
                          env_var="MFN_SANDBOX_YUNEXPRESS"))
