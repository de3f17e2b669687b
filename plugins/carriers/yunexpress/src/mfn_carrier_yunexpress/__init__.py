"""YunExpress (云途) carrier plugin for mfn-connector: the OMS API client and its sandbox emulator.

Registered through the ``mfn_connector`` entry point like any third-party plugin. The client,
the mapping and the emulator are imported inside the hooks, so loading the plugin stays cheap.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "yunexpress"


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .settings import PICKUP, SERVICES, TRACKING_NUMBER_PATTERN, YunExpressSettings

    register(CarrierSpec(
        code=CODE,
        label="YunExpress (云途)",
        factory="mfn_carrier_yunexpress.client:YunExpressCarrier",
        settings=YunExpressSettings,
        amazon_carrier_code="Yun Express",
        services=SERVICES,
        # The default source's (TrackingNumber); each configured account checks its own numbers by
        # its tracking_number_source or tracking_number_pattern (YunExpressCarrier).
        tracking_number_pattern=TRACKING_NUMBER_PATTERN,
        # GetTrackInfo takes one number: a call per number, so that a request that fails costs its
        # parcel alone, and a stop or tracking.pass_seconds ends a tracking pass between two requests
        batch_sizes={"create": 10, "track": 1},
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import YunExpressEmulator

    register(EmulatorSpec(name=CODE, factory=YunExpressEmulator, port_offset=1,
                          env_var="MFN_SANDBOX_YUNEXPRESS"))
