"""Fixtures for the SP-API emulator tests: a real loopback server and a small client for it."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connector.sandbox.framework import EmulatorServer
from connector.sandbox.seed import MARKETPLACE_IDS
from connector.sandbox.spapi import DEFAULT_SELLER, SpApiEmulator

SEARCH = "/orders/2026-01-01/orders"


class SpApiClient:
    """Just enough of an SP-API client to drive the emulator over HTTP."""

    def __init__(self, server: EmulatorServer, seller: dict[str, Any] | None = None) -> None:
        self.server = server
        self.url = server.url
        self.seller = seller or DEFAULT_SELLER
        self._token: str | None = None

    def for_seller(self, seller: dict[str, Any]) -> SpApiClient:
        """A client for another seller of the same emulator."""
        return SpApiClient(self.server, seller)

    # -- LWA --------------------------------------------------------------------------------
    def lwa(self, **overrides: str) -> requests.Response:
        form = {"grant_type": "refresh_token", "refresh_token": self.seller["refresh_token"],
                "client_id": self.seller["client_id"], "client_secret": self.seller["client_secret"]}
        form.update(overrides)
        return requests.post(self.url + "/auth/o2/token", data=form, timeout=5)

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.lwa()
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"x-amz-access-token": token or self.token}

    # -- SP-API -----------------------------------------------------------------------------
    def search(self, token: str | None = None, **params: Any) -> requests.Response:
        params = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
        return requests.get(self.url + SEARCH, params=params, headers=self.headers(token), timeout=5)

    def search_all(self, **params: Any) -> list[dict[str, Any]]:
        """Every order over every page (asserts each page is a 200)."""
        orders: list[dict[str, Any]] = []
        token = None
        while True:
            page_params = dict(params)
            if token:
                page_params["paginationToken"] = token
            response = self.search(**page_params)
            assert response.status_code == 200, response.text
            body = response.json()
            orders.extend(body["orders"])
            token = body.get("pagination", {}).get("nextToken")
            if not token:
                return orders

    def get_order(self, order_id: str, token: str | None = None, **params: Any) -> requests.Response:
        params = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
        return requests.get(f"{self.url}{SEARCH}/{order_id}", params=params, headers=self.headers(token),
                            timeout=5)

    def confirm(self, order_id: str, body: Any, token: str | None = None,
                timeout: float = 5) -> requests.Response:
        return requests.post(f"{self.url}/orders/v0/orders/{order_id}/shipmentConfirmation",
                             json=body, headers=self.headers(token), timeout=timeout)

    # -- sandbox control --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return requests.get(self.url + "/_sandbox/state", timeout=5).json()

    def advance(self, seconds: float) -> None:
        requests.post(self.url + "/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)

    def set_faults(self, spec: Any) -> None:
        requests.post(self.url + "/_sandbox/faults", json=spec, timeout=5).raise_for_status()

    # -- looking at the seed (white box, to pick orders; behaviour is checked over HTTP) ------
    def orders(self, predicate: Callable[[dict[str, Any]], bool] = lambda o: True) -> list[dict[str, Any]]:
        emulator = self.server.emulator
        with emulator.lock:  # snapshots: the emulator keeps changing its own copies
            return [copy.deepcopy(r["order"]) for r in emulator.store["orders"].values()
                    if r["seller"] == self.seller["name"] and predicate(r["order"])]

    def pick(self, *, status: str = "UNSHIPPED", site: str | None = None, by: str = "MERCHANT",
             where: Callable[[dict[str, Any]], bool] = lambda o: True) -> dict[str, Any]:
        found = self.orders(lambda o: o["fulfillment"]["fulfillmentStatus"] == status
                            and o["fulfillment"]["fulfilledBy"] == by
                            and (site is None or o["salesChannel"]["marketplaceId"] == MARKETPLACE_IDS[site])
                            and where(o))
        assert found, f"no seed order with status={status} site={site}"
        return found[0]


@pytest.fixture
def start_spapi() -> Iterator[Callable[..., SpApiClient]]:
    """``start_spapi(seller=None, mount=None, **options)`` serves a fresh emulator on loopback
    (``mount(emulator)`` first mounts an extension on it); stopped at teardown."""
    servers: list[EmulatorServer] = []

    def start(seller: dict[str, Any] | None = None, mount: Callable[[SpApiEmulator], Any] | None = None,
              **options: Any) -> SpApiClient:
        emulator = SpApiEmulator(options)
        if mount is not None:
            mount(emulator)
        server = EmulatorServer(emulator).start()
        servers.append(server)
        return SpApiClient(server, seller)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def spapi(start_spapi: Callable[..., SpApiClient]) -> SpApiClient:
    return start_spapi()


@pytest.fixture
def drive() -> Callable[..., SpApiClient]:
    """``drive(server, seller=None)``: the small client for an emulator served elsewhere."""
    return SpApiClient
