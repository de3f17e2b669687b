"""What the DHL eCommerce plugin tests share beyond ``connector.kit.testing``: the captured answers,
an EU buyer (IOSS), and carriers built the way the daemon builds them.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mfn_carrier_dhl_ecommerce.client import DhlEcommerceCarrier
from mfn_carrier_dhl_ecommerce.settings import DhlEcommerceSettings

from connector.kit import Address, CarrierContext, ShipmentRequest
from connector.kit.testing import BUYER, SELLER, connect, sample_request

__all__ = ["AMAZON_TRACKING_FORMAT", "BUYER", "EU_BUYER", "FIXTURES", "SECRET", "SELLER", "carrier_for",
           "load_fixture", "make_request"]

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "pw-do-not-log-7f3a"
# The pattern Amazon checks "DHL eCommerce" tracking numbers against, as the sandbox's SP-API
# emulator models it (pinned here: the kit does not expose that emulator's table).
AMAZON_TRACKING_FORMAT = r"^[A-Z0-9]{10,39}$"

# Synthetic: an EU consignee, for IOSS.
EU_BUYER = Address(
    name="Sam Sample", line1="2 Beispielstrasse", city="Berlin", postal_code="10115", country_code="DE"
)


def load_fixture(name: str) -> Any:
    """A fresh copy of a captured answer (tests may edit it)."""
    if not name.endswith(".json"):
        name += ".json"
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def make_request(reference: str = "111-0000001-0000001-1", *, service: str = "PPM",
                 **fields: Any) -> ShipmentRequest:
    """The kit's sample request (250 g, two phone cases worth 4.50 USD each) on a DHL product."""
    return sample_request(reference, service=service, **fields)


def carrier_for(section: Mapping[str, Any], context: CarrierContext | None = None, *,
                clock: Callable[[], float] | None = None) -> DhlEcommerceCarrier:
    """The carrier the daemon builds from a ``carriers.dhl_ecommerce`` section (``clock``: the
    token cache's, for tests that move time)."""
    factory = DhlEcommerceCarrier if clock is None else functools.partial(DhlEcommerceCarrier, clock=clock)
    return connect(factory, DhlEcommerceSettings, section, context=context)
