"""ACME Post carrier plugin for mfn-connector: registers the carrier and its sandbox emulator.

Imports of the settings, the client and the emulator stay inside the hooks, so loading the plugin
is cheap (every ``mfn-connector`` command loads every plugin).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.kit import hookimpl

CODE = "acmepost"


@hookimpl
def mfn_register_carriers(register: Callable[[Any], None]) -> None:
    from connector.kit import CarrierSpec

    from .settings import NOT_SERVED_SITES, PICKUP, SERVICES, AcmePostSettings

    register(CarrierSpec(
        code=CODE,
        label="ACME Post",
        factory="mfn_carrier_acmepost.client:AcmePostCarrier",  # imported when a carrier is built
        settings=AcmePostSettings,
        # ACME Post hands its parcels to USPS in the US, and the tracking number is the USPS one,
        # so Amazon's carrier code is "USPS" (see the README). It ships to no other site.
        amazon_carrier_code="USPS",
        site_carrier_codes=dict.fromkeys(NOT_SERVED_SITES),
        services=SERVICES,
        tracking_number_pattern=r"^9400\d{18}$",
        pickup=PICKUP,
    ))


@hookimpl
def mfn_register_sandbox_emulators(register: Callable[[Any], None]) -> None:
    from connector.kit.sandbox import EmulatorSpec

    from .sandbox import AcmePostEmulator

    register(EmulatorSpec(name=CODE, factory=AcmePostEmulator, port_offset=10,
                          env_var="MFN_SANDBOX_ACMEPOST"))
