"""Webhooks from the real daemon: every event of a sandbox run reaches the receiver, in order per
order, through a receiver that fails for a while and a daemon SIGKILLed between a delivery and
its commit; duplicates carry the same webhook-id."""
from __future__ import annotations

import json
import signal
from collections import defaultdict

import pytest
from standardwebhooks.webhooks import Webhook

from connector.engine.crashpoints import WEBHOOK_POINT
from connector.hookspecs import hookimpl

from ..test_events_and_webhooks import SECRET, Receiver
from .helpers import SEEDED_HOLDS, assert_exactly_once, ledger_of, run_cli, run_once_until_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hooked_world(world, receiver):
    return world({"sandbox": {"orders": 8},
                  "webhooks": {"endpoints": [{"name": "erp", "url": receiver.url, "secret": SECRET}],
                               "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}})


def every_event(w) -> list:
    ledger = ledger_of(w)
    try:
        return ledger.events(limit=100_000)
    finally:
        ledger.close()


def assert_all_received_in_order(w, receiver) -> None:
    events = every_event(w)
    assert events, "the run wrote events"
    hook = Webhook(SECRET)
    first_ok: dict[str, int] = {}
    for i, r in enumerate(receiver.received):
        payload = hook.verify(r["body"], r["headers"])  # every message is signed
        assert payload["data"]["event_id"] == r["headers"]["webhook-id"]
        if r["status"] == 200:
            first_ok.setdefault(r["headers"]["webhook-id"], i)
    assert set(first_ok) == {e.webhook_id for e in events}, "an event was lost"
    per_order: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.order_id:
            per_order[event.order_id].append(first_ok[event.webhook_id])
    for order_id, positions in per_order.items():
        assert positions == sorted(positions), f"order {order_id}: events out of order"


def test_a_receiver_failing_for_a_while_gets_every_event_in_order(world, receiver):
    w = hooked_world(world, receiver)
    receiver.script = [500] * 12 + [503] * 3
    run_once_until_quiet(w)
    for _ in range(5):  # --once ends when the orders are quiet; pending deliveries go on
        if "pending" not in json.loads(run_cli(w, "webhooks", "status", "--json").stdout)["erp"]:
            break
        assert run_cli(w, "webhooks", "deliver").returncode == 0
    assert_all_received_in_order(w, receiver)
    failed_ids = {r["headers"]["webhook-id"] for r in receiver.received if r["status"] != 200}
    assert failed_ids and failed_ids <= set(receiver.ids())  # retried under the same id
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})


def test_sigkill_between_delivery_and_commit_resends_with_the_same_id(world, receiver):
    w = hooked_world(world, receiver)
    killed = run_cli(w, "run", "--once", extra_env={"MFN_CONNECTOR_CRASH_AT": f"{WEBHOOK_POINT}:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    third = receiver.received[2]["headers"]["webhook-id"]
    run_once_until_quiet(w)
    assert run_cli(w, "webhooks", "deliver").returncode == 0
    assert_all_received_in_order(w, receiver)
    assert receiver.ids().count(third) == 2  # delivered, killed before the commit, delivered again
    status = json.loads(run_cli(w, "webhooks", "status", "--json").stdout)["erp"]
    assert status.get("pending", 0) == 0 and status.get("dead", 0) == 0


class EventLog:
    """A plugin recording the mfn_event hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def mfn_event(self, event_id, type, at, data):  # noqa: A002 - the hook's field name
        self.seen.append((event_id, type))


def test_hook_mfn_event(world):
    """Every event, in order, once; again after a lost cursor commit (as after a SIGKILL)."""
    from connector.engine.hooks import CONSUMER, dispatch
    from connector.engine.loop import Engine

    w = world({"sandbox": {"orders": 6}})
    rt = w.runtime()
    log = EventLog()
    rt.host.register(log, name="event-log")
    try:
        Engine(rt).run_until_quiet()
        events = rt.ledger.events(limit=100_000)
        assert log.seen == [(e.webhook_id, e.type) for e in events]  # all, in order, once
        assert {"order.received", "package.labeled", "package.verified"} <= {t for _, t in log.seen}
        assert dispatch(rt) == 0  # nothing twice
        with rt.ledger._write() as conn:  # as if killed before the last cursor commit
            conn.execute("UPDATE event_cursors SET last_event_id = ? WHERE consumer = ?",
                         (events[-3].id, CONSUMER))
        assert dispatch(rt) == 2 and log.seen[-2:] == [(e.webhook_id, e.type) for e in events[-2:]]
    finally:
        rt.close()


def test_with_no_hook_listening_the_cursor_moves_past_the_events_unread(world, monkeypatch):
    """No plugin implements an event hook: the dispatch reads no event (each read of the shared
    ledger's outbox takes its write lock alone) and moves the cursor past them all; a plugin
    registered later hears only what happens from then on."""
    from connector.engine.hooks import CONSUMER, dispatch
    from connector.engine.loop import Engine

    w = world({"sandbox": {"orders": 6}})
    rt = w.runtime()
    read = []
    events = rt.ledger.events
    monkeypatch.setattr(rt.ledger, "events", lambda **kw: read.append(kw) or events(**kw))
    try:
        Engine(rt).run_until_quiet()
        newest = events(limit=100_000)[-1].id
        assert read == [] and rt.ledger.event_cursor(CONSUMER) == newest
        log = EventLog()
        rt.host.register(log, name="event-log")
        rt.ledger.raise_alert("test", "subject", "a later event", {})
        assert dispatch(rt) == 1 and [t for _, t in log.seen] == ["alert.test"]
    finally:
        rt.close()


def test_a_command_beside_the_daemon_leaves_the_hooks_to_the_daemons_leader(world, monkeypatch):
    """`orders void` drives a step in its own process. The hooks have one dispatcher, the daemon's
    leader: the command hands nothing to them (a second dispatcher would call them twice, out of
    order, and could move the cursor back), and the daemon's next dispatch hands each event once."""
    from connector.cli.app import State, sole_daemon
    from connector.engine.hooks import CONSUMER, dispatch
    from connector.engine.loop import Engine
    from connector.engine.steer import void_order
    from connector.ledger import PackageState

    w = world({"sandbox": {"orders": 12}})
    daemon = w.runtime()
    log = EventLog()
    daemon.host.register(log, name="event-log")
    monkeypatch.setattr(State, "preloaded_host", daemon.host)
    command = State(str(w.config_path), None, None).runtime()
    try:
        Engine(daemon).run_until_quiet()
        assert not command.leads() and daemon.leads()
        target = next(p for p in daemon.ledger.unprinted_packages() if p.scans == 0)
        handed = len(log.seen)
        void_order(command, target.order_id)
        assert command.ledger.open_package(target.order_id) is None
        assert daemon.ledger.get_package(target.id).state is PackageState.VOIDED
        assert len(log.seen) == handed  # not from the command's process
        assert dispatch(daemon) >= 1 and "package.voided" in {t for _, t in log.seen[handed:]}
        assert len({i for i, _ in log.seen}) == len(log.seen)  # each event once
        daemon.ledger.set_event_cursor(CONSUMER, 1)  # a slower dispatcher finishing late
        assert daemon.ledger.event_cursor(CONSUMER) > 1 and dispatch(daemon) == 0
        assert sole_daemon(command).leads()  # a daemon's runtime (run, serve) leads
    finally:
        command.close()
        daemon.close()
