"""Fixtures for the China Post plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from chinapost_testkit import SANDBOX
from mfn_carrier_chinapost.client import ChinaPostCarrier
from mfn_carrier_chinapost.sandbox import ChinaPostEmulator

from connector.sandbox.framework import EmulatorServer


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], EmulatorServer]) -> Callable[..., EmulatorServer]:
    """``sandbox(**options)`` serves a fresh China Post emulator on a free loopback port."""
    return lambda **options: mfn_emulator(ChinaPostEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Iterator[Callable[..., ChinaPostCarrier]]:
    """``connect(server, **settings)``: a client for the emulator, with the sandbox credentials.
    The base URL carries the real API's path prefix, to show the emulator takes it."""
    sessions: list[requests.Session] = []

    def make(server: EmulatorServer, **overrides: Any) -> ChinaPostCarrier:
        session = requests.Session()
        sessions.append(session)
        settings = {"base_url": f"{server.url}/pcpErp-web/a/pcp",
                    "tracking_base_url": f"{server.url}/partner/api/public/p", **SANDBOX,
                    "timeout_seconds": 5, **overrides}
        return ChinaPostCarrier(settings, session)

    yield make
    for session in sessions:
        session.close()
