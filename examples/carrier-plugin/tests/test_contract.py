"""ACME Post against mfn-connector's carrier contract, over loopback HTTP to its emulator.

Run after `pip install -e ".[test]"`: the contract finds the carrier through its entry point.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from connector.sandbox.framework import EmulatorServer
from connector.testing import CarrierContract, find_registered_carrier

acmepost = pytest.importorskip("mfn_carrier_acmepost",
                               reason="the example is not installed: pip install -e examples/carrier-plugin")
from mfn_carrier_acmepost.client import AcmePostCarrier  # noqa: E402
from mfn_carrier_acmepost.sandbox import AcmePostEmulator  # noqa: E402


@pytest.fixture
def emulator(mfn_emulator) -> EmulatorServer:  # serves it on a free port, stops it afterwards
    return mfn_emulator(AcmePostEmulator({"seed": 1}))


@pytest.fixture
def carrier(emulator: EmulatorServer) -> Iterator[AcmePostCarrier]:
    with requests.Session() as session:  # a short read timeout: the contract provokes timeouts
        yield AcmePostCarrier({"base_url": emulator.url, "api_key": "sandbox-key", "timeout_seconds": 0.5},
                              session)


class TestAcmePostContract(CarrierContract):
    carrier_code = "acmepost"


def test_amazon_accepts_it_on_the_us_site_only() -> None:
    spec, _ = find_registered_carrier("acmepost")
    assert spec.carrier_code_for("US") == "USPS"
    assert spec.carrier_code_for("UK") is None and spec.carrier_code_for("JP") is None
