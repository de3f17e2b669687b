"""The end-of-run summary's text (connector/cli/summary.py)."""
from __future__ import annotations

import pytest

from connector.cli.summary import EXAMPLE_CHARS, render, summarize


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


def test_labels_waiting_for_their_file_are_shown_beside_the_labels_bought() -> None:
    summary = {**_summary("x"), "labels_by_carrier": {"amazon_shipping": 65, "yunexpress": 3},
               "labels_awaiting_file": {"amazon_shipping": 61}}
    text = render(summary)
    assert "Labels by carrier (bought, not voided):" in text
    lines = text.splitlines()
    assert any(line.split() == ["amazon_shipping", "65", "61", "waiting", "for", "their", "file"]
               for line in lines), text
    assert any(line.split() == ["yunexpress", "3"] for line in lines)
    assert any(line.split()[:3] == ["total", "68", "61"] for line in lines)


@pytest.mark.e2e
def test_after_a_full_disk_the_labels_by_carrier_agree_with_the_labels_bought(world, monkeypatch) -> None:
    """The incident: "65 label(s) bought" but "Labels by carrier: amazon_shipping 4" -- the labels
    whose file the full disk kept back were left out of the table, which counted label files."""
    from connector.engine import buy
    from connector.engine.loop import Engine
    from connector.ledger import OrderState

    def disk_full(path, data):
        raise OSError(28, "No space left on device", str(path))

    w = world({"sandbox": {"orders": 6}})
    monkeypatch.setattr(buy, "write_atomically", disk_full)
    rt = w.runtime()
    try:
        Engine(rt).run_pass()
        waiting = rt.ledger.orders([OrderState.LABEL_CLAIMED])
        summary = summarize(rt)
        bought = rt.counters.labels_bought + rt.counters.labels_recovered
        assert waiting and bought >= len(waiting)
        assert sum(summary["labels_by_carrier"].values()) == bought  # the two figures agree
        assert sum(summary["labels_awaiting_file"].values()) == len(waiting)
        assert f"{len(waiting)} waiting for their file" in render(summary)
    finally:
        rt.close()
