"""Yanwen (燕文) carrier plugin for mfn-connector: the open API + tracking API client and its emulator.

Registered through the ``mfn_connector`` entry point like any third-party plugin. The client,
the mapping and the emulator are imported inside the hooks, so loading the plugin stays cheap.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "yanwen"


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .settings import (
        AMAZON_CARRIER_CODE,
        LOOKUP_BATCH_MAX,
        PICKUP,
        SERVICES,
        SITE_CARRIER_CODES,
        TRACK_BATCH_MAX,
        TRACKING_NUMBER_PATTERN,
        YanwenSettings,
    )

    register(CarrierSpec(
        code=CODE,
        label="Yanwen (燕文)",
        factory="mfn_carrier_yanwen.client:YanwenCarrier",
        settings=YanwenSettings,
        amazon_carrier_code=AMAZON_CARRIER_CODE,
        site_carrier_codes=dict(SITE_CARRIER_CODES),
        services=SERVICES,
        tracking_number_pattern=TRACKING_NUMBER_PATTERN,
        batch_sizes={"create": 1, "track": TRACK_BATCH_MAX, "lookup": LOOKUP_BATCH_MAX},
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import YanwenEmulator

    register(EmulatorSpec(name=CODE, factory=YanwenEmulator, port_offset=3, env_var="MFN_SANDBOX_YANWEN"))
