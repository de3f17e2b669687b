"""What the China Post tests share beyond ``connector.kit.testing``: credentials, settings, carriers.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""
from __future__ import annotations

from typing import Any

from mfn_carrier_chinapost.client import ChinaPostCarrier
from mfn_carrier_chinapost.settings import ChinaPostSettings

from connector.kit import CarrierContext, ShipmentRequest
from connector.kit.testing import BUYER, SELLER, connect, sample_request

__all__ = ["BUYER", "KEY", "SANDBOX", "SELLER", "TOKEN", "carrier_for", "make_request", "settings_for"]

KEY = "k3y-do-not-log"
TOKEN = "t0ken-do-not-log"
SANDBOX = {"ec_company_id": "SANDBOX-ECID", "key": "sandbox-key", "tracking_token": "sandbox-token"}


def make_request(reference: str = "111-0000001-0000001-1", *, service: str = "EUB",
                 **fields: Any) -> ShipmentRequest:
    """The kit's sample request, shipped with ePacket unless told otherwise."""
    return sample_request(reference, service=service, **fields)


def settings_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``carriers.chinapost`` section with test credentials."""
    return {"base_url": base_url, "ec_company_id": "90000002449155", "key": KEY, "tracking_token": TOKEN,
            **overrides}


def carrier_for(section: dict[str, Any], context: CarrierContext | None = None) -> ChinaPostCarrier:
    """The carrier the daemon builds from a ``carriers.chinapost`` section."""
    return connect(ChinaPostCarrier, ChinaPostSettings, section, context=context)
