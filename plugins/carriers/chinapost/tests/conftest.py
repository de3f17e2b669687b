"""Fixtures for the China Post plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chinapost_testkit import SANDBOX, carrier_for
from mfn_carrier_chinapost.client import ChinaPostCarrier
from mfn_carrier_chinapost.sandbox import ChinaPostEmulator


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], Any]) -> Callable[..., Any]:
    """``sandbox(**options)`` serves a fresh China Post emulator on a free loopback port."""
    return lambda **options: mfn_emulator(ChinaPostEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Callable[..., ChinaPostCarrier]:
    """``connect(server, **settings)``: a client for the emulator, with the sandbox credentials.
    The base URL carries the real API's path prefix, to show the emulator takes it."""
    def make(server: Any, **overrides: Any) -> ChinaPostCarrier:
        return carrier_for({"base_url": f"{server.url}/pcpErp-web/a/pcp",
                            "tracking_base_url": f"{server.url}/partner/api/public/p", **SANDBOX,
                            "timeout_seconds": 5, **overrides})

    return make
