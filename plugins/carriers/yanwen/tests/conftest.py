"""Fixtures for the Yanwen plugin tests: a fresh emulator on a free port and clients for it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.sandbox import YanwenEmulator
from yanwen_testkit import carrier_for


@pytest.fixture
def sandbox(mfn_emulator: Callable[[Any], Any]) -> Callable[..., Any]:
    """``sandbox(**options)`` serves a fresh emulator on a free loopback port."""
    return lambda **options: mfn_emulator(YanwenEmulator({"seed": 7, **options}))


@pytest.fixture
def connect() -> Callable[..., YanwenCarrier]:
    """``connect(server, **settings)``: a client for the emulator, with the emulator's credentials."""
    def make(server: Any, **overrides: Any) -> YanwenCarrier:
        return carrier_for({"base_url": server.url, "user_id": "100000", "api_token": "sandbox-token",
                            "timeout_seconds": 5, **overrides})

    return make
