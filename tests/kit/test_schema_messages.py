"""Schema errors as an operator reads them: what would do, never the value given."""
from __future__ import annotations

from connector.kit.schema import problems

MONEY = {"anyOf": [{"type": "null"},
                   {"type": "string", "pattern": r"^[0-9]+ [A-Z]{3}$",
                    "x-format": "amount and currency, e.g. 150 EUR"},
                   {"type": "object", "required": ["amount", "currency"],
                    "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}}}]}


def test_a_value_matching_no_alternative_says_what_each_would_take():
    schema = {"type": "object", "properties": {"cap": MONEY}}
    assert problems(schema, {"cap": "s3cret abc"}) == [
        (("cap",), "has the wrong form (expected amount and currency, e.g. 150 EUR; or a mapping of amount, "
                   "currency)")]


def test_alternatives_without_a_stated_form_give_the_closest_ones_reason():
    schema = {"type": "object", "properties": {"n": {"anyOf": [{"type": "integer", "minimum": 1},
                                                              {"type": "integer", "maximum": -1}]}}}
    path, message = problems(schema, {"n": 0})[0]
    assert path == ("n",) and message.startswith("must be") and "anyOf" not in message


def test_a_date_that_does_not_exist_says_what_a_date_is():
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date",
                                                     "x-format": "a real date, YYYY-MM-DD"}}}
    assert problems(schema, {"d": "2026-02-31"}) == [(("d",), "has the wrong format (expected a real date, "
                                                              "YYYY-MM-DD)")]


def test_a_number_that_is_not_finite_is_refused_typed_or_not():
    schema = {"type": "object", "properties": {"n": {"type": "number", "minimum": 0},
                                               "s": {"type": "string"}},
              "additionalProperties": True}
    assert problems(schema, {"n": float("-inf"), "s": float("nan"), "free": {"x": [1, float("inf")]}}) == [
        (("free", "x", 1), "must be a finite number, not .inf or .nan"),
        (("n",), "must be a finite number, not .inf or .nan"),
        (("s",), "must be a string")]
