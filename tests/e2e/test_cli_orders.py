"""`mfn-connector orders hold|release|retry|list|show` against a real ledger."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connector.cli import cli

from .helpers import ingest_all

pytestmark = pytest.mark.e2e


def one_ingested_order(world) -> tuple:
    """A sandbox with one order ingested (nothing bought), and a CLI runner against it."""
    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        order_id = rt.ledger.orders()[0].order_id
    finally:
        rt.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), *args])

    return order_id, run


def test_an_operator_holds_releases_and_retries_an_order(world):
    order_id, cli_run = one_ingested_order(world)

    def run(*args: str):
        return cli_run("orders", *args)

    held = run("hold", order_id)
    assert held.exit_code == 0 and held.output.strip() == f"{order_id}: HELD (manual)", held.output
    listed = json.loads(run("list", "--state", "HELD", "--json").output)
    assert [(r["order_id"], r["hold_reason"]) for r in listed] == [(order_id, "manual")]
    shown = json.loads(run("show", "--json", order_id).output)
    assert shown["hold"]["reason"] == "manual" and "ship_to" not in json.dumps(shown)
    bad = run("hold", order_id, "--reason", "carrier_on_fire")
    assert bad.exit_code == 2 and "carrier_on_fire" in bad.output  # only documented reasons
    daemons = run("hold", order_id, "--reason", "label_uncertain")  # says no call is in flight: not ours
    assert daemons.exit_code == 2 and "label_uncertain" in daemons.output
    forged = run("hold", order_id, "--reason", "void_refused")  # would let a live label be dropped
    assert forged.exit_code == 2, forged.output
    assert "cannot hold an order for 'void_refused'" in forged.output and "void the order" in forged.output
    released = run("release", order_id)
    assert released.exit_code == 0 and released.output.strip() == f"{order_id}: released to NEW"
    retried = run("retry", order_id)
    assert retried.exit_code == 0 and retried.output.strip() == f"{order_id}: due now"
    wrong = cli_run("orders", "list", "--state", "SHIPPED")
    assert wrong.exit_code == 2 and "one of NEW, HELD, PLANNED" in wrong.output, wrong.output
    unknown = run("release", "999-0000000-0000000")
    assert unknown.exit_code == 1 and "999-0000000-0000000" in unknown.output


def test_released_from_a_buyers_cancel_request_the_order_ships_anyway(world):
    """The release is the operator's "ship anyway": Amazon's data still carries the request, and
    the order is not held for it again; the others with a request stay held."""
    from connector.engine.loop import Engine
    from connector.ledger import OrderState

    from .helpers import SEEDED_HOLDS, assert_exactly_once

    w = world({"sandbox": {"orders": 40}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        asked = [r.order_id for r in rt.ledger.orders([OrderState.HELD])
                 if r.hold_reason == "buyer_cancel_requested"]
    finally:
        rt.close()
    assert len(asked) >= 2, "the seeded orders hold buyer cancel requests"
    released = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "release", asked[0]])
    assert released.exit_code == 0, released.output
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = rt.ledger.get_order(asked[0])
        assert shipped.state is OrderState.VERIFIED and shipped.order.buyer_cancel_requested
        assert shipped.waived == {"buyer_cancel_requested"}
        assert all(rt.ledger.get_order(o).hold_reason == "buyer_cancel_requested" for o in asked[1:])
        notes = [h["note"] for h in rt.ledger.history(asked[0]) if h["from"] == "HELD"]
        assert notes == ["released: ships despite buyer_cancel_requested"]
    finally:
        rt.close()
    assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})  # some fit no service


def test_operator_input_out_of_range_is_refused_with_a_message(world):
    order_id, run = one_ingested_order(world)

    assert run("orders", "hold", order_id).exit_code == 0
    retried = run("orders", "retry", order_id)  # "due now" would be a lie: a held order waits
    assert retried.exit_code == 1 and f"order {order_id} is HELD (manual): release it" in retried.output
    for days in ("nan", "inf", "-5", "0", "100000000"):
        result = run("report", "vtr", "--days", days)
        assert result.exit_code == 2 and "is not a number of days above 0" in result.output, days
    too_long = run("orders", "list", "--due-within", "99999999999d")
    assert too_long.exit_code == 2 and "longer than 3660 days" in too_long.output, too_long.output
    assert run("report", "vtr", "--days", "7").exit_code == 0
    alone = run("workers", "--json")  # SQLite: one daemon, but still JSON for a script
    assert alone.exit_code == 0 and json.loads(alone.output) == {
        "ledger": "sqlite", "shared": False, "workers": [], "leases": []}, alone.output


def test_pii_rotate_reseals_every_address_so_the_old_key_can_go(world):
    """The documented rotation: the new key first and the old one after it, `pii rotate`, then
    the old key removed -- and every stored address still reads. An address whose key is lost for
    good is named and left as it is; the others are re-sealed all the same."""
    from cryptography.fernet import Fernet

    from connector.ledger.crypto import PiiCipher, seal_address

    from .helpers import ledger_of

    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)
    finally:
        rt.close()
    ledger = ledger_of(w)
    try:
        stored = [r for r in ledger.orders() if r.order.ship_to is not None]  # oldest first
        lost = stored[0]  # sealed with a key nobody has any more (the newest stays readable)
        blob = seal_address(PiiCipher([Fernet.generate_key()]), lost.order_id, lost.order.ship_to)
        with ledger._write() as conn:
            conn.execute("UPDATE orders SET pii = ? WHERE order_id = ?", (blob, lost.order_id))
    finally:
        ledger.close()
    key_file = w.config().pii_key_file
    old = key_file.read_text().strip()
    new = Fernet.generate_key().decode()
    key_file.write_text(f"{new}\n{old}\n")

    rotated = CliRunner().invoke(cli, ["--config", str(w.config_path), "pii", "rotate"])
    assert rotated.exit_code == 1, rotated.output
    assert rotated.output.startswith(f"{len(stored) - 1} buyer address(es) re-encrypted"), rotated.output
    assert f"1 address(es) no configured key reads were left as they are ({lost.order_id})" in rotated.output
    key_file.write_text(f"{new}\n")  # the old key removed
    ledger = ledger_of(w)
    try:
        for record in stored[1:]:
            assert ledger.get_order(record.order_id).order.ship_to == record.order.ship_to
    finally:
        ledger.close()


def test_every_order_held_for_a_reason_is_released_at_once(world):
    """After a carrier outage an operator releases every order held retries_exhausted, not one by
    one: the others held (for another reason, or of another account) stay held."""
    from connector.ledger import OrderState

    from .helpers import ledger_of

    w = world({"sandbox": {"orders": 6}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        ids = [r.order_id for r in rt.ledger.orders([OrderState.NEW])]
        outage = [i for i in ids[:5] if rt.ledger.get_order(i).order.account == "demo-na"][:3]
        elsewhere = next(i for i in ids if rt.ledger.get_order(i).order.account != "demo-na")
        for order_id in outage + [elsewhere]:
            rt.ledger.hold(order_id, "retries_exhausted", "gave up after 12 attempts: no answer")
        manual = next(i for i in reversed(ids) if i not in (*outage, elsewhere))
        rt.ledger.hold(manual, "manual", "held by an operator")
    finally:
        rt.close()
    assert outage, "the sandbox seeds demo-na orders"

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "release", *args])

    assert run().exit_code == 2 and run(outage[0], "--reason", "manual").exit_code == 2  # one or the other
    assert run("--reason", "retries_exhausted", "--replan").exit_code == 2
    assert run("--reason", "buyer_cancel_requested").exit_code == 2  # each such release ships an order
    done = run("--reason", "retries_exhausted", "--account", "demo-na")
    assert done.exit_code == 0, done.output
    last = done.output.splitlines()[-1]
    assert last == f"{len(outage)} order(s) held retries_exhausted, account demo-na released"
    ledger = ledger_of(w)
    try:
        assert all(ledger.get_order(i).state is OrderState.NEW for i in outage)
        assert ledger.get_order(elsewhere).hold_reason == "retries_exhausted"  # another account's
        assert ledger.get_order(manual).hold_reason == "manual"
    finally:
        ledger.close()
    assert run("--reason", "retries_exhausted").output.splitlines()[-1] == \
        "1 order(s) held retries_exhausted released"


def test_orders_show_reads_as_text_one_line_per_moment_and_never_the_address(world):
    """The text view: the order, its package and its history, where an order's move and its
    package's (one transaction) are one line; the held order says why; no address is shown.
    ``--json`` has every field."""
    from connector.engine.loop import Engine
    from connector.ledger import OrderState

    w = world({"sandbox": {"orders": 12}})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        shipped = rt.ledger.orders([OrderState.VERIFIED])[0]
        held = rt.ledger.orders([OrderState.HELD])[0]
        package = rt.ledger.packages(shipped.order_id)[-1]
        history = rt.ledger.history(shipped.order_id)
        addresses = [r.order.ship_to for r in (shipped, held)]
    finally:
        rt.close()

    def show(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "show", *args])
        assert result.exit_code == 0, result.output
        return result.output

    text = show(shipped.order_id)
    assert text.startswith(f"Order {shipped.order_id}: VERIFIED\n"), text
    assert f"Package {package.package_ref}: VERIFIED, {package.carrier} {package.service}" in text
    assert f"tracking number {package.tracking_number}" in text
    assert "address: on file (never shown here)" in text
    moments = text.split("History:\n", 1)[1].splitlines()
    assert len(moments) == len({h["at"] for h in history}) < len(history), text  # the pairs are one line
    assert any(m.endswith(f"order NEW -> PLANNED; package {package.package_ref} PLANNED "
                          f"({package.carrier}/{package.service})") for m in moments), text
    held_text = show(held.order_id)
    assert f"held: {held.hold_reason} (from NEW)\n    {held.hold_message}\n" in held_text, held_text
    for address in addresses:
        for value in (address.name, address.line1, address.phone):
            if value:
                assert value not in text and value not in held_text
    as_json = json.loads(show("--json", shipped.order_id))
    assert as_json["packages"][-1]["tracking_number"] == package.tracking_number


def test_pii_adopt_key_only_for_a_ledger_without_buyer_data(world):
    from cryptography.fernet import Fernet

    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)  # addresses stored
    finally:
        rt.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), *args])

    key_file = w.config().pii_key_file
    original = key_file.read_text()
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    refused = run("pii", "adopt-key")
    assert refused.exit_code == 1 and "holds buyer data sealed with its key" in refused.output
    key_file.write_text(original)
    assert run("pii", "rotate").exit_code == 0
    ledger = w.runtime()
    try:
        ledger.ledger.purge_pii([r.order_id for r in ledger.ledger.orders()])
    finally:
        ledger.close()
    key_file.write_text(Fernet.generate_key().decode() + "\n")  # lost, with nothing stored any more
    listed = run("orders", "list")
    assert listed.exit_code == 1 and "pii adopt-key" in listed.output, listed.output
    adopted = run("pii", "adopt-key")
    assert adopted.exit_code == 0 and "now the ledger's" in adopted.output, adopted.output
    assert run("orders", "list").exit_code == 0


def test_pii_forget_addresses_erases_what_a_key_lost_for_good_sealed_only_when_confirmed(world):
    from cryptography.fernet import Fernet

    from connector.configured import open_configured_ledger

    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)  # addresses stored
        stored = sorted(r.order_id for r in rt.ledger.orders() if r.order.ship_to is not None)
    finally:
        rt.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), *args])

    w.config().pii_key_file.write_text(Fernet.generate_key().decode() + "\n")  # the old key lost for good
    listed = run("orders", "list")
    assert listed.exit_code == 1 and "pii forget-addresses" in listed.output, listed.output
    counted = run("pii", "forget-addresses")
    assert counted.exit_code == 0 and counted.output.startswith(
        f"{len(stored)} buyer address(es) no configured key reads (the key tried: the key file "
        f"{w.config().pii_key_file}): {', '.join(stored)}"), counted.output
    assert f"--confirm {len(stored)}" in counted.output
    assert run("orders", "list").exit_code == 1  # counting erased nothing
    miscounted = run("pii", "forget-addresses", "--confirm", str(len(stored) + 1))
    assert miscounted.exit_code == 1 and "nothing erased" in miscounted.output, miscounted.output
    daemon = open_configured_ledger(w.config(), key_check=False)
    daemon.hold_daemon_lock()  # a daemon still on the ledger
    try:
        refused = run("pii", "forget-addresses", "--confirm", str(len(stored)))
    finally:
        daemon.close()
    assert refused.exit_code == 1 and "another daemon" in refused.output, refused.output
    assert run("orders", "list").exit_code == 1  # nothing erased
    forgot = run("pii", "forget-addresses", "--confirm", str(len(stored)))
    assert forgot.exit_code == 0, forgot.output
    assert f"{len(stored)} buyer address(es) no configured key read erased" in forgot.output
    assert "now the ledger's" in forgot.output
    assert run("orders", "list").exit_code == 0  # the workers start again
    shown = run("orders", "show", stored[0])
    assert "none on file" in shown.output and "buyer address forgotten" in shown.output, shown.output


def test_a_bulk_release_for_an_account_or_site_nobody_has_is_refused(world):
    """A typo in --account or --site must not read as "0 order(s) released" and exit 0. An account
    no longer configured may still own held orders: it is refused only when no order has it either."""
    from .helpers import ledger_of

    w = world({"sandbox": {"orders": 4}})
    rt = w.runtime()
    try:
        ingest_all(rt)
        gone = rt.ledger.orders()[0].order_id
        rt.ledger.hold(gone, "manual", "held by an operator")
    finally:
        rt.close()
    ledger = ledger_of(w)
    try:  # its account since removed from the configuration
        with ledger._conn() as conn:
            conn.execute("UPDATE orders SET account = 'removed-eu' WHERE order_id = ?", (gone,))
    finally:
        ledger.close()

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(w.config_path), "orders", "release", "--reason",
                                        "manual", *args])

    for option, value in (("--account", "nosuch"), ("--site", "ZZ")):
        typo = run(option, value)
        assert typo.exit_code == 1, typo.output
        assert f"no {option[2:]} {value}" in typo.output, typo.output
    assert run("--site", "us").exit_code == 0  # configured, nothing held there: nothing to say
    removed = run("--account", "removed-eu")
    assert removed.exit_code == 0 and removed.output.splitlines()[-1] == \
        "1 order(s) held manual, account removed-eu released", removed.output
