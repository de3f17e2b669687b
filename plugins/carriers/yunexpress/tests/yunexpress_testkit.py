"""Helpers for the YunExpress plugin tests: captured answers, a sample request, control calls.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from mfn_carrier_yunexpress.client import YunExpressCarrier
from mfn_carrier_yunexpress.settings import YunExpressSettings

from connector.kit import CarrierContext, ShipmentRequest
from connector.kit.testing import BUYER, SELLER, connect, sample_request, sandbox_control

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "s3cr3t-do-not-log"
__all__ = ["BUYER", "SELLER", "SECRET", "carrier_for", "control", "load_fixture", "make_request",
           "settings_for"]
control = sandbox_control


def load_fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a captured answer (tests may edit it)."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def make_request(reference: str = "PKG-111-0000001-1", *, service: str = "AYPZXR",
                 **fields: Any) -> ShipmentRequest:
    return sample_request(reference, service=service, **fields)


def settings_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"base_url": base_url, "customer_code": "C12345", "api_secret": SECRET, **overrides}


def carrier_for(section: dict[str, Any], context: CarrierContext | None = None) -> YunExpressCarrier:
    """The carrier the daemon builds from a ``carriers.yunexpress`` section."""
    return connect(YunExpressCarrier, YunExpressSettings, section, context=context)
