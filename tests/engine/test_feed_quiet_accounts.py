"""A feeds pass finds the accounts with nothing to do by feed in two reads for all of them, not two
reads each: a worker acting for hundreds of accounts spent most of its idle CPU asking each."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from connector.engine import feeds as feeds_mod

ACCOUNTS = [f"seller-{n}" for n in range(50)]


class Ledger:
    """Account seller-3 has a feed open, seller-7 a backlog of 60 orders; the others nothing."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def feeds(self, account=None, *, open_only=False):
        self.reads.append("feeds")
        return [SimpleNamespace(account="seller-3")]

    def feed_backlogs(self, states):
        self.reads.append("feed_backlogs")
        return {"seller-7": 60, "seller-9": 49}


def runtime(mode: str) -> SimpleNamespace:
    accounts = [SimpleNamespace(name=name, orders_owner="amazon") for name in ACCOUNTS]
    settings = SimpleNamespace(mode=mode, min_backlog=50)
    return SimpleNamespace(config=SimpleNamespace(accounts=accounts, amazon=SimpleNamespace(feeds=settings)),
                           amazon=dict.fromkeys(ACCOUNTS), acts_for=lambda account: True, ledger=Ledger())


@pytest.mark.parametrize(("mode", "asked"), [("auto", ["seller-3", "seller-7"]), ("never", ["seller-3"]),
                                             ("always", ACCOUNTS)])
def test_only_accounts_with_a_feed_open_or_a_backlog_to_feed_are_asked(monkeypatch, mode, asked) -> None:
    rt = runtime(mode)
    called: list[str] = []
    monkeypatch.setattr(feeds_mod, "confirm_by_feed", lambda rt, account: called.append(account.name) or 0)
    feeds_mod.run_feeds(rt)
    assert called == asked
    assert len(rt.ledger.reads) <= 2  # for all 50 accounts
    state = feeds_mod._state(rt)
    assert state.decided >= set(ACCOUNTS) - set(asked)  # decided: the confirm step need not wait for a pass
    assert not state.feeding & (set(ACCOUNTS) - set(asked))
