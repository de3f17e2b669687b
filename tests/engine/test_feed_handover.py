"""Two workers share a PostgreSQL ledger, and an account changes hands while its feed is being
submitted: the new owner must not take the feed for one a crash left behind and send its
packages in a second feed."""
from __future__ import annotations

import threading

import pytest

from connector.engine import feeds as feeds_mod
from connector.engine.loop import drive
from connector.ledger import OrderState

from ..e2e.helpers import feeds_config, ingest_all

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


@pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)
def test_a_feed_in_submission_is_not_submitted_again_by_the_accounts_new_owner(world, ledger_backend):
    config = feeds_config(6)
    config["amazon"]["feeds"]["batch_wait_seconds"] = 0
    w = world(config)
    old_owner, new_owner = w.runtime(), w.runtime()
    try:
        ingest_all(old_owner)
        for record in old_owner.ledger.orders([OrderState.NEW]):
            drive(old_owner, record.order_id, lambda: False)
        account = old_owner.ledger.orders([OrderState.LABELED])[0].order.account
        in_flight, answer = threading.Event(), threading.Event()
        client = feeds_mod._client(old_owner, account)
        create = client.create_feed

        def slow_create_feed(*args, **kwargs):  # the old owner's createFeed waits for its answer
            in_flight.set()
            assert answer.wait(30)
            return create(*args, **kwargs)

        client.create_feed = slow_create_feed
        errors: list[BaseException] = []

        def old_owners_pass():
            try:
                feeds_mod.confirm_by_feed(old_owner, old_owner.config.account(account))
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        thread = threading.Thread(target=old_owners_pass)
        thread.start()
        assert in_flight.wait(30)
        feeds_mod.run_feeds(new_owner)  # the lease moved: the new owner's feeds pass
        answer.set()
        thread.join(30)
        assert not errors
        assert len(w.state("spapi")["feeds"]) == 1, "the same packages went out in two feeds"
        [feed] = new_owner.ledger.feeds(account)
        assert feed.state == "SUBMITTED" and feed.feed_id
    finally:
        old_owner.close()
        new_owner.close()
