"""The safe plugin loader: real (fake) distributions on sys.path, found through entry points."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.kit import hookimpl
from connector.plugins import PluginError, load_plugins

CARRIER_PLUGIN = """
from connector.kit import hookimpl, CarrierSpec, Carrier

class _C(Carrier):
    code = "{code}"

@hookimpl
def mfn_register_carriers(register):
    register(CarrierSpec(code="{code}", label="{code}", factory=_C, amazon_carrier_code="X"))
"""


def install_fake(site: Path, dist: str, ep_name: str, module: str, source: str) -> None:
    """A distribution as pip leaves it: a module plus a .dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[mfn_connector]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in ("MFN_CONNECTOR_LOAD_PLUGINS", "MFN_CONNECTOR_DISABLED_PLUGINS",
                "MFN_CONNECTOR_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_builtin_yunexpress_is_found_through_its_entry_point(site):
    host = load_plugins()
    report = host.reports["carrier_yunexpress"]
    assert report.status == "loaded" and report.distribution == "mfn-carrier-yunexpress"
    assert "mfn_register_carriers" in report.hooks
    assert "yunexpress" in host.carriers()


def test_import_failure_is_reported_and_skipped(site):
    install_fake(site, "broken-plugin", "carrier_broken", "broken_mod", "raise RuntimeError('boom')\n")
    install_fake(site, "good-plugin", "carrier_good", "good_mod", CARRIER_PLUGIN.format(code="good"))
    host = load_plugins()
    broken = host.reports["carrier_broken"]
    assert broken.status == "failed" and "RuntimeError: boom" in broken.error
    assert broken.version == "1.2.3" and broken.distribution == "broken-plugin"
    assert {"good", "yunexpress"} <= set(host.carriers())


def test_duplicate_carrier_code_fails_the_second_plugin(site):
    install_fake(site, "dup-plugin", "carrier_dup", "dup_mod", CARRIER_PLUGIN.format(code="yunexpress"))
    host = load_plugins()
    host.carriers()  # registrations are collected on first use
    failed = [r for r in host.reports.values() if r.status == "failed"]
    assert len(failed) == 1 and "duplicate carrier code(s) yunexpress" in failed[0].error
    owners = [r.name for r in host.reports.values() if "carrier:yunexpress" in r.registered]
    assert owners == ["carrier_yunexpress"]


@pytest.mark.parametrize("dist", ["aa-plugin", "zz-hijack"])
def test_a_built_in_carrier_keeps_its_code_whatever_the_other_distribution_is_named(site, dist):
    """Before, the plugin registered last was called first and kept the code: a distribution
    named after mfn-carrier-yunexpress took the built-in's code, and its credentials with it."""
    module = f"hijack_{dist.replace('-', '_')}"  # one per case: a module imported stays in sys.modules
    install_fake(site, dist, "carrier_hijack", module, CARRIER_PLUGIN.format(code="yunexpress"))
    host = load_plugins()
    assert host.carriers()["yunexpress"].factory == "mfn_carrier_yunexpress.client:YunExpressCarrier"
    assert host.reports["carrier_hijack"].status == "failed"
    assert "already registered by carrier_yunexpress" in host.reports["carrier_hijack"].error


def test_of_two_other_plugins_the_first_by_distribution_name_keeps_a_code(site):
    install_fake(site, "aa-first", "carrier_first", "first_mod", CARRIER_PLUGIN.format(code="acme"))
    install_fake(site, "zz-second", "carrier_second", "second_mod", CARRIER_PLUGIN.format(code="acme"))
    host = load_plugins()
    assert host.carriers()["acme"].factory.__module__ == "first_mod"
    assert host.reports["carrier_second"].status == "failed"


@pytest.mark.parametrize("dist", ["aa-clash", "zz-clash"])
def test_an_entry_point_name_taken_fails_the_newcomer_and_never_displaces_a_built_in(site, dist):
    install_fake(site, dist, "carrier_yunexpress", f"clash_{dist.replace('-', '_')}",
                 CARRIER_PLUGIN.format(code="clash"))
    host = load_plugins()
    assert host.reports["carrier_yunexpress"].distribution == "mfn-carrier-yunexpress"
    assert host.reports["carrier_yunexpress"].status == "loaded" and "yunexpress" in host.carriers()
    clash = host.reports[f"carrier_yunexpress ({dist})"]
    assert clash.status == "failed" and "is taken by mfn-carrier-yunexpress" in clash.error
    assert "clash" not in host.carriers()


@pytest.mark.parametrize(("hook", "registered", "expected"), [
    ("mfn_register_carriers", '{"code": "bad"}', "registered a dict, not a CarrierSpec"),
    ("mfn_register_site_rules", '{"site": "ZA"}', "registered a dict, not a SiteRules or SiteRulesPatch"),
    ("mfn_register_sandbox_emulators", '"acme"', "registered a str, not a EmulatorSpec"),
    ("mfn_register_carriers", 'CarrierSpec(code="bad", label="Bad", factory="x:y", settings=dict)',
     "raised TypeError: CarrierSpec bad: settings must be a CarrierSettings subclass"),
])
def test_a_registration_of_the_wrong_kind_fails_its_plugin_only(site, hook, registered, expected):
    """Before, a carrier registered as a dict stopped every command with a traceback, and site
    rules registered as a dict were dropped without a word."""
    install_fake(site, "odd-plugin", "odd", f"odd_{hook}_{len(registered)}", f"""
        from connector.kit import hookimpl, CarrierSpec
        @hookimpl
        def {hook}(register):
            register({registered})
        """)
    host = load_plugins()
    assert "yunexpress" in host.carriers() and host.site_rules() and host.emulators()
    assert host.reports["odd"].status == "failed" and expected in host.reports["odd"].error
    listed = CliRunner().invoke(cli, ["plugins"])
    assert listed.exit_code == 0 and "odd" in listed.output


def test_unknown_hook_and_bad_arguments_are_rejected(site):
    install_fake(site, "typo-plugin", "typo", "typo_mod", """
        from connector.kit import hookimpl
        @hookimpl
        def mfn_register_carrier(register):
            pass
        """)
    install_fake(site, "args-plugin", "badargs", "badargs_mod", """
        from connector.kit import hookimpl
        @hookimpl
        def mfn_order_held(order_id, colour):
            pass
        """)
    host = load_plugins()
    assert "unknown hook(s): mfn_register_carrier" in host.reports["typo"].error
    assert host.reports["badargs"].status == "failed" and "colour" in host.reports["badargs"].error
    assert host.pm.get_plugin("typo") is None and host.pm.get_plugin("badargs") is None


def test_allow_and_deny_lists(site, monkeypatch):
    install_fake(site, "good-plugin", "carrier_good", "good_mod", CARRIER_PLUGIN.format(code="good"))
    monkeypatch.setenv("MFN_CONNECTOR_DISABLED_PLUGINS", "carrier_good")
    host = load_plugins()
    assert host.reports["carrier_good"].status == "blocked" and "good" not in host.carriers()
    monkeypatch.delenv("MFN_CONNECTOR_DISABLED_PLUGINS")
    monkeypatch.setenv("MFN_CONNECTOR_LOAD_PLUGINS", "carrier_good")
    host = load_plugins()
    assert set(host.carriers()) == {"good"}
    assert host.reports["carrier_yunexpress"].status == "blocked"
    monkeypatch.setenv("MFN_CONNECTOR_LOAD_PLUGINS", "")
    assert load_plugins().carriers() == {}
    monkeypatch.delenv("MFN_CONNECTOR_LOAD_PLUGINS")
    assert "good" not in load_plugins(deny=["carrier_good"]).carriers()  # the YAML's plugins.deny
    # the YAML's `plugins.allow: []` is an empty allow list, as the empty variable: before, it allowed all
    assert load_plugins(allow=[]).carriers() == {}


def test_strict_mode_makes_problems_fatal(site, monkeypatch, caplog):
    install_fake(site, "broken-plugin", "carrier_broken", "broken_mod", "raise ImportError('nope')\n")
    monkeypatch.setenv("MFN_CONNECTOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="carrier_broken"):
        load_plugins()
    assert "skipped" not in caplog.text  # nothing is skipped: the command stops


def test_strict_mode_on_the_command_line_shows_where_the_plugin_broke(site, monkeypatch, capsys):
    install_fake(site, "broken-plugin", "carrier_broken", "broken_mod", "raise ImportError('nope')\n")
    monkeypatch.setenv("MFN_CONNECTOR_STRICT_PLUGINS", "1")
    from connector.cli import main

    with pytest.raises(SystemExit) as stopped:
        main()
    assert str(stopped.value) == "Error: plugin 'carrier_broken': import failed: ImportError: nope"
    err = capsys.readouterr().err
    assert "broken_mod" in err and err.count("Traceback") == 1  # the plugin's own, once


def test_event_hooks_are_isolated(site):
    calls = []

    class Bad:
        @hookimpl
        def mfn_order_held(self, order_id):
            raise RuntimeError("plugin bug")

    class Good:
        @hookimpl
        def mfn_order_held(self, order_id, reason):
            calls.append((order_id, reason))

    host = load_plugins(entrypoints=False)
    host.register(Good(), "good")
    host.register(Bad(), "bad")  # registered last: called first, and it raises
    host.notify("mfn_order_held", order_id="1", reason="r", message="m")
    assert calls == [("1", "r")]


def test_a_raising_registration_hook_fails_its_plugin_only(site):
    class Bad:
        @hookimpl
        def mfn_register_carriers(self, register):
            register("half-registered")
            raise RuntimeError("plugin bug")

    host = load_plugins()
    host.register(Bad(), "bad")
    assert "yunexpress" in host.carriers() and "half-registered" not in str(host.carriers())
    assert host.reports["bad"].status == "failed"
    assert "mfn_register_carriers raised RuntimeError: plugin bug" in host.reports["bad"].error


def test_decisions_go_through_pluggy_firstresult_and_wrappers():
    """A decision hook is firstresult: the first non-None answer wins, a failing plugin passes to
    the next, the built-in default runs last (trylast), and a wrapper sees and may change the result."""
    seen = []

    class Failing:
        @hookimpl(tryfirst=True)
        def mfn_choose_quote(self, candidates):
            raise RuntimeError("plugin bug")

    class Passing:
        @hookimpl
        def mfn_choose_quote(self, candidates):
            return None

    class Dearest:
        @hookimpl
        def mfn_choose_quote(self, candidates):
            return max(candidates)

    class Wrapper:
        @hookimpl(wrapper=True)
        def mfn_choose_quote(self, candidates):
            result = yield
            seen.append(result)
            return result * 10

    host = load_plugins(entrypoints=False)
    for plugin, name in ((Dearest(), "dearest"), (Passing(), "passing"), (Failing(), "failing")):
        host.register(plugin, name)
    assert host.decide("mfn_choose_quote", order=None, requirements=None, candidates=[3, 5, 4]) == 5
    assert host.register(Wrapper(), "wrapper")
    assert host.decide("mfn_choose_quote", order=None, requirements=None, candidates=[3, 5, 4]) == 50
    assert seen == [5]


def test_a_wrapper_sees_every_event_and_a_bad_wrapper_is_refused():
    seen = []

    class Audit:
        @hookimpl(hookwrapper=True)
        def mfn_order_held(self, order_id, reason):
            seen.append(("before", order_id, reason))
            yield
            seen.append(("after", order_id))

    class NotAGenerator:
        @hookimpl(wrapper=True)
        def mfn_order_held(self, order_id):
            return None

    host = load_plugins(entrypoints=False)
    assert host.register(Audit(), "audit")
    host.notify("mfn_order_held", order_id="1", reason="manual", message="m")
    assert seen == [("before", "1", "manual"), ("after", "1")]
    assert not host.register(NotAGenerator(), "not-a-generator")
    report = host.reports["not-a-generator"]
    assert report.status == "failed" and "rejected by pluggy" in report.error


def test_plugins_command_shows_failed_plugin(site):
    install_fake(site, "broken-plugin", "carrier_broken", "broken_mod", "raise RuntimeError('boom')\n")
    from connector.cli import State

    State.preloaded_host = None
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["carrier_broken"]["status"] == "failed"
    assert rows["carrier_yunexpress"]["version"] == "0.1.0"
    text = CliRunner().invoke(cli, ["plugins"]).output
    assert "carrier_broken  [failed]  broken-plugin 1.2.3" in text and "error: import failed" in text


def test_a_carrier_factory_named_by_import_path_is_imported_only_when_needed() -> None:
    """Loading the built-in plugins (every command does, for the configuration's schemas) does
    not import their HTTP clients; building a carrier or asking its capabilities does."""
    import subprocess
    import sys

    probe = ("import sys; from connector.plugins import load_plugins; host = load_plugins(); "
             "spec = host.carriers()['yunexpress']; before = 'mfn_carrier_yunexpress.client' in sys.modules; "
             "caps = spec.capabilities(); print(before, 'mfn_carrier_yunexpress.client' in sys.modules, "
             "'create_shipment' in caps)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_a_factory_path_that_does_not_import_names_the_carrier() -> None:
    from connector.kit import CarrierSpec

    spec = CarrierSpec(code="acme", label="ACME", factory="no_such_module_here:AcmeCarrier")
    with pytest.raises(ImportError, match="carrier acme: cannot import its factory 'no_such_module_here"):
        spec.load_factory()


def test_the_spapi_quotas_a_carrier_declares_are_checked_and_given_to_the_rate_limiter(tmp_path) -> None:
    """A carrier that is an SP-API declares its operations' published quotas: a malformed one fails
    its plugin at registration; the daemon's limiter has them before any carrier is built."""
    from connector.config import load_config
    from connector.engine.runtime import _amazon_clients
    from connector.kit import Carrier, CarrierSpec

    with pytest.raises(TypeError, match="CarrierSpec acme: spapi_quotas must map operations to .*getWidgets"):
        CarrierSpec(code="acme", label="ACME", factory=Carrier, spapi_quotas={"getWidgets": (0, 1)})
    spec = CarrierSpec(code="acme", label="ACME", factory=Carrier, spapi_quotas={"getWidgets": (5, 10)})
    path = tmp_path / "c.yaml"
    path.write_text("catalog: c.csv\nship_from: {name: S, line1: R, city: C, country_code: CN, phone: '1'}\n"
                    "accounts: [{name: a, region: na, marketplaces: [US], refresh_token: t, client_id: c, "
                    "client_secret: s}]\n", encoding="utf-8")
    [client] = _amazon_clients(load_config(path), lambda: None, {"acme": spec}).values()
    assert client.limiter.quota("a", "getWidgets") == (5.0, 10)


def test_a_site_two_plugins_define_fails_config_check_and_the_demo_as_run_does(site, tmp_path, monkeypatch):
    """Before, `config check` said OK, `run` refused, and `demo` died with a RulesError traceback."""
    install_fake(site, "us-again", "sites_us_again", "us_again_mod", """
        from connector.kit import hookimpl
        from connector.rules import SiteRules
        @hookimpl
        def mfn_register_site_rules(register):
            register(SiteRules("US"))
        """)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    config = "config/sandbox.yaml"
    checked = CliRunner().invoke(cli, ["--config", config, "config", "check"])
    assert checked.exit_code == 1 and "site US is registered twice" in checked.output, checked.output
    monkeypatch.setenv("MFN_STATE_DIR", str(tmp_path / "state"))
    demo = CliRunner().invoke(cli, ["--config", config, "demo"])
    assert demo.exit_code == 1 and "site US is registered twice" in demo.output, demo.output
    assert isinstance(demo.exception, SystemExit)  # a message, not a traceback


def test_plugins_lists_the_operations_each_carrier_implements(site):
    """What the contract and the daemon require, visible before a configuration names the carrier
    (the fake here overrides none, so `run` would refuse it)."""
    install_fake(site, "bare-plugin", "carrier_bare", "bare_mod", CARRIER_PLUGIN.format(code="bare"))
    listed = {r["name"]: r for r in json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)}
    assert listed["carrier_yunexpress"]["operations"] == {"yunexpress": [
        "quote", "create_shipment", "get_label", "cancel", "track", "find_by_reference"]}
    assert listed["carrier_bare"]["operations"] == {"bare": []}
    text = CliRunner().invoke(cli, ["plugins"]).output
    assert "carrier bare implements: (none it can tell)" in text
    assert "carrier yunexpress implements: quote, create_shipment, get_label" in text


def test_config_check_refuses_a_configured_carrier_whose_factory_does_not_import(site, write_config):
    """`run` refuses such a carrier at its line ("carrier plugin failed to start"); `config check`
    (the unit's ExecStartPre) said OK: the factory, named by import path, is imported by neither
    the plugin loader nor the configuration's check."""
    install_fake(site, "lazy-plugin", "carrier_lazy", "lazy_mod", """
        from connector.kit import hookimpl, CarrierSpec
        @hookimpl
        def mfn_register_carriers(register):
            register(CarrierSpec(code="lazy", label="lazy", factory="lazy_client_mod:C",
                                 amazon_carrier_code="X"))
        """)
    (site / "lazy_client_mod.py").write_text("import no_such_dependency_here\n", encoding="utf-8")
    from connector.cli import State

    State.preloaded_host = None
    path = write_config({"carriers": {"lazy": {}}})
    checked = CliRunner().invoke(cli, ["--config", str(path), "config", "check"])
    assert checked.exit_code == 1 and isinstance(checked.exception, SystemExit), checked.output
    assert "carriers.lazy: carrier plugin failed to start: carrier lazy: cannot import" in checked.output


def test_the_built_in_distributions_are_the_plugins_this_repository_ships():
    """They load first and keep their codes: a plugin added under plugins/ must be listed too."""
    import re

    from connector.plugins import BUILTIN_DISTRIBUTIONS

    root = Path(__file__).resolve().parents[1] / "plugins"  # (no tomllib: Python 3.10 is supported)
    shipped = {re.search(r'(?m)^name = "([^"]+)"', p.read_text(encoding="utf-8")).group(1)
               for p in root.glob("*/*/pyproject.toml")}
    assert shipped == BUILTIN_DISTRIBUTIONS


def test_a_name_in_the_deny_list_that_no_plugin_has_is_said(site, monkeypatch, caplog):
    """The carrier's code (yanwen) where the plugin's name (carrier_yanwen) belongs left a
    misbehaving plugin loaded without a word."""
    monkeypatch.setenv("MFN_CONNECTOR_DISABLED_PLUGINS", "yanwen")
    with caplog.at_level("WARNING", logger="connector.plugins"):
        host = load_plugins()
    assert host.reports["carrier_yanwen"].status == "loaded"
    [warning] = [r.getMessage() for r in caplog.records if "yanwen" in r.getMessage()]
    assert "'yanwen'" in warning and "carrier_yanwen" in warning


def test_a_plugin_failed_at_registration_is_skipped_by_every_other_hook(site):
    """A plugin reported failed (here: it took a built-in's carrier code) is skipped, as the README
    says: before, it stayed registered, so its other hooks still chose labels and heard events."""
    heard = []

    class Hijack:
        @hookimpl
        def mfn_register_carriers(self, register):
            from connector.kit import Carrier, CarrierSpec
            register(CarrierSpec(code="yunexpress", label="Hijack", factory=Carrier))

        @hookimpl(tryfirst=True)
        def mfn_choose_quote(self, candidates):
            return "hijacked"

        @hookimpl
        def mfn_order_held(self, order_id):
            heard.append(order_id)

    host = load_plugins()
    host.register(Hijack(), "hijack")
    host.carriers()
    assert host.reports["hijack"].status == "failed"
    assert host.decide("mfn_choose_quote", order=None, requirements=None, candidates=[]) != "hijacked"
    host.notify("mfn_order_held", order_id="1", reason="r", message="m")
    assert heard == []
    assert host.register(object(), "builtin-defaults") is False  # a name taken: the refused one is skipped,
    assert host.pm.get_plugin("builtin-defaults") is not None   # never the plugin that holds the name


def test_config_check_leaves_out_the_plugins_the_configuration_denies(site, tmp_path, monkeypatch):
    """`run` merges the site rules of the plugins left after plugins.deny; `config check` merged
    those of every installed plugin, so it refused a configuration `run` takes."""
    install_fake(site, "us-again-denied", "sites_us_denied", "us_denied_mod", """
        from connector.kit import hookimpl
        from connector.rules import SiteRules
        @hookimpl
        def mfn_register_site_rules(register):
            register(SiteRules("US"))
        """)
    shipped = Path(__file__).resolve().parents[1] / "config"
    for name in ("sandbox.yaml", "catalog.sandbox.csv"):
        (tmp_path / name).write_text((shipped / name).read_text(encoding="utf-8"), encoding="utf-8")
    config = tmp_path / "sandbox.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "plugins:\n  deny: [sites_us_denied]\n",
                      encoding="utf-8")
    monkeypatch.setenv("MFN_STATE_DIR", str(tmp_path / "state"))
    checked = CliRunner().invoke(cli, ["--config", str(config), "config", "check"])
    assert checked.exit_code == 0 and "OK" in checked.output, checked.output


def test_a_carrier_code_one_plugin_registers_twice_fails_it(site):
    """Before, the second registration silently replaced the first (its services, its settings)."""
    class Twice:
        @hookimpl
        def mfn_register_carriers(self, register):
            from connector.kit import Carrier, CarrierSpec
            register(CarrierSpec(code="acme", label="ACME", factory=Carrier))
            register(CarrierSpec(code="acme", label="ACME EU", factory=Carrier))

    host = load_plugins()
    host.register(Twice(), "twice")
    assert "acme" not in host.carriers() and "yunexpress" in host.carriers()
    report = host.reports["twice"]
    assert report.status == "failed" and "carrier code(s) acme registered twice" in report.error


@pytest.mark.parametrize("style", ["wrapper", "hookwrapper"])
@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.filterwarnings("ignore::pluggy.PluggyTeardownRaisedWarning")  # (pluggy's word on the bug tried)
def test_a_raising_wrapper_of_a_registration_hook_fails_its_plugin_only(site, style, where):
    """Before, its exception went out of host.carriers(): every command that reads the configuration,
    `plugins` itself, stopped with a traceback."""
    class Bad:
        @hookimpl(**{style: True})
        def mfn_register_carriers(self, register):
            if where == "before":
                raise RuntimeError("wrapper bug")
            yield
            raise RuntimeError("wrapper bug")

    host = load_plugins()
    host.register(Bad(), "bad")
    assert "yunexpress" in host.carriers()
    assert host.reports["bad"].status == "failed"
    assert "mfn_register_carriers raised RuntimeError: wrapper bug" in host.reports["bad"].error
    assert host.pm.get_plugin("bad") is None


@pytest.mark.parametrize("setting", [{"type": "strng"}, {"type": "string", "pattern": "["},
                                     {"type": "string", "minLength": "1"}])
def test_a_carrier_whose_settings_schema_is_no_json_schema_fails_its_plugin_only(site, setting):
    """Before, it registered, and every command reading a configuration with its section stopped
    with a traceback from jsonschema (UnknownType, re.error, TypeError) naming no plugin."""
    from connector.kit import Carrier, CarrierSettings, CarrierSpec

    class OddSettings(CarrierSettings):
        SCHEMA = {"type": "object", "properties": {"a": setting}}

    class Odd:
        @hookimpl
        def mfn_register_carriers(self, register):
            register(CarrierSpec(code="odd", label="Odd", factory=Carrier, settings=OddSettings))

    host = load_plugins()
    host.register(Odd(), "odd")
    assert "odd" not in host.carriers() and "yunexpress" in host.carriers()
    report = host.reports["odd"]
    assert report.status == "failed"
    assert "CarrierSpec odd: its settings' SCHEMA is not a valid JSON Schema: properties.a" in report.error


ACME_VERSION = """
from dataclasses import dataclass
from typing import Any, ClassVar
from connector.kit import hookimpl, Carrier, CarrierSettings, CarrierSpec, settings_schema

@dataclass(frozen=True, kw_only=True)
class AcmeSettings(CarrierSettings):
    SCHEMA: ClassVar[dict[str, Any]] = settings_schema(
        "carriers.acme", http=False, required=["{key}"], properties={{"{key}": {{"type": "string"}}}})
    {key}: str

@hookimpl
def mfn_register_carriers(register):
    register(CarrierSpec(code="acme", label="ACME", factory=Carrier, settings=AcmeSettings))
"""


@pytest.mark.parametrize("how", ["env", "yaml"])
def test_plugins_deny_in_the_yaml_turns_off_a_plugin_as_the_variable_does(site, tmp_path, monkeypatch, how):
    """The plugin that keeps a code is denied so that another one's carrier of that code is used:
    the YAML's plugins.deny checked the section against the denied plugin's schema first, and refused
    the file, where MFN_CONNECTOR_DISABLED_PLUGINS took it."""
    from connector.configured import load_config_with_plugins

    install_fake(site, "aa-acme-old", "carrier_acme_old", "acme_old_mod", ACME_VERSION.format(key="old_key"))
    install_fake(site, "zz-acme-new", "carrier_acme_new", "acme_new_mod", ACME_VERSION.format(key="new_key"))
    text = textwrap.dedent("""\
        catalog: catalog.csv
        ship_from: {name: S, line1: 1 Road, city: Shenzhen, country_code: CN, phone: "+86 1"}
        accounts:
          - {name: a, region: na, marketplaces: [US], refresh_token: r, client_id: c, client_secret: s}
        carriers:
          acme: {new_key: x}
        """)
    if how == "env":
        monkeypatch.setenv("MFN_CONNECTOR_DISABLED_PLUGINS", "carrier_acme_old")
    else:
        text += "plugins:\n  deny: [carrier_acme_old]\n"
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    config, host = load_config_with_plugins(str(path))
    assert config.carriers["acme"] == {"new_key": "x"}
    assert host.reports["carrier_acme_old"].status == "blocked" and "acme" in host.carriers()


def test_a_factory_module_that_raises_on_import_is_reported_by_the_plugins_command(site):
    """Only an ImportError was turned into the carrier's report: a client module that raised anything
    else (a RuntimeError, a SyntaxError) stopped `plugins` (and `config check`) with a traceback."""
    install_fake(site, "lazy-plugin", "carrier_lazy", "lazy_hooks_mod", """
        from connector.kit import hookimpl, CarrierSpec
        @hookimpl
        def mfn_register_carriers(register):
            register(CarrierSpec(code="lazy", label="Lazy", factory="lazy_client_mod:LazyCarrier"))
        """)
    (site / "lazy_client_mod.py").write_text("raise RuntimeError('client import bug')\n", encoding="utf-8")
    listed = CliRunner().invoke(cli, ["plugins"])
    assert listed.exit_code == 0, listed.output
    assert "carrier lazy implements: (its factory does not import: carrier lazy: cannot import its factory " \
           "'lazy_client_mod:LazyCarrier': client import bug)" in listed.output
