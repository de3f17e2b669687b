"""The end-of-run summary's text (connector/cli/summary.py)."""
from __future__ import annotations

from connector.cli.summary import EXAMPLE_CHARS, render


def _summary(example: str) -> dict:
    return {"this_run": {"new_orders": 1, "labels_bought": 0, "labels_recovered": 0, "confirmations_sent": 0,
                         "verified": 0, "labels_voided": 0, "held": 1},
            "states": {"HELD": 1}, "orders_by_site": {"UK": 1}, "labels_by_carrier": {},
            "held_reasons": {"no_eligible_service": {"count": 1, "example": example}}}


def held_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.lstrip().startswith("no_eligible_service"))


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
    assert held_line(render(_summary(message))).endswith(f"e.g. {message}")
