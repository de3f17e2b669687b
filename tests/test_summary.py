"""The end-of-run summary's text (connector/cli/summary.py)."""
from __future__ import annotations

from connector.cli.summary import EXAMPLE_CHARS, render


def _summary(example: str, order_id: str = "202-3118861-0420609",
             reason: str = "no_eligible_service") -> dict:
    return {"this_run": {"new_orders": 1, "labels_bought": 0, "labels_recovered": 0, "confirmations_sent": 0,
                         "verified": 0, "labels_voided": 0, "held": 1},
            "states": {"HELD": 1}, "orders_by_site": {"UK": 1}, "labels_by_carrier": {},
            "held_reasons": {reason: {"count": 1, "order_id": order_id, "example": example}}}


def held_line(text: str, reason: str = "no_eligible_service") -> str:
    return next(line for line in text.splitlines() if line.lstrip().startswith(reason))


def test_a_long_hold_message_is_cut_to_a_line_and_says_where_the_rest_is() -> None:
    services = "; ".join(f"carrier{n}:SVC{n}: not forced: site UK forces chinapost" for n in range(12))
    message = f"order 202-3118861-0420609 (UK): no carrier service can ship it: {services}"
    text = render(_summary(message))
    line = held_line(text)
    assert line.endswith(" ...") and "order 202-3118861-0420609 (UK)" in line
    shown = line.split("e.g. ", 1)[1][:-len(" ...")]
    assert message.startswith(shown) and len(shown) <= EXAMPLE_CHARS
    assert message[len(shown)] in " ,;:"  # cut between words, without a dangling ";"
    assert "`mfn-connector orders show ID`" in text  # where the whole message is


def test_a_short_hold_message_is_shown_whole() -> None:
    message = "order 202-4602116-9783619: SKU DISCONTINUED-SKU-9 is not in the catalog; add it and release"
    assert held_line(render(_summary(message, "202-4602116-9783619"))).endswith(f"e.g. {message}")


def test_an_example_that_does_not_name_its_order_is_given_its_id() -> None:
    message = "gave up after 5 attempts in state LABEL_CLAIMED: internal error: KeyError: 'x'"
    text = render(_summary(message, "111-0000000-0000001", "retries_exhausted"))
    line = held_line(text, "retries_exhausted")
    assert line.endswith(f"e.g. order 111-0000000-0000001: {message}")


def test_a_message_cut_where_a_word_ends_keeps_that_word() -> None:
    message = "order 123: " + " ".join(["x" * 9] * 30)  # 11 + words of 9 and a space: one ends at 200
    assert message[EXAMPLE_CHARS] == " "
    shown = held_line(render(_summary(message, "123")))
    assert shown.endswith(f"e.g. {message[:EXAMPLE_CHARS]} ...")  # the last whole word is kept
