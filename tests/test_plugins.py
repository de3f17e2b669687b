"""The safe plugin loader: real (fake) distributions on sys.path, found through entry points."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector import hookimpl
from connector.cli import cli
from connector.plugins import PluginError, load_plugins

CARRIER_PLUGIN = """
from connector import hookimpl, CarrierSpec, Carrier

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
    failed = [r for r in host.reports.values() if r.status == "failed"]
    assert len(failed) == 1 and "duplicate carrier code(s) yunexpress" in failed[0].error
    owners = [r.name for r in host.reports.values() if "carrier:yunexpress" in r.registered]
    assert owners == ["carrier_yunexpress"]


def test_unknown_hook_and_bad_arguments_are_rejected(site):
    install_fake(site, "typo-plugin", "typo", "typo_mod", """
        from connector import hookimpl
        @hookimpl
        def mfn_register_carrier(register):
            pass
        """)
    install_fake(site, "args-plugin", "badargs", "badargs_mod", """
        from connector import hookimpl
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


def test_strict_mode_makes_problems_fatal(site, monkeypatch):
    install_fake(site, "broken-plugin", "carrier_broken", "broken_mod", "raise ImportError('nope')\n")
    monkeypatch.setenv("MFN_CONNECTOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="carrier_broken"):
        load_plugins()


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
    host.pm.register(Good(), name="good")
    host.pm.register(Bad(), name="bad")  # registered last: called first, and it raises
    host.call_each("mfn_order_held", order_id="1", reason="r", message="m")
    assert calls == [("1", "r")]


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
