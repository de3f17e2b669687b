"""China Post / EMS (ePacket, E邮宝) carrier plugin for mfn-connector: the small-packet (pcpErp)
API client, EUB tracking with a keyword classifier, UPU S10 numbers, and a sandbox emulator.

Registered through the ``mfn_connector`` entry point like any third-party plugin. The client,
the mapping and the emulator are imported inside the hooks, so loading the plugin stays cheap.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "chinapost"


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .s10 import CHINA_POST_PATTERN
    from .settings import PICKUP, SERVICES, ChinaPostSettings

    register(CarrierSpec(
        code=CODE,
        label="China Post / EMS (中国邮政)",
        factory="mfn_carrier_chinapost.client:ChinaPostCarrier",
        settings=ChinaPostSettings,
        amazon_carrier_code="China Post",
        services=SERVICES,
        tracking_number_pattern=CHINA_POST_PATTERN,
        # OrderReceiveBack takes one order; surface/download up to 50 barcodes; tracking one number.
        batch_sizes={"create": 1, "label": 50, "track": 1},
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import ChinaPostEmulator

    register(EmulatorSpec(name=CODE, factory=ChinaPostEmulator, port_offset=2,
                          env_var="MFN_SANDBOX_CHINAPOST"))
