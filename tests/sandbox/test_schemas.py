"""connector.sandbox.schemas: Amazon's vendored models as request/response validators."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.sandbox import schemas
from connector.sandbox.schemas import static_sandbox_pairs, validate_request, validate_response

VALID_CONFIRM = {
    "marketplaceId": "ATVPDKIKX0DER",
    "packageDetail": {
        "packageReferenceId": "1", "carrierCode": "FedEx", "trackingNumber": "112345678",
        "shipDate": "2022-02-11T01:00:00.000Z",
        "orderItems": [{"orderItemId": "79039765272157", "quantity": 1}],
    },
}


def _order(**overrides):
    order = {"orderId": "111-1234567-1234567", "createdTime": "2026-01-01T00:00:00Z",
             "lastUpdatedTime": "2026-01-01T00:00:00Z",
             "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
             "orderItems": [{"orderItemId": "1", "quantityOrdered": 1, "product": {"sellerSku": "X"}}]}
    order.update(overrides)
    return order


# -- the model's own sandbox pairs ------------------------------------------------------------


@pytest.mark.parametrize("operation", ["searchOrders", "getOrder", "confirmShipment"])
def test_static_pairs_of_each_operation_replay_cleanly(operation):
    pairs = static_sandbox_pairs(operation)
    assert any(p["status"] in (200, 204) for p in pairs)
    assert any(p["status"] == 400 for p in pairs)
    for pair in pairs:
        assert validate_response(operation, pair["status"], pair["response"]) == [], pair
        if pair["status"] in (200, 204):
            assert validate_request(operation, path_params=pair["path_params"], query=pair["query"],
                                    body=pair["body"]) == [], pair


def test_static_pairs_split_parameters_for_replay():
    (ok,) = [p for p in static_sandbox_pairs("confirmShipment") if p["status"] == 204]
    assert ok["path_params"] == {"orderId": "902-1106328-1059050"}
    assert ok["body"]["packageDetail"]["packageReferenceId"] == "1"  # model's "body" -> the body param
    assert ok["response"] is None  # 204: no body, although the model writes {}
    search = [p for p in static_sandbox_pairs("searchOrders") if p["status"] == 200][0]
    assert search["query"]["marketplaceIds"] == ["A1VC38T7YXB528"]
    assert "BUYER" in search["query"]["includedData"]
    assert search["response"]["orders"][0]["orderId"]


def test_static_400_pairs_are_invalid_requests_naming_the_parameter():
    (bad_confirm,) = [p for p in static_sandbox_pairs("confirmShipment") if p["status"] == 400]
    problems = validate_request("confirmShipment", path_params=bad_confirm["path_params"],
                                body=bad_confirm["body"])
    assert problems and all("shipDate" in p for p in problems)
    (bad_search,) = [p for p in static_sandbox_pairs("searchOrders") if p["status"] == 400]
    problems = validate_request("searchOrders", query=bad_search["query"])
    assert problems and "createdAfter" in problems[0]


# -- requests ------------------------------------------------------------------------------------


def test_confirm_body_problems_name_the_field():
    assert validate_request("confirmShipment", path_params={"orderId": "1"}, body=VALID_CONFIRM) == []
    body = {"marketplaceId": "ATVPDKIKX0DER",
            "packageDetail": dict(VALID_CONFIRM["packageDetail"], packageReferenceId=1)}
    (problem,) = validate_request("confirmShipment", path_params={"orderId": "1"}, body=body)
    assert "packageDetail.packageReferenceId" in problem and "invalid type" in problem
    detail = {k: v for k, v in VALID_CONFIRM["packageDetail"].items() if k != "carrierCode"}
    (problem,) = validate_request("confirmShipment", path_params={"orderId": "1"},
                                  body={"marketplaceId": "X", "packageDetail": detail})
    assert "packageDetail.carrierCode" in problem and "missing" in problem


def test_confirm_requires_body_and_path_parameter():
    problems = validate_request("confirmShipment", path_params={"orderId": "1"})
    assert problems == ["missing required request body"]
    problems = validate_request("confirmShipment", body=VALID_CONFIRM)
    assert problems == ["missing required path parameter orderId"]


def test_query_enums_arrays_and_integers():
    ok = {"createdAfter": ["2026-01-01T00:00:00Z"], "marketplaceIds": ["ATVPDKIKX0DER,A2EUQ1WTGCTBG2"],
          "fulfillmentStatuses": ["UNSHIPPED", "PARTIALLY_SHIPPED"], "maxResultsPerPage": ["50"],
          "includedData": ["RECIPIENT,FULFILLMENT"]}
    assert validate_request("searchOrders", query=ok) == []
    problems = validate_request("searchOrders", query={
        "fulfillmentStatuses": ["UNSHIPPED,Unshipped"], "maxResultsPerPage": ["ten"],
        "includedData": ["ADDRESS"], "marketplaceIds": [",".join(["ATVPDKIKX0DER"] * 51)]})
    text = "\n".join(problems)
    assert "fulfillmentStatuses: 'Unshipped' is not one of" in text
    assert "maxResultsPerPage: invalid type: expected integer" in text
    assert "includedData: 'ADDRESS'" in text
    assert "marketplaceIds: 51 values, at most 50 allowed" in text
    assert len(problems) == 4


def test_unknown_query_parameters_are_reported():
    (problem,) = validate_request("searchOrders", query={"MarketplaceIds": ["ATVPDKIKX0DER"]})
    assert "MarketplaceIds" in problem and "unknown" in problem


def test_unknown_operation_is_a_key_error():
    with pytest.raises(KeyError, match="getOrdersss"):
        validate_request("getOrdersss")


def test_qualified_operation_ids_reach_the_other_model():
    # getOrder is v2026-01-01 by default; v0's getOrder answers {"payload": ...}
    assert validate_response("getOrder", 200, {"order": _order()}) == []
    assert validate_response("getOrder", 200, {"payload": {}})  # no "order"
    v0 = {"payload": {"AmazonOrderId": "111-1234567-1234567", "PurchaseDate": "2026-01-01T00:00:00Z",
                      "LastUpdateDate": "2026-01-01T00:00:00Z", "OrderStatus": "Unshipped"}}
    assert validate_response("ordersV0:getOrder", 200, v0) == []


# -- responses ---------------------------------------------------------------------------------


def test_response_schema_per_status():
    assert validate_response("confirmShipment", 204, None) == []
    assert validate_response("confirmShipment", 204, b"") == []
    assert validate_response("confirmShipment", 204, {"ok": True})  # 204 has no body
    assert validate_response("confirmShipment", 400, {"errors": [{"code": "X", "message": "m"}]}) == []
    assert validate_response("getOrder", 404, {"errors": [{"code": "NotFound", "message": "m"}]}) == []
    (problem,) = validate_response("getOrder", 429, {"errors": [{"code": "QuotaExceeded"}]})
    assert "errors[0].message" in problem
    (problem,) = validate_response("getOrder", 418, {})
    assert "418" in problem and "not declared" in problem


def test_response_problems_carry_the_path_and_catch_undeclared_fields():
    bad = _order(orderItems=[{"orderItemId": "1", "quantityOrdered": "2", "product": {}}])
    (problem,) = validate_response("searchOrders", 200, {"orders": [bad]})
    assert problem.startswith("orders[0].orderItems[0].quantityOrdered: invalid type")
    typo = _order(fulfilment={"fulfillmentStatus": "UNSHIPPED"})
    (problem,) = validate_response("getOrder", 200, {"order": typo})
    assert "order" in problem and "fulfilment" in problem
    status = _order(fulfillment={"fulfillmentStatus": "Unshipped"})
    (problem,) = validate_response("getOrder", 200, {"order": status})
    assert "order.fulfillment.fulfillmentStatus" in problem


def test_date_time_format_is_checked_leniently():
    for good in ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456+08:00", "2026-01-02T03:04Z",
                 "2026-01-02T03:04:05+0800"):
        body = {"marketplaceId": "X", "packageDetail": dict(VALID_CONFIRM["packageDetail"], shipDate=good)}
        assert validate_request("confirmShipment", path_params={"orderId": "1"}, body=body) == [], good
    for bad in ("02/21/2022", "2026-01-02 at noon", "yesterday"):
        body = {"marketplaceId": "X", "packageDetail": dict(VALID_CONFIRM["packageDetail"], shipDate=bad)}
        assert validate_request("confirmShipment", path_params={"orderId": "1"}, body=body), bad


# -- the compiled check agrees with the full one ----------------------------------------------

_JSON_SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.5, -1.0])
                 | st.sampled_from(["", "1", "X", "UNSHIPPED", "Unshipped", "SHIPPED", "AMAZON",
                                    "2026-01-02T03:04:05Z", "2026-01-02", "02/21/2022", "ATVPDKIKX0DER"])
                 | st.text(max_size=5))
_JSON = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _seeds():
    """Valid instances of each schema the emulator checks: (model, pointer, strict, instance)."""
    seeds = []
    for operation in ("searchOrders", "getOrder", "confirmShipment"):
        op = schemas._operation(operation)
        for pair in static_sandbox_pairs(operation):
            key = str(pair["status"]) if str(pair["status"]) in op.responses else "default"
            if pair["response"] is not None:
                seeds.append((op.model, schemas._pointer("operations", operation, "responses", key), True,
                              pair["response"]))
            if pair["body"] is not None and pair["status"] in (200, 204):
                seeds.append((op.model, schemas._pointer("operations", operation, "body"), False,
                              pair["body"]))
    op = schemas._operation("getOrder")
    seeds.append((op.model, schemas._pointer("operations", "getOrder", "responses", "200"), True,
                  {"order": _order()}))
    return seeds


SEEDS = _seeds()


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _mutated(instance, path, how, value):
    """``instance`` with the node at ``path`` replaced by ``value``, deleted, or given a key."""
    copy_ = json.loads(json.dumps(instance))
    if not path:
        return value if how == "replace" else copy_
    parent = copy_
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last]["undeclaredField"] = value
    return copy_


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_the_compiled_check_agrees_with_the_full_one(data):
    model, pointer, strict, valid = data.draw(st.sampled_from(SEEDS))
    instance = valid
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(list(_paths(instance))))
        instance = _mutated(instance, path, data.draw(st.sampled_from(["replace", "delete", "add"])),
                            data.draw(_JSON))
    full = not any(True for _ in schemas._validator(model, pointer, strict).iter_errors(instance))
    assert schemas._compiled(model, pointer, strict).is_valid(instance) is full, instance


@pytest.mark.parametrize("instance", [
    {"order": _order(orderItems=[{"orderItemId": "1", "quantityOrdered": 1.0, "product": {}}])},
    {"order": _order(orderItems=[{"orderItemId": "1", "quantityOrdered": True, "product": {}}])},
    {"order": _order(createdTime="02/21/2022")},
    {"order": _order(createdTime=None)},
])
def test_what_the_full_check_refuses_the_compiled_one_refuses(instance):
    op = schemas._operation("getOrder")
    pointer = schemas._pointer("operations", "getOrder", "responses", "200")
    assert validate_response("getOrder", 200, instance)
    assert not schemas._compiled(op.model, pointer, True).is_valid(instance)


def test_every_schema_of_the_loaded_models_compiles():
    """A pattern the compiled validator's regex engine refused would break that operation in the
    emulator at its first answer, not here."""
    compiled = 0
    for key, op in schemas._operations().items():
        if ":" not in key:  # each operation once, by its qualified key
            continue
        body = op.body_param
        if body and "schema" in body:
            schemas._compiled(op.model, schemas._pointer("operations", op.operation_id, "body"), False)
            compiled += 1
        for status, declared in op.responses.items():
            if isinstance(declared, dict) and "schema" in declared:
                schemas._compiled(op.model, schemas._pointer("operations", op.operation_id, "responses",
                                                             status), True)
                compiled += 1
    assert compiled > 20
