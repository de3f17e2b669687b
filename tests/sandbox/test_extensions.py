"""The sandbox's extension point: an API mounted on another emulator (``EmulatorSpec(mount_on=...)``,
``Emulator.mount``) and the SP-API emulator's public API for extensions, driven by a made-up
"Widgets" SP-API (model in ``models/widgetsV1.json``)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.config import load_config
from connector.sandbox import schemas
from connector.sandbox.framework import Emulator, EmulatorServer, EmulatorSpec, Request, Response, route
from connector.sandbox.runner import start_sandbox
from connector.sandbox.seed import MARKETPLACE_IDS
from connector.sandbox.spapi import DEFAULT_SELLER, SPAPI_EMULATOR, Seller, SpApiEmulator

SpApiClient = Any  # the small HTTP client of conftest.py (fixtures ``start_spapi`` and ``drive``)

MODEL = Path(__file__).with_name("models") / "widgetsV1.json"
OTHER = {"name": "other-seller", "refresh_token": "Atzr|other", "client_id": DEFAULT_SELLER["client_id"],
         "client_secret": DEFAULT_SELLER["client_secret"], "marketplaces": ["US"]}
LOCK_REASON = "was made by a widget"


class Widgets:
    """A made-up SP-API: a widget ships every unit still to ship of an order, in a package that
    confirmShipment may not edit; deleting the widget removes the package."""

    def __init__(self, spapi: SpApiEmulator, options: dict[str, Any] | None = None) -> None:
        self.spapi = spapi
        self.options = dict(options or {})
        spapi.add_models(MODEL)
        spapi.add_quotas({"createWidget": {"rate": 1.0, "burst": 3},
                          "deleteWidget": {"rate": 5.0, "burst": 5}})
        self.store = spapi.substore("widgets", lambda: {"made": {}})
        spapi.mount(self)

    @route("POST", r"/widgets/v1/widgets", name="createWidget")
    def create(self, request: Request) -> Response:
        return self.spapi.call("createWidget", request, self._create)

    @route("DELETE", r"/widgets/v1/widgets/(?P<widgetId>[^/]+)", name="deleteWidget")
    def delete(self, request: Request) -> Response:
        return self.spapi.call("deleteWidget", request, self._delete)

    def _create(self, request: Request, seller: Seller) -> tuple[int, Any]:
        spapi = self.spapi
        body = spapi.json_body(request)
        spapi.check_request("createWidget", body=body)
        order = spapi.order_for(body["orderId"], seller)
        lines = [(it["orderItemId"], it["fulfillment"]["quantityUnfulfilled"]) for it in order["orderItems"]
                 if it["fulfillment"]["quantityUnfulfilled"] > 0]
        wanted = spapi.package_items(order, lines, field="orderItemId", empty="nothing left to ship")
        widget_id = str(9000 + len(self.store["made"]))
        stamp = spapi.format_time(spapi.now())
        spapi.put_package(order, {
            "packageReferenceId": widget_id, "createdTime": stamp, "packageStatus": {"status": "SHIPPED"},
            "carrier": "Widget Post", "shipTime": stamp, "trackingNumber": f"WP{widget_id}",
            "packageItems": [{"orderItemId": i, "quantity": q} for i, q in wanted.items()]})
        spapi.lock_package(order["orderId"], widget_id, LOCK_REASON)
        self.store["made"][widget_id] = {"orderId": order["orderId"], "seller": seller.name}
        answer = {"widgetId": widget_id, "orderId": order["orderId"]}
        if body.get("sloppy"):
            answer["color"] = "red"  # not in the model: a bug of this emulator
        return 200, answer

    def _delete(self, request: Request, seller: Seller) -> tuple[int, Any]:
        widget_id = request.params["widgetId"]
        made = self.store["made"].get(widget_id)
        if made is None or made["seller"] != seller.name:
            raise self.spapi.error(404, "NotFound", f"Widget {widget_id} was not found.")
        order = self.spapi.order_for(made["orderId"], seller)
        self.spapi.drop_package(order, widget_id)
        del self.store["made"][widget_id]
        return 204, None

    def sandbox_state(self) -> dict[str, Any]:
        return {"labels": {f"widget-{w}": {"created": 1} for w in self.store["made"]},
                "widgets": len(self.store["made"])}


@pytest.fixture
def widgets(start_spapi: Callable[..., SpApiClient]) -> Callable[..., SpApiClient]:
    """``widgets(seller=None, **options)``: an SP-API emulator with Widgets mounted, served."""
    return lambda seller=None, **options: start_spapi(seller, mount=Widgets, **options)


def make_widget(spapi: SpApiClient, order_id: str, **extra: Any) -> requests.Response:
    return requests.post(spapi.url + "/widgets/v1/widgets", json={"orderId": order_id, **extra},
                         headers=spapi.headers(), timeout=5)


def packages_of(spapi: SpApiClient, order_id: str) -> dict[str, Any]:
    response = spapi.get_order(order_id, includedData=["FULFILLMENT", "PACKAGES"])
    assert response.status_code == 200, response.text
    return response.json()["order"]


def light(order: dict[str, Any]) -> bool:
    return sum(it["fulfillment"]["quantityUnfulfilled"] for it in order["orderItems"]) <= 5


# -- the framework ---------------------------------------------------------------------------------


class Host(Emulator):
    name = "host"

    @route("GET", r"/ping")
    def ping(self, request: Request) -> Response:
        return Response.json({"pong": True})

    def sandbox_state(self) -> dict[str, Any]:
        return {"labels": {"host-1": {"created": 1}}, "own": 1}


class Echo:
    @route("GET", r"/echo/(?P<word>\w+)", name="echoWord")
    def echo(self, request: Request) -> Response:
        return Response.json({"echo": request.params["word"]})

    def sandbox_state(self) -> dict[str, Any]:
        return {"labels": {"echo-1": {"created": 1}}, "echoes": 1}


def test_a_mounted_extension_is_served_by_its_host_and_reports_in_its_state() -> None:
    host = Host()
    host.mount(Echo())
    server = EmulatorServer(host).start()
    try:
        assert requests.get(server.url + "/echo/hi", timeout=5).json() == {"echo": "hi"}
        assert requests.get(server.url + "/ping", timeout=5).json() == {"pong": True}
        assert requests.post(server.url + "/echo/hi", timeout=5).status_code == 405
        state = requests.get(server.url + "/_sandbox/state", timeout=5).json()
    finally:
        server.stop()
    assert state["labels"] == {"host-1": {"created": 1}, "echo-1": {"created": 1}}  # merged key by key
    assert (state["own"], state["echoes"], state["requests"]) == (1, 1, 3)
    assert [name for *_, name in host.routes()] == ["ping", "echoWord"]
    assert host.route_name(Request("GET", "/echo/x", {}, {}, b"")) == "echoWord"
    assert host.route_name(Request("GET", "/nothing", {}, {}, b"")) is None


def test_mount_refuses_a_route_served_already_and_an_object_without_routes() -> None:
    host = Host()
    host.mount(Echo())
    with pytest.raises(ValueError, match="already served: GET /echo"):
        host.mount(Echo())
    with pytest.raises(ValueError, match="no @route methods"):
        host.mount(object())
    assert len(host.extensions) == 1


def test_emulator_spec_is_either_served_or_mounted() -> None:
    assert EmulatorSpec("a", Host, 10, "MFN_SANDBOX_A").mount_on == ""
    assert EmulatorSpec("b", Widgets, mount_on="spapi").port_offset is None
    with pytest.raises(ValueError, match="port_offset and env_var"):
        EmulatorSpec("c", Host)
    with pytest.raises(ValueError, match="no port_offset or env_var of its own"):
        EmulatorSpec("d", Widgets, 11, "MFN_SANDBOX_D", mount_on="spapi")


# -- the SP-API emulator's extension API ---------------------------------------------------------


def test_an_extension_call_is_authenticated_quota_checked_and_validated(widgets) -> None:
    spapi = widgets()
    order = spapi.pick(site="US", where=light)
    anonymous = requests.post(spapi.url + "/widgets/v1/widgets", json={"orderId": order["orderId"]},
                              timeout=5)
    assert anonymous.status_code == 403
    refused = make_widget(spapi, order["orderId"], sloppy="yes")  # the model wants a boolean
    assert refused.status_code == 400 and "sloppy" in refused.json()["errors"][0]["message"]
    made = make_widget(spapi, order["orderId"])
    assert made.status_code == 200, made.text
    assert made.headers["x-amzn-RateLimit-Limit"] == "1.0" and made.headers["x-amzn-RequestId"]
    assert make_widget(spapi, "111-0000000-0000000").status_code == 404  # not an order of the caller
    assert make_widget(spapi, order["orderId"]).status_code == 429  # burst 3 spent, rate 1/s
    assert spapi.state()["schema_violations"] == []


def test_configured_quotas_win_over_an_extensions_defaults(widgets) -> None:
    spapi = widgets(quotas={"createWidget": {"burst": 1}})
    orders = spapi.orders(lambda o: o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
                          and o["fulfillment"]["fulfilledBy"] == "MERCHANT")
    assert spapi.server.emulator.quotas["createWidget"] == {"rate": 1.0, "burst": 1.0}
    assert [make_widget(spapi, o["orderId"]).status_code for o in orders[:2]] == [200, 429]


def test_an_answer_the_model_refuses_is_recorded(widgets) -> None:
    spapi = widgets()
    made = make_widget(spapi, spapi.pick(site="US", where=light)["orderId"], sloppy=True)
    assert made.status_code == 200
    [violation] = spapi.state()["schema_violations"]
    assert violation["operation"] == "createWidget" and "color" in violation["problems"][0]


def test_packages_are_shipped_locked_against_confirm_shipment_and_dropped(widgets) -> None:
    spapi = widgets()
    order = spapi.pick(site="US", where=light)
    widget_id = make_widget(spapi, order["orderId"]).json()["widgetId"]
    shipped = packages_of(spapi, order["orderId"])
    assert shipped["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [p["packageReferenceId"] for p in shipped["packages"]] == [widget_id]
    assert spapi.server.emulator.package_lock(order["orderId"], widget_id) == LOCK_REASON
    edit = {"marketplaceId": MARKETPLACE_IDS["US"], "packageDetail": {
        "packageReferenceId": widget_id, "carrierCode": "UPS", "trackingNumber": "1Z999AA10123456784",
        "shipDate": "2026-01-02T03:04:05.000Z",
        "orderItems": [{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}]}}
    refused = spapi.confirm(order["orderId"], edit)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == (
        f"Package {widget_id} of order {order['orderId']} {LOCK_REASON}; it is confirmed already and "
        "cannot be edited.")
    assert make_widget(spapi, order["orderId"]).status_code == 400  # nothing left to ship
    gone = requests.delete(f"{spapi.url}/widgets/v1/widgets/{widget_id}", headers=spapi.headers(), timeout=5)
    assert gone.status_code == 204 and gone.content == b""
    after = packages_of(spapi, order["orderId"])
    assert "packages" not in after and after["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert spapi.server.emulator.package_lock(order["orderId"], widget_id) is None
    assert spapi.confirm(order["orderId"], edit).status_code == 204  # a package of the seller's now
    state = spapi.state()
    assert state["confirmations"][order["orderId"]][widget_id]["accepted"] == 1
    assert (state["labels"], state["widgets"], state["schema_violations"]) == ({}, 0, [])


def test_another_sellers_caller_never_sees_the_extensions_records(widgets) -> None:
    spapi = widgets(sellers=[DEFAULT_SELLER, OTHER])
    widget_id = make_widget(spapi, spapi.pick(site="US", where=light)["orderId"]).json()["widgetId"]
    other = spapi.for_seller(OTHER)
    gone = requests.delete(f"{other.url}/widgets/v1/widgets/{widget_id}", headers=other.headers(), timeout=5)
    assert gone.status_code == 404


def test_faults_can_target_an_extensions_operation(widgets) -> None:
    spapi = widgets(fault_operations=["deleteWidget"])
    order = spapi.pick(site="US", where=light)
    spapi.set_faults({"error_5xx": 1.0})
    made = make_widget(spapi, order["orderId"])  # not targeted: served normally
    assert made.status_code == 200
    gone = requests.delete(f"{spapi.url}/widgets/v1/widgets/{made.json()['widgetId']}",
                           headers=spapi.headers(), timeout=5)
    assert gone.status_code in (500, 503)
    assert spapi.state()["faults_injected"]["error_5xx"] == 1


def test_the_substore_and_the_locks_survive_a_restart(widgets, tmp_path) -> None:
    path = str(tmp_path / "spapi.json")
    spapi = widgets(state_file=path, orders_per_seller=20)
    order = spapi.pick(site="US", where=light)
    widget_id = make_widget(spapi, order["orderId"]).json()["widgetId"]
    again = SpApiEmulator({"state_file": path, "orders_per_seller": 20})
    mounted = Widgets(again)
    assert mounted.store["made"] == {widget_id: {"orderId": order["orderId"], "seller": "demo-seller"}}
    assert again.package_lock(order["orderId"], widget_id) == LOCK_REASON
    assert again.state()["labels"] == {f"widget-{widget_id}": {"created": 1}}


def test_an_operation_without_a_quota_is_an_emulator_bug() -> None:
    emulator = SpApiEmulator({"orders_per_seller": 5})
    with pytest.raises(KeyError, match="add_quotas"):
        emulator._take("demo-seller", "noSuchOperation")


# -- schemas ---------------------------------------------------------------------------------------


def test_models_are_registered_once_and_after_the_core_ones() -> None:
    name = schemas.register_model(MODEL)
    assert name == "widgetsV1" and schemas.register_model(MODEL) == name
    assert schemas.models()[:2] == ["orders_2026-01-01", "ordersV0"] and schemas.models().count(name) == 1
    assert schemas.validate_request("createWidget", body={"orderId": "1"}) == []
    assert schemas.validate_request("createWidget", body={}) == ["missing required field(s): body.orderId"]
    with pytest.raises(ValueError, match="no SP-API model"):
        schemas.register_model(MODEL.with_name("missing.json"))


def test_a_different_model_with_a_loaded_models_name_is_refused(tmp_path) -> None:
    clash = tmp_path / "ordersV0.json"
    clash.write_text(MODEL.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match="already loaded"):
        schemas.register_model(clash)


# -- the runner ------------------------------------------------------------------------------------


class FakeHost:
    def __init__(self, specs: dict[str, EmulatorSpec]) -> None:
        self.specs = specs

    def emulators(self) -> dict[str, EmulatorSpec]:
        return self.specs

    def site_rules(self) -> list[Any]:  # the installed plugins' site rules, as a real host gives them
        from connector.sandbox.spapi import registered_site_rules

        return list(registered_site_rules())


def test_the_runner_mounts_extensions_on_their_host(write_config, drive) -> None:
    seen: list[dict[str, Any]] = []

    def factory(host: SpApiEmulator, options: dict[str, Any]) -> Widgets:
        seen.append(options)
        return Widgets(host, options)

    config = load_config(write_config({"sandbox": {"emulators": {"widgets": {"colour": "red"}}}}))
    host = FakeHost({"spapi": SPAPI_EMULATOR, "widgets": EmulatorSpec("widgets", factory, mount_on="spapi")})
    sandbox = start_sandbox(config, host, base_port=0, state_dir=None)
    try:
        assert list(sandbox.servers) == ["spapi"] and list(sandbox.env) == ["MFN_SANDBOX_SPAPI"]
        [options] = seen
        assert options["colour"] == "red" and "state_file" not in options
        emulator = sandbox.servers["spapi"].emulator
        assert [type(e).__name__ for e in emulator.extensions] == ["Widgets"]
        spapi = drive(sandbox.servers["spapi"], {
            **DEFAULT_SELLER, "name": "demo-na", "refresh_token": "Atzr|sandbox-demo-na",
            "client_secret": "sandbox-client-secret"})
        order = spapi.pick(site="US", where=light)
        assert make_widget(spapi, order["orderId"]).status_code == 200
    finally:
        sandbox.stop()


def test_the_runner_refuses_an_extension_without_its_host(write_config) -> None:
    config = load_config(write_config())
    host = FakeHost({"spapi": SPAPI_EMULATOR,
                     "widgets": EmulatorSpec("widgets", Widgets, mount_on="nowhere")})
    with pytest.raises(ValueError, match="widgets \\(on 'nowhere'\\)"):
        start_sandbox(config, host, base_port=0)


@pytest.mark.parametrize(("emulators", "said"), [
    ({"spapl": {"silent_drop_rate": 0.1}},
     "sandbox.emulators.spapl: no emulator of this name (the emulators: spapi)"),
    ({"spapi": {"silent_drop_rate": "often"}},
     "sandbox.emulators.spapi.silent_drop_rate: the spapi emulator cannot take 'often' "
     "(could not convert string to float: 'often')"),
])
def test_the_runner_refuses_an_emulator_option_it_cannot_use_naming_it(write_config, emulators, said) -> None:
    """A misspelt emulator under sandbox.emulators was ignored, and an option that is no number
    ended `sandbox serve` in a ValueError traceback that named neither the emulator nor the option."""
    from connector.config import ConfigError

    config = load_config(write_config({"sandbox": {"emulators": emulators}}))
    with pytest.raises(ConfigError) as refused:
        start_sandbox(config, FakeHost({"spapi": SPAPI_EMULATOR}), base_port=0)
    assert [p.message if not p.path else f"{p.path}: {p.message}" for p in refused.value.problems] == [said]
