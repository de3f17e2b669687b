"""ACME Post against mfn-connector's carrier contract, over loopback HTTP to its emulator.

Run after `pip install -e ".[test]"`: the contract finds the carrier through its entry point.
"""
from __future__ import annotations

import pytest
from mfn_carrier_acmepost.client import AcmePostCarrier
from mfn_carrier_acmepost.sandbox import AcmePostEmulator
from mfn_carrier_acmepost.settings import AcmePostSettings

from connector.kit import Carrier
from connector.kit.testing import CarrierContract, connect, find_registered_carrier


@pytest.fixture
def emulator(mfn_emulator):  # serves it on a free port, stops it afterwards
    return mfn_emulator(AcmePostEmulator({"seed": 1}))


@pytest.fixture
def carrier(emulator) -> Carrier:  # a short read timeout: the contract provokes timeouts
    return connect(AcmePostCarrier, AcmePostSettings,
                   {"base_url": emulator.url, "api_key": "sandbox-key", "timeout_seconds": 1.0})


class TestAcmePostContract(CarrierContract):
    carrier_code = "acmepost"


def test_amazon_accepts_it_on_the_us_site_only() -> None:
    spec, _ = find_registered_carrier("acmepost")
    assert spec.carrier_code_for("US") == "USPS"
    assert spec.carrier_code_for("UK") is None and spec.carrier_code_for("JP") is None
