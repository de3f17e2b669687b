"""The kit: the one import path a carrier plugin needs.

Everything a carrier plugin uses from mfn-connector comes from here::

    from connector.kit import (hookimpl, Carrier, CarrierSpec, CarrierContext, ServiceSpec,
                               HttpSettings, Secret, settings_schema, Transport, RateCard, ...)

and, only in its emulator and its tests, ``connector.kit.sandbox`` (the emulator framework) and
``connector.kit.testing`` (the contract suite and shared fixtures). Importing the kit is cheap:
it loads no emulator code and no HTTP library until a transport is made.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..hookspecs import hookimpl

# What each name is imported from. Loaded on first use (PEP 562), so that a plugin's
# ``from connector.kit import hookimpl`` costs nothing more: ``mfn-connector --help`` loads
# every plugin module.
_EXPORTS = {
    "connector.model": (
        "Address", "CustomsLine", "Money", "Parcel", "Quote", "Shipment", "ShipmentRequest", "TrackingEvent",
        "TrackingInfo", "TrackingStatus"),
    "connector.kit.carrier": (
        "CREDENTIALS_REFUSED", "TRACKING_LEVELS", "Carrier", "CarrierContext", "CarrierError", "CarrierSpec",
        "CredentialsRefusedError", "DuplicateReferenceError", "NotSupported", "PermanentCarrierError",
        "PickupCoverage", "ServiceSpec", "TransientCarrierError"),
    "connector.kit.ratecard": ("RATE_CARD_SCHEMA", "RateCard", "packaged_rows"),
    "connector.kit.settings": (
        "HTTP_PROPERTIES", "URL", "CarrierSettings", "HttpSettings", "Secret", "Settings", "SettingsError",
        "settings_schema"),
    "connector.kit.http": ("Transport",),
    "connector.clock": ("monotonic",),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "CREDENTIALS_REFUSED", "HTTP_PROPERTIES", "RATE_CARD_SCHEMA", "TRACKING_LEVELS", "URL", "Address",
    "Carrier", "CarrierContext",
    "CarrierError", "CarrierSettings", "CarrierSpec", "CredentialsRefusedError", "CustomsLine",
    "DuplicateReferenceError",
    "HttpSettings", "Money", "NotSupported", "Parcel", "PermanentCarrierError", "PickupCoverage", "Quote",
    "RateCard", "Secret",
    "ServiceSpec", "Settings", "SettingsError", "Shipment", "ShipmentRequest", "TrackingEvent",
    "TrackingInfo", "TrackingStatus", "TransientCarrierError", "Transport", "hookimpl", "monotonic",
    "packaged_rows", "settings_schema",
]

def __getattr__(name: str) -> Any:
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
