"""Fixtures for the YunExpress plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mfn_carrier_yunexpress.client import YunExpressCarrier
from mfn_carrier_yunexpress.sandbox import YunExpressEmulator
from yunexpress_testkit import carrier_for


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], Any]) -> Callable[..., Any]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(YunExpressEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Callable[..., YunExpressCarrier]:
    """``connect(server, **settings)``: a client for the emulator, with the emulator's credentials."""
    def make(server: Any, **overrides: Any) -> YunExpressCarrier:
        return carrier_for({"base_url": server.url, "customer_code": "C88888", "api_secret": "sandbox-secret",
                            "timeout_seconds": 5, **overrides})

    return make
