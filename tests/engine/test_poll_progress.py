"""The first poll of an account reports each order it reads (the CLI's progress line); later polls
report nothing."""
from __future__ import annotations

import pytest

from connector.cli.run import poll_counter
from connector.engine.loop import Engine

pytestmark = pytest.mark.e2e


def test_only_a_first_poll_reports_progress(world, capsys):
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    heard: dict[str, poll_counter] = {}

    def factory(account: str) -> poll_counter:
        heard[account] = poll_counter(account)
        return heard[account]

    try:
        engine = Engine(rt, poll_progress=factory)
        engine.run_pass()
        read = {a: c.seen for a, c in heard.items()}
        assert set(read) == {a.name for a in rt.config.accounts} and all(read.values())
        assert "first poll, " in capsys.readouterr().err
        heard.clear()
        engine.run_pass()
        assert heard == {}
    finally:
        rt.close()
