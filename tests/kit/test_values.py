"""connector.kit.values: the lenient readers and unit helpers every carrier mapping shares."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connector.kit.values import (
    cents,
    chunks,
    decimal,
    integer,
    kilograms,
    looks_like_pdf,
    says_not_found,
    text,
    whole_centimetres,
)


def test_pdf_check():
    assert looks_like_pdf(b"%PDF-1.4\n...\n%%EOF\n")
    assert not looks_like_pdf(b"%PDF-1.4\n... truncated")
    assert not looks_like_pdf(b"<html>Not found</html>")


@pytest.mark.parametrize("value, expected", [(None, ""), ("  a ", "a"), (5, "5")])
def test_text(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), (" 42 ", 42), ("-1", -1), (True, 1),
                                             (3.5, None), ("4x", None), (None, None)])
def test_integer(value, expected):
    assert integer(value) == expected


@pytest.mark.parametrize("value, expected", [("1.50", Decimal("1.50")), (2, Decimal(2)), ("nan", None),
                                             ("abc", None), (True, None), (None, None)])
def test_decimal(value, expected):
    assert decimal(value) == expected


def test_units():
    assert kilograms(250) == 0.25 and kilograms(1) == 0.001 and kilograms(Decimal("1234.5")) == 1.235
    assert whole_centimetres(Decimal("20.1")) == 21 and whole_centimetres(0) == 1
    assert cents(Decimal("4.005")) == 4.01


def test_chunks():
    assert list(chunks(["a", "b", "c"], 2)) == [["a", "b"], ["c"]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks(["a"], 0))


NOT_FOUND = ("不存在", "未找到", "无此", "not exist", "not found", "no record", "no such")


@pytest.mark.parametrize("message", [
    "订单不存在", "订单不存在 / no order under this logistics_order_no",
    "运单不存在 / waybill UG1 does not exist",
    "无此订单", "Order 111-0000001-0000001-1 not found", "No such shipment", "orders not found",
])
def test_a_refusal_that_says_the_order_does_not_exist_is_not_found(message):
    assert says_not_found(message, NOT_FOUND)


@pytest.mark.parametrize("message", [
    # the lookup itself was refused: it did not look, so "no order" would buy a second label
    "接口不存在", "服务不存在", "ecCompanyId不存在", "ecCompanyId不存在 / unknown ecCompanyId", "用户不存在",
    "method not exist", "method express.order.getlist does not exist (接口不存在)", "user_id does not exist",
    "No HTTP resource was found that matches the request URI", "订单查询接口不存在",
    # no word says what does not exist, or the carrier's own trouble
    "不存在", "no record", "Not Found", "系统异常，订单不存在", "the border does not exist",
])
def test_any_other_refusal_is_not_not_found(message):
    assert not says_not_found(message, NOT_FOUND)
