"""Registration hooks, exercised through a plugin host exactly as the daemon builds it."""
from __future__ import annotations

import click
from click.testing import CliRunner

from connector.kit import Carrier, CarrierContext, CarrierSpec, ServiceSpec, hookimpl
from connector.kit.sandbox import Emulator, EmulatorSpec, Request, Response, route
from connector.plugins import load_plugins


class AcmeCarrier(Carrier):
    code = "acme"

    def __init__(self, settings, context):
        self.settings = settings

    def create_shipment(self, request):
        raise NotImplementedError

    def find_by_reference(self, reference):
        return None


class AcmeEmulator(Emulator):
    name = "acme"

    @route("GET", r"/ping")
    def ping(self, request):
        return Response.json({"pong": True})


def test_hook_mfn_register_carriers():
    class Plugin:
        @hookimpl
        def mfn_register_carriers(self, register):
            register(CarrierSpec(code="acme", label="ACME", factory=AcmeCarrier, amazon_carrier_code="ACME",
                                 services=(ServiceSpec("STD", "Standard", "fully_tracked"),),
                                 site_carrier_codes={"JP": None}))

    host = load_plugins(entrypoints=False)
    host.register(Plugin(), "acme-plugin")
    spec = host.carriers()["acme"]
    assert spec.carrier_code_for("US") == "ACME" and spec.carrier_code_for("JP") is None
    assert spec.capabilities() == ["create_shipment", "find_by_reference"]
    carrier = spec.build({}, CarrierContext.default())
    assert isinstance(carrier, AcmeCarrier) and carrier.settings == spec.settings.from_section({})
    assert host.reports["acme-plugin"].registered == ["carrier:acme"]


def test_hook_mfn_register_sandbox_emulators():
    class Plugin:
        @hookimpl
        def mfn_register_sandbox_emulators(self, register):
            register(EmulatorSpec(name="acme", factory=AcmeEmulator, port_offset=10,
                                  env_var="MFN_SANDBOX_ACME"))

    host = load_plugins(entrypoints=False)
    host.register(Plugin(), "acme-plugin")
    emulators = host.emulators()
    assert emulators["spapi"].port_offset == 0  # the core's own, through the same hook
    emulator = emulators["acme"].factory({})
    assert emulator.handle(Request("GET", "/ping", {}, {}, b"")).status == 200


def test_hook_mfn_register_commands():
    class Plugin:
        @hookimpl
        def mfn_register_commands(self, cli):
            @cli.command("acme-status")
            def acme_status():
                click.echo("acme ok")

    @click.group()
    def group():
        pass

    host = load_plugins(entrypoints=False)
    host.register(Plugin(), "acme-plugin")
    host.register_commands(group)
    result = CliRunner().invoke(group, ["acme-status"])
    assert result.exit_code == 0 and result.output == "acme ok\n"


def test_a_plugin_command_never_replaces_one_already_there():
    """A plugin's own `report` replaced the built-in one without a word: now that plugin fails and
    takes back what it added; another plugin's commands stay."""
    class Clashing:
        @hookimpl
        def mfn_register_commands(self, cli):
            @cli.command("acme-extra")
            def extra():
                click.echo("extra")

            @cli.command("report")
            def report():
                click.echo("not the built-in")

    class Raising:
        @hookimpl
        def mfn_register_commands(self, cli):
            cli.add_command(click.Command("half-done", callback=lambda: None))
            raise RuntimeError("broken after its first command")

    class Fine:
        @hookimpl
        def mfn_register_commands(self, cli):
            @cli.command("fine")
            def fine():
                click.echo("fine")

    @click.group()
    def group():
        pass

    @group.command("report")
    def built_in_report():
        click.echo("built-in report")

    host = load_plugins(entrypoints=False)
    for plugin, name in ((Clashing(), "clashing"), (Raising(), "raising"), (Fine(), "fine-plugin")):
        host.register(plugin, name)
    host.register_commands(group)
    assert sorted(group.commands) == ["fine", "report"]
    assert CliRunner().invoke(group, ["report"]).output == "built-in report\n"
    assert host.reports["clashing"].status == "failed"
    assert "a command named 'report' exists already" in host.reports["clashing"].error
    assert host.reports["raising"].status == "failed" and "broken after" in host.reports["raising"].error
    assert host.reports["fine-plugin"].status == "loaded"
    assert "add_command" not in vars(group)  # the guard is gone once the plugins are in


def test_hook_mfn_register_site_rules(write_config):
    """The built-in marketplace plugin defines the sites; another plugin patches one; the
    configuration's site_rules section wins over both."""
    from decimal import Decimal

    from connector.configured import load_config_with_plugins
    from connector.engine.runtime import configured_rules
    from connector.rules import SiteRulesPatch

    class Patch:
        @hookimpl
        def mfn_register_site_rules(self, register):
            register(SiteRulesPatch("DE", vtr_exclusion_below="25 EUR", returnless_refund_below="10 EUR"))

    host = load_plugins()
    host.register(Patch(), "de-patch")
    config, _ = load_config_with_plugins(str(write_config({"site_rules": {"DE": {
        "returnless_refund_below": "12 EUR"}}})), host)
    rules, _, _ = configured_rules(config, host)
    assert len(rules) >= 22 and rules["US"].buy_shipping_cap.amount == Decimal("800")
    assert rules["DE"].vtr_exclusion_below.amount == Decimal("25")      # the plugin's patch
    assert rules["DE"].returnless_refund_below.amount == Decimal("12")  # configuration wins
    assert rules["FR"].vtr_exclusion_below.amount == Decimal("10")      # untouched


def test_steps_hand_events_over_only_while_a_plugin_listens():
    """The built-in plugins implement no event hook, so a step reads no outbox; a plugin that
    implements any one of them makes every step hand its events over."""
    from types import SimpleNamespace

    from connector.engine.hooks import EVENT_HOOKS, listening

    host = load_plugins()
    rt = SimpleNamespace(host=host)
    assert not listening(rt)
    for name in EVENT_HOOKS:
        plugin = type(f"Listens{name}", (), {name: hookimpl(lambda self, **kw: None)})()
        host.pm.register(plugin)
        assert listening(rt), name
        host.pm.unregister(plugin)
    assert not listening(rt)


def test_an_unreadable_order_does_not_stop_the_event_hooks(tmp_path):
    """order.received hands mfn_order_received the order read from the ledger. A row that cannot
    be read (a hand edit, a restore gone wrong) failed the whole batch: its cursor never moved, so
    every later event was never heard and the ones before it were handed over again at every step."""
    import threading
    from types import SimpleNamespace

    from cryptography.fernet import Fernet

    from connector.engine.hooks import CONSUMER, dispatch
    from connector.ledger.crypto import PiiCipher
    from connector.ledger.sqlite import SqliteLedger

    from .ledger.test_sqlite_ledger import make_order

    class Listener:
        def __init__(self) -> None:
            self.events: list[str] = []
            self.received: list[str] = []

        @hookimpl
        def mfn_event(self, event_id, type, data):  # noqa: A002 - the hook's field name
            self.events.append(event_id)

        @hookimpl
        def mfn_order_received(self, order):
            self.received.append(order.order_id)

    ledger = SqliteLedger(tmp_path / "ledger.db", PiiCipher([Fernet.generate_key()]))
    ledger.migrate()
    try:
        host = load_plugins()
        listener = Listener()
        host.pm.register(listener)
        rt = SimpleNamespace(host=host, ledger=ledger, hooks_lock=threading.Lock())
        broken, fine = "111-0000001-0000001", "111-0000002-0000002"
        for order_id in (broken, fine):
            ledger.upsert_order(make_order(order_id))
        with ledger._write() as conn:
            conn.execute("UPDATE orders SET data = ? WHERE order_id = ?", ('{"order_id": "' + broken, broken))
        assert dispatch(rt) == 2
        assert listener.events == ["evt_1", "evt_2"] and listener.received == [fine]
        assert ledger.event_cursor(CONSUMER) == 2 and dispatch(rt) == 0
    finally:
        ledger.close()


def test_an_event_hook_that_keeps_raising_keeps_nothing_in_memory(monkeypatch):
    """Each failure of a guarded implementation was kept for good, traceback and all (its frames
    hold the dispatch's batch of events): a plugin failing at every event grew the daemon without
    bound. Only a registration hook's failures are read (they fail the plugin), so only those are kept."""
    import gc
    import logging
    import weakref

    from connector import plugins

    quiet = logging.getLogger("test.hooks.quiet")  # pytest's log capture keeps each record's traceback
    quiet.propagate, quiet.disabled = False, True
    monkeypatch.setattr(plugins, "log", quiet)
    host = load_plugins()

    class Payload:
        pass

    class Failing:
        @hookimpl
        def mfn_event(self, event_id, type, at, data):  # noqa: A002 - the hook's field name
            raise RuntimeError("the plugin's bug")

    host.register(Failing(), name="failing")
    held = []
    for n in range(3):
        payload = Payload()
        held.append(weakref.ref(payload))
        host.notify("mfn_event", event_id=f"evt_{n}", type="order.held", at=None, data={"payload": payload})
        del payload
    gc.collect()
    assert [ref() for ref in held] == [None, None, None]
    assert host.reports["failing"].status == "loaded"  # an event hook's failure is logged, not fatal
