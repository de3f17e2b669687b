"""One daemon per SQLite ledger: a second `run` (or `run --once`, `serve`) on the same file is
refused with a message naming the first one's pid, before it touches an order -- two would poll,
buy and confirm the same orders, and one's recovery could lose a label the other paid for. And a
state or labels directory that cannot be written stops the start with a message, not a traceback."""
from __future__ import annotations

import pytest

from .helpers import run_cli
from .test_quota_stop import Daemon

pytestmark = [pytest.mark.e2e]


def test_a_second_daemon_on_one_sqlite_ledger_is_refused(world):
    w = world({"sandbox": {"orders": 4}})
    first = Daemon(w)
    try:
        first.wait_for("spapi account=")  # polling: it holds the ledger
        for args in (("run", "--once"), ("run",), ("serve", "--port", "0")):
            second = run_cli(w, *args, timeout=60)
            assert second.returncode == 1, (args, second.stderr[-2000:])
            assert f"another daemon (pid {first.proc.pid}) is working on it" in second.stderr, second.stderr
            assert "Traceback" not in second.stderr
        assert run_cli(w, "orders", "list").returncode == 0  # the operator's commands still work
    finally:
        code, _ = first.stop()
    assert code == 0
    again = run_cli(w, "run", "--once")  # the lock went with the first daemon
    assert again.returncode == 0, again.stderr[-2000:]


def test_a_directory_that_cannot_be_written_stops_the_start_with_a_message(world, tmp_path):
    blocker = tmp_path / "a-file"  # as root, permissions do not stop a write; a file in the way does
    blocker.write_text("not a directory", encoding="utf-8")
    w = world({"sandbox": {"orders": 1}, "labels_dir": str(blocker / "labels")})
    result = run_cli(w, "run", "--once")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "cannot start:" in result.stderr and str(blocker / "labels") in result.stderr
