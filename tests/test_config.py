"""Configuration: interpolation, validation messages with file/line/field, no echoed secrets."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
catalog: catalog.csv
ship_from:
  name: Sender
  line1: 1 Road
  city: Shenzhen
  country_code: CN
  phone: "+86 1"
accounts:
  - name: seller-a
    region: {region}
    marketplaces: [US]
    refresh_token: ${{TEST_REFRESH_TOKEN:-Atzr|default}}
    client_id: client
    client_secret: {secret}
routing:
  default: ["yunexpress:AYPZXR"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kw)
    return [str(p) for p in info.value.problems]


def test_valid_config_gets_defaults_and_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_REFRESH_TOKEN", "Atzr|from-env")
    config = load_config(write(tmp_path, MINIMAL.format(region="na", secret="s3cret")))
    account = config.data["accounts"][0]
    assert account["refresh_token"] == "Atzr|from-env"
    assert config.data["engine"]["workers"] == 4
    assert config.data["amazon"]["pacing"] == 1.0
    assert config.catalog_path == (tmp_path / "catalog.csv").resolve()
    assert config.ledger_url == f"sqlite:///{(tmp_path / '.mfn' / 'ledger.db').resolve()}"


def test_default_used_when_variable_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_REFRESH_TOKEN", raising=False)
    config = load_config(write(tmp_path, MINIMAL.format(region="na", secret="s")))
    assert config.data["accounts"][0]["refresh_token"] == "Atzr|default"


def test_plain_scalar_interpolation_resolves_type(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WORKERS", "7")
    text = MINIMAL.format(region="na", secret="s") + "engine:\n  workers: ${TEST_WORKERS}\n"
    assert load_config(write(tmp_path, text)).data["engine"]["workers"] == 7


def test_enum_error_names_file_line_and_path(tmp_path):
    path = write(tmp_path, MINIMAL.format(region="mars", secret="s"))
    assert problems(path) == [f"{path}:10: accounts[0].region: must be one of na, eu, fe"]


def test_missing_variable_is_reported_with_its_line(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = write(tmp_path, MINIMAL.format(region="na", secret="${NOPE_SECRET}"))
    assert f"{path}:14: accounts[0].client_secret: environment variable NOPE_SECRET is not set" \
        in problems(path)


def test_secret_values_never_echoed(tmp_path):
    text = MINIMAL.format(region="na", secret="[not, a, string, TOPSECRET]")
    out = problems(write(tmp_path, text))
    assert out and all("TOPSECRET" not in p for p in out)
    assert any("accounts[0].client_secret: must be a string" in p for p in out)


def test_missing_and_unknown_fields(tmp_path):
    text = MINIMAL.format(region="na", secret="s").replace("  city: Shenzhen\n", "") + "colour: blue\n"
    out = problems(write(tmp_path, text))
    assert any(p.endswith(": colour: unknown field") for p in out)
    assert any(":2: ship_from: missing required field 'city'" in p for p in out)


def test_a_country_written_out_is_refused_at_its_line(tmp_path):
    text = MINIMAL.format(region="na", secret="s").replace("country_code: CN", "country_code: China")
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:6: ship_from.country_code: has the wrong format (expected a "
                              "two-letter ISO 3166 code, e.g. CN)"]


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "catalog: x\naccounts: [\n  - broken: {\n")
    (only,) = problems(path)
    assert only.startswith(f"{path}:") and "YAML syntax error" in only


def test_marketplace_outside_region_and_unknown_carrier(tmp_path):
    text = MINIMAL.format(region="eu", secret="s") + "carriers:\n  acme: {}\n"
    out = problems(write(tmp_path, text), carrier_schemas={"yunexpress": {"type": "object"}})
    assert any("accounts[0].marketplaces[0]: site US is in region na, not eu" in p for p in out)
    unknown = next(p for p in out if "carriers.acme" in p)  # maybe not installed, maybe turned off
    assert "no installed plugin provides carrier 'acme' (installed: yunexpress;" in unknown
    assert "MFN_CONNECTOR_DISABLED_PLUGINS" in unknown


def test_a_route_or_override_to_a_service_the_carrier_does_not_have_is_refused(tmp_path):
    """It was accepted, and every order routed there held no_eligible_service."""
    text = (MINIMAL.format(region="na", secret="s").replace('["yunexpress:AYPZXR"]', '["yunexpress:NOPE"]')
            + "carriers:\n  yunexpress: {}\nselection:\n  overrides:\n"
              "    - {action: force, carrier: yunexpress, service: AYPZXR}\n"
              "    - {action: forbid, carrier: yunexpress, service: ZXR}\n")
    facts = {"carrier_schemas": {"yunexpress": {"type": "object"}},
             "carrier_services": {"yunexpress": {"AYPZXR", "AYPZXU"}}}
    path = write(tmp_path, text)
    assert problems(path, **facts) == [
        f"{path}:16: routing.default[0]: carrier 'yunexpress' has no service 'NOPE' (its services: "
        "AYPZXR, AYPZXU)",
        f"{path}:22: selection.overrides[1].carrier: carrier 'yunexpress' has no service 'ZXR' (its "
        "services: AYPZXR, AYPZXU)"]


def test_carrier_settings_validated_by_plugin_schema(tmp_path):
    text = MINIMAL.format(region="na", secret="s") + "carriers:\n  yunexpress:\n    base_url: 5\n"
    schema = {"type": "object", "required": ["base_url", "api_secret"],
              "properties": {"base_url": {"type": "string"}, "api_secret": {"type": "string"}}}
    out = problems(write(tmp_path, text), carrier_schemas={"yunexpress": schema})
    assert any(":19: carriers.yunexpress.base_url: must be a string" in p for p in out)
    assert any("carriers.yunexpress: missing required field 'api_secret'" in p for p in out)


def test_shipped_configs_are_valid(monkeypatch):
    for var in ("BRAND_A_NA_REFRESH_TOKEN", "BRAND_A_EU_REFRESH_TOKEN", "BRAND_B_FE_REFRESH_TOKEN",
                "LWA_CLIENT_ID", "LWA_CLIENT_SECRET", "YUNEXPRESS_CUSTOMER_CODE",
                "YUNEXPRESS_API_SECRET"):
        monkeypatch.setenv(var, "placeholder")
    for name in ("sandbox.yaml", "production.example.yaml"):
        runner = CliRunner()
        result = runner.invoke(cli, ["config", "check", str(ROOT / "config" / name)])
        if name == "production.example.yaml":  # its catalog lives on the server
            assert "catalog" in result.output and result.exit_code == 1, result.output
        else:
            assert result.exit_code == 0, result.output
            assert "OK" in result.output


def test_config_check_cli_reports_file_line_field(tmp_path):
    path = write(tmp_path, MINIMAL.format(region="moon", secret="s"))
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:10: accounts[0].region: must be one of na, eu, fe" in result.output


def test_a_file_not_in_utf8_names_the_file_and_line(tmp_path):
    """A catalog or configuration saved as GBK (what Excel does on a Chinese Windows) is a clear
    problem naming the line, not a UnicodeDecodeError."""
    path = tmp_path / "c.yaml"
    path.write_bytes(MINIMAL.format(region="na", secret="s").replace("Sender", "深圳发货").encode("gbk"))
    (only,) = problems(path)
    assert only.startswith(f"{path}:3: the configuration is not UTF-8 text") and "save it as UTF-8" in only

    from connector.catalog import load_catalog

    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes("sku,title\nMUG-1,红色杯子\n".encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_catalog(catalog)
    assert str(info.value).startswith(f"{catalog}:2: the catalog is not UTF-8 text")


@pytest.mark.parametrize("raw, line", [
    (MINIMAL.format(region="na", secret="s3cret\x1bTOPSECRET").encode(), 14),  # a pasted escape
    (MINIMAL.format(region="na", secret="'s3cret\x7fTOPSECRET'").encode(), 14),  # quoted, still refused
    (MINIMAL.format(region="na", secret="s").encode("utf-16-le"), 1)])  # UTF-16 without a BOM: NULs
def test_a_character_yaml_does_not_allow_names_the_line_not_a_traceback(tmp_path, raw, line):
    """A control character (an escape pasted with a secret, the NULs of a file saved as UTF-16
    without a BOM) is valid UTF-8 but no YAML: PyYAML's ReaderError ended `config check` and `run`
    in a traceback."""
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    (only,) = problems(path)
    assert only.startswith(f"{path}:{line}: ") and "control character" in only, only
    assert "TOPSECRET" not in only
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1 and f"{path}:{line}: " in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a message, no traceback


def test_config_check_and_every_command_name_a_missing_pii_key(write_config, tmp_path, monkeypatch):
    monkeypatch.delenv("MFN_CONNECTOR_PII_KEY", raising=False)
    path = write_config({"ledger": {"create_pii_key": False, "pii_key_file": str(tmp_path / "absent.key")}})
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and "ledger: PII key file" in checked.output, checked.output
    assert "does not exist" in checked.output
    listed = CliRunner().invoke(cli, ["--config", str(path), "orders", "list"])
    assert listed.exit_code == 1 and "cannot open the ledger: PII key file" in listed.output, listed.output
    assert isinstance(listed.exception, SystemExit)  # a message, no traceback


def test_a_lost_key_is_not_replaced_over_stored_buyer_data(write_config, tmp_path, monkeypatch):
    """create_pii_key: true (the sandbox's) with the key file gone and addresses stored: config
    check says so, and a read-only command no longer leaves a new key behind."""
    from connector.ledger import open_ledger
    from tests.ledger.test_sqlite_ledger import make_order

    monkeypatch.delenv("MFN_CONNECTOR_PII_KEY", raising=False)
    key = tmp_path / "pii.key"
    path = write_config({"ledger": {"create_pii_key": True, "pii_key_file": str(key)}})
    config = load_config(path)
    ledger = open_ledger(config.ledger_url, key_file=str(key), create_key=True)
    ledger.upsert_order(make_order())
    ledger.close()
    key.unlink()
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and "does not exist, but the ledger" in checked.output, checked.output
    listed = CliRunner().invoke(cli, ["--config", str(path), "orders", "list"])
    assert listed.exit_code == 1 and "put that key file back" in listed.output, listed.output
    assert not key.exists()


def test_an_unreachable_postgresql_ledger_is_a_message_without_the_password(write_config):
    path = write_config({"ledger": {"url": "postgresql://mfn:s3cretpw@127.0.0.1:1/ledger"}})
    listed = CliRunner().invoke(cli, ["--config", str(path), "orders", "list"])
    assert listed.exit_code == 1 and "cannot open the ledger: ledger " in listed.output, listed.output
    assert "cannot connect" in listed.output and "s3cretpw" not in listed.output
    assert isinstance(listed.exception, SystemExit)


def test_an_unreadable_postgresql_url_is_a_message_without_the_password(write_config):
    path = write_config({"ledger": {"url": "postgresql://mfn:s3cretpw@[::1/ledger"}})
    listed = CliRunner().invoke(cli, ["--config", str(path), "orders", "list"])
    assert listed.exit_code == 1 and "cannot open the ledger: ledger URL" in listed.output, listed.output
    assert "s3cretpw" not in listed.output and "s3cretpw" not in str(listed.exception)
    assert isinstance(listed.exception, SystemExit)


def test_an_override_names_a_configured_carrier_and_a_known_site(write_config):
    path = write_config({"selection": {"overrides": [
        {"action": "force", "carrier": "nosuchcarrier", "site": "UK"},
        {"action": "forbid", "carrier": "yanwen", "site": "XX"}]}})
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1
    assert "selection.overrides[0].carrier: carrier 'nosuchcarrier' is not configured under carriers" \
        in checked.output, checked.output
    assert "selection.overrides[1].site: unknown Amazon site XX" in checked.output


def test_merge_keys_share_settings_between_accounts(tmp_path):
    """``<<: *anchor`` reads as yaml.safe_load reads it: the second account takes the first's
    credentials and overrides its name and region."""
    text = MINIMAL.format(region="na", secret="s3cret")
    text = text.replace("  - name: seller-a\n", "  - &first\n    name: seller-a\n")
    text = text.replace("routing:", "  - <<: *first\n    name: seller-b\n    region: eu\n"
                                    "    marketplaces: [DE]\nrouting:")
    config = load_config(write(tmp_path, text))
    second = config.data["accounts"][1]
    assert (second["name"], second["region"], second["client_id"]) == ("seller-b", "eu", "client")


TAGGED = "a value starting with ! is read by YAML as a tag"


@pytest.mark.parametrize("value, said", [
    ("!vault s3cret-value", f"accounts[0].client_secret: {TAGGED}"),
    ("!Hq7s3cret-value", f"accounts[0].client_secret: {TAGGED}"),  # an unquoted secret
    ("!!Hq7s3cret-value", f"accounts[0].client_secret: {TAGGED}"),
    ("!!int four", "accounts[0].client_secret: a value tagged !!int cannot be read"),
    ("!!timestamp notadate", "accounts[0].client_secret: a value tagged !!timestamp cannot be read"),
    ("*Hq7s3cret-value", "YAML syntax error: a value starting with * or &"),  # an alias, to YAML
    ("!Hq7!s3cret x", f"YAML syntax error: {TAGGED}")])  # a tag handle
def test_a_value_yaml_cannot_read_is_a_problem_at_its_line_without_its_text(tmp_path, value, said):
    path = write(tmp_path, MINIMAL.format(region="na", secret=value))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:14: {said}"), problem
    for secret in ("s3cret", "vault", "Hq7", "four", "notadate"):
        assert secret not in problem


def _with(extra: str, secret_extra: str = "") -> str:
    """MINIMAL (region na) with lines added under the account and at the end."""
    text = MINIMAL.format(region="na", secret="s3cret")
    if secret_extra:
        text = text.replace("    client_secret: s3cret\n", "    client_secret: s3cret\n" + secret_extra)
    return text + extra


def test_what_run_would_refuse_check_refuses_first_at_its_line(tmp_path):
    """A date with the right shape that is no date, and a discount the rules cannot take, used to
    pass `config check` and then stop `run` without a line (or with a traceback)."""
    path = write(tmp_path, _with(
        "selection:\n"
        "  discounts:\n"
        "    - {carrier: yunexpress, kind: percent, value: five}\n"
        "    - {carrier: yunexpress, kind: percent, value: 5, valid_until: '2026-13-45'}\n",
        secret_extra="    client_secret_rotated_at: '2026-02-30'\n"))
    assert problems(path) == [
        f"{path}:15: accounts[0].client_secret_rotated_at: has the wrong format (expected a real date, "
        "YYYY-MM-DD)",
        f"{path}:20: selection.discounts[0].value: has the wrong format (expected a percentage, e.g. 5 "
        "or 2.5)",
        f"{path}:21: selection.discounts[1].valid_until: has the wrong format (expected a real date, "
        "YYYY-MM-DD)",
    ]
    # the checks that run once the file has the right shape
    path = write(tmp_path, _with(
        "selection:\n"
        "  discounts:\n"
        "    - {carrier: yunexpress, kind: percent, value: '200'}\n"
        "webhooks:\n"
        "  endpoints:\n"
        "    - {name: erp, url: 'https://a.example/hook', secret: whsec_" + "A" * 24 + "}\n"
        "    - {name: erp, url: 'https://b.example/hook', secret: whsec_" + "B" * 24 + "}\n"))
    assert problems(path) == [
        f"{path}:23: webhooks.endpoints[1].name: repeats another endpoint's name",
        f"{path}:19: selection.discounts[0]: discount yunexpress: value is a percentage 0..100, got 200",
    ]


def test_a_labels_dir_that_cannot_be_written_stops_check_and_start_before_any_label(write_config, tmp_path,
                                                                                     monkeypatch):
    """A read-only mount (systemd's ProtectSystem=strict without ReadWritePaths) let the daemon buy
    labels it could not keep, and confirm none of them. Root passes every permission check, so the
    read-only file system is played by the write test itself failing."""
    import errno

    from connector import files

    labels = tmp_path / "labels"
    labels.mkdir()
    path = write_config({"labels_dir": str(labels)})
    real_mkstemp = files.tempfile.mkstemp

    def read_only(*args, **kwargs):
        if kwargs.get("dir") == labels:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("labels_dir:"))
    assert checked.exit_code == 1, checked.output
    assert f"{path}:{line}: labels_dir: cannot write in {labels}: Read-only file system" in checked.output
    started = CliRunner().invoke(cli, ["--config", str(path), "run", "--once"])
    assert started.exit_code == 1, started.output
    assert "cannot start: labels_dir: cannot write in" in started.output
    assert isinstance(started.exception, SystemExit)  # a message, no traceback

    file_in_the_way = tmp_path / "a-file"
    file_in_the_way.write_text("")
    path = write_config({"labels_dir": str(file_in_the_way / "labels")})
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and f"labels_dir: {file_in_the_way} is not a directory" in checked.output


def test_a_state_dir_that_cannot_be_made_stops_check(write_config, tmp_path):
    """A directory not made yet was judged by access() on the nearest parent, which says yes to
    root on a read-only mount or under /proc: 'config check' said OK and 'run' failed later. It
    now makes and removes a directory there."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    path = write_config({"state_dir": "/proc/nope/state"})
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1, checked.output
    assert "state_dir: cannot write in /proc (to make /proc/nope/state)" in checked.output
    from connector.files import unwritable

    assert unwritable(tmp_path / "not" / "made" / "yet", try_write=True) is None
    assert not list(tmp_path.glob(".write-check.*")) and not (tmp_path / "not").exists()  # none left


def test_an_unknown_key_is_reported_at_its_own_line_with_the_key_it_may_be_a_typo_of(tmp_path):
    """`engnie:` at the end of a long file was reported at the file's first line, among the
    top-level keys: the line must be the typo's own, and the nearest known key suggested."""
    text = MINIMAL.format(region="na", secret="s") + "engnie:\n  workers: 2\nlabels_dri: /srv/labels\n"
    path = write(tmp_path, text)
    lines = text.splitlines()
    typo, other = lines.index("engnie:") + 1, lines.index("labels_dri: /srv/labels") + 1
    out = problems(path)
    assert f"{path}:{typo}: engnie: unknown field (did you mean 'engine'?)" in out, out
    assert f"{path}:{other}: labels_dri: unknown field (did you mean 'labels_dir'?)" in out, out


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_config_check_reads_the_ledger_and_changes_nothing(write_config):
    """The ledger is opened as the daemon would open it -- but nothing is created or migrated."""
    path = write_config()
    before = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert before.exit_code == 0, before.output
    assert ("ledger: " in before.output and "not created yet" in before.output
            or "migration(s) to apply at the next start" in before.output), before.output  # PostgreSQL
    assert CliRunner().invoke(cli, ["config", "check", str(path)]).output == before.output  # still
    opened = CliRunner().invoke(cli, ["--config", str(path), "orders", "list"])  # opens and migrates it
    assert opened.exit_code == 0, opened.output
    after = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert after.exit_code == 0 and ", up to date" in after.output, after.output


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_config_check_names_a_key_that_cannot_read_the_stored_addresses(write_config):
    from cryptography.fernet import Fernet

    from connector.configured import open_configured_ledger

    from .ledger.test_sqlite_ledger import make_order

    path = write_config()
    config = load_config(path)
    ledger = open_configured_ledger(config)
    ledger.upsert_order(make_order())
    ledger.close()
    config.pii_key_file.write_bytes(Fernet.generate_key())  # the key file replaced: the data is lost to it
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1, checked.output
    assert "ledger: " in checked.output and "cannot read buyer data already stored" in checked.output


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_ledger_migrate_brings_the_schema_to_this_release(write_config):
    from connector.ledger.migrations import latest_version

    path = write_config()
    migrated = CliRunner().invoke(cli, ["--config", str(path), "ledger", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert f"schema version {latest_version()}, up to date: {latest_version()} migration(s) applied " \
        "(from version 0)" in migrated.output, migrated.output
    again = CliRunner().invoke(cli, ["--config", str(path), "ledger", "migrate"])
    assert again.exit_code == 0, again.output
    assert f"schema version {latest_version()}, up to date: no migration to apply" in again.output, \
        again.output
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 0 and ", up to date" in checked.output, checked.output


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_ledger_migrate_seals_no_key_into_a_new_ledger(write_config):
    """The owner's role may run it with a key file of its own: the workers' key, at their first start,
    is the ledger's (migrating reads no buyer data)."""
    from cryptography.fernet import Fernet

    from connector.configured import open_configured_ledger

    path = write_config()
    config = load_config(path)
    key_file = config.pii_key_file

    def new_key() -> None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(Fernet.generate_key())
        key_file.chmod(0o600)

    new_key()  # the owner's
    migrated = CliRunner().invoke(cli, ["--config", str(path), "ledger", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    new_key()  # the workers'
    open_configured_ledger(config).close()


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_a_configured_ledger_is_migrated_once_at_its_start(write_config, monkeypatch):
    from connector.configured import open_configured_ledger
    from connector.ledger.migrations import latest_version
    from connector.ledger.sql import SqlLedger

    runs: list[int] = []
    migrate = SqlLedger.migrate

    def counted(self, *args, **kw):
        runs.append(migrate(self, *args, **kw))
        return runs[-1]

    monkeypatch.setattr(SqlLedger, "migrate", counted)
    ledger = open_configured_ledger(load_config(write_config()))  # a fresh ledger: all to apply
    ledger.close()
    assert runs == [latest_version()]  # migrated to this code's schema, and by one run alone


@pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)  # both stores
def test_config_check_refuses_a_ledger_newer_than_this_code(write_config):
    from connector.configured import open_configured_ledger

    path = write_config()
    ledger = open_configured_ledger(load_config(path))
    with ledger._write() as conn:
        conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                     (999, "from a newer release", "2030-01-01T00:00:00+00:00"))
    ledger.close()
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and "schema version 999, newer than this" in checked.output, checked.output


def test_config_check_names_an_unreachable_postgresql_ledger_at_its_line(write_config):
    path = write_config({"ledger": {"url": "postgresql://mfn:s3cretpw@127.0.0.1:1/ledger"}})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("ledger:"))
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1, checked.output
    assert f"{path}:{line}: ledger: " in checked.output and "cannot connect" in checked.output
    assert "s3cretpw" not in checked.output and isinstance(checked.exception, SystemExit)


def _line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


FINITE = "must be a finite number, not .inf or .nan"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".Inf", "-.INF", ".NaN"])
@pytest.mark.parametrize("section, key", [
    ("engine", "retry_delay_max_seconds"),  # passed check, then crashed defer() at the first failure
    ("engine", "poll_interval_seconds"),
    ("amazon", "pacing"),  # not a duration: finite all the same
    ("alerts", "vtr_threshold")])
def test_a_number_that_is_not_finite_is_refused_at_its_line(tmp_path, section, key, value):
    text = _with(f"{section}:\n  {key}: {value}\n")
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:{_line_of(text, f'  {key}: {value}')}: {section}.{key}: {FINITE}"]


def test_a_number_that_is_not_finite_is_refused_where_no_schema_types_it(tmp_path):
    """The emulators' options are free-form mappings: an infinity there is refused all the same."""
    text = _with("sandbox:\n  emulators:\n    spapi:\n      search_lag_seconds: .inf\n")
    path = write(tmp_path, text)
    line = _line_of(text, "      search_lag_seconds: .inf")
    assert problems(path) == [f"{path}:{line}: sandbox.emulators.spapi.search_lag_seconds: {FINITE}"]


@pytest.mark.parametrize("key, value, limit", [
    ("engine:\n  poll_interval_seconds", "99999999999999999999999", "315360000"),  # Event.wait overflowed
    ("engine:\n  retry_delay_max_seconds", "1.0e+300", "315360000"),
    ("engine:\n  tracking_number_wait_hours", "87601", "87600"),
    ("amazon:\n  poll_overlap_minutes", "5256001", "5256000"),
    ("ledger:\n  pii_retention_days", "3651", "3650"),  # an integer duration too
    ("tracking:\n  cadence:\n    - until_days", "3651.5\n      every_hours: 1", "3650"),  # in a list
    ("amazon:\n  feeds:\n    poll_seconds", "315360000.5", "315360000")])
def test_a_duration_longer_than_ten_years_is_refused_at_its_line(tmp_path, key, value, limit):
    text = _with(f"{key}: {value}\n")
    path = write(tmp_path, text)
    field = key.replace("\n", "").replace(" ", "").replace(":", ".").replace("-", "")
    field = field.replace("cadence.", "cadence[0].")
    line = _line_of(text, f"{key.splitlines()[-1]}: {value.splitlines()[0]}")
    assert problems(path) == [f"{path}:{line}: {field}: must be <= {limit} (ten years)"]


def test_a_duration_of_ten_years_is_taken(tmp_path):
    text = _with("engine:\n  retry_delay_max_seconds: 315360000\n  tracking_number_wait_hours: 87600\n"
                 "ledger:\n  pii_retention_days: 3650\n")
    config = load_config(write(tmp_path, text))
    assert config.engine.retry_delay_max_seconds == 315360000.0
    assert config.ledger.pii_retention_days == 3650


def test_a_plugins_number_settings_have_the_same_limits(tmp_path):
    """A carrier plugin's section is checked by the same validator as the core's."""
    from connector.kit import settings_schema

    schema = {"yunexpress": settings_schema("carriers.yunexpress", properties={"rate": {"type": "number"}})}
    text = _with("carriers:\n  yunexpress:\n    timeout_seconds: 60\n    connect_timeout_seconds: 1.0e+30\n")
    path = write(tmp_path, text)
    assert problems(path, carrier_schemas=schema) == [
        f"{path}:20: carriers.yunexpress.connect_timeout_seconds: must be <= 315360000 (ten years)"]
    text = _with("carriers:\n  yunexpress:\n    timeout_seconds: .inf\n    rate: -.inf\n")
    path = write(tmp_path, text)
    assert problems(path, carrier_schemas=schema) == [
        f"{path}:20: carriers.yunexpress.rate: {FINITE}",
        f"{path}:19: carriers.yunexpress.timeout_seconds: {FINITE}"]


def test_config_check_refuses_an_infinite_retry_delay(tmp_path):
    text = _with("engine:\n  retry_delay_max_seconds: .inf\n")
    path = write(tmp_path, text)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1 and "OK" not in result.output
    line = _line_of(text, "  retry_delay_max_seconds: .inf")
    assert f"{path}:{line}: engine.retry_delay_max_seconds: {FINITE}" in result.output


def test_a_tracking_pass_is_bounded_in_time(tmp_path):
    """tracking.pass_seconds: how long one tracking pass may poll (engine/track.py); the leader's
    other jobs run after it."""
    assert load_config(write(tmp_path, _with(""))).tracking.pass_seconds == 120
    config = load_config(write(tmp_path, _with("tracking:\n  pass_seconds: 2.5\n")))
    assert config.tracking.pass_seconds == 2.5
    for value in ("0", "-1"):
        text = _with(f"tracking:\n  pass_seconds: {value}\n")
        path = write(tmp_path, text)
        line = _line_of(text, f"  pass_seconds: {value}")
        assert problems(path) == [f"{path}:{line}: tracking.pass_seconds: must be > 0"]


def test_a_substituted_secret_is_kept_whole(tmp_path, monkeypatch):
    # The variable's text is a value, never YAML: " #" starts no comment, ": " makes no mapping
    monkeypatch.setenv("TEST_SECRET", "s3cr #et: x")
    config = load_config(write(tmp_path, MINIMAL.format(region="na", secret="${TEST_SECRET}")))
    assert config.data["accounts"][0]["client_secret"] == "s3cr #et: x"


def test_a_substituted_number_where_a_string_belongs_stays_text(tmp_path, monkeypatch):
    # A numeric account id (Yanwen's user_id, DHL's account numbers) or an all-digit secret
    monkeypatch.setenv("TEST_SECRET", "0123456")
    config = load_config(write(tmp_path, MINIMAL.format(region="na", secret="${TEST_SECRET}")))
    assert config.data["accounts"][0]["client_secret"] == "0123456"


def test_a_substituted_carrier_id_stays_text(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_USER_ID", "100000")
    text = MINIMAL.format(region="na", secret="s") + (
        "carriers:\n  yunexpress:\n    customer_code: ${TEST_USER_ID}\n")
    schema = {"type": "object", "properties": {"customer_code": {"type": "string"}}}
    config = load_config(write(tmp_path, text), carrier_schemas={"yunexpress": schema})
    assert config.data["carriers"]["yunexpress"]["customer_code"] == "100000"


def test_a_ledger_url_of_the_wrong_form_names_both_stores(tmp_path):
    text = MINIMAL.format(region="na", secret="s") + "ledger:\n  url: mysql://mfn@db/ledger\n"
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:18: ledger.url: has the wrong format (expected "
                              "sqlite:///path/to/ledger.db or postgresql://user@host:5432/database)"]


@pytest.mark.parametrize("rate", ["abc", "-1"])
def test_an_fx_rate_that_is_no_rate_is_named_at_its_line(write_config, rate):
    path = write_config({"fx": {"rates": {"EUR": rate}}})
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip().startswith("EUR:"))
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and f"{path}:{line}: fx.rates.EUR: " in checked.output, checked.output


def test_a_feed_report_record_number_of_zero_is_refused(tmp_path):
    """Amazon's processing reports number the whole file's problems record 0: a first data line
    numbered 0 could not be told from them, so the setting starts at 1."""
    text = _with("amazon:\n  feeds:\n    first_record_number: 0\n")
    path = write(tmp_path, text)
    line = _line_of(text, "    first_record_number: 0")
    assert problems(path) == [f"{path}:{line}: amazon.feeds.first_record_number: must be >= 1"]


@pytest.mark.parametrize("extra, field", [
    ("ioss:\n  cap: {amount: '1,50', currency: EUR}\n", "ioss.cap"),
    ("site_rules:\n  US:\n    tracked_below: {amount: NaN, currency: USD}\n", "site_rules.US.tracked_below"),
    ("selection:\n  buy_shipping_premium: {amount: '-1', currency: USD}\n", "selection.buy_shipping_premium"),
])
def test_a_money_amount_that_is_no_amount_is_refused_at_its_line(tmp_path, extra, field):
    """The mapping form of a money value took any text as its amount: '1,50' stopped `config check`
    with a traceback (ioss.cap) or without a line (site_rules), and NaN passed, to fail every order's
    comparison with the threshold."""
    text = _with(extra)
    path = write(tmp_path, text)
    line = _line_of(text, extra.rstrip("\n").splitlines()[-1])
    (only,) = problems(path)
    assert only.startswith(f"{path}:{line}: {field}: "), only


def test_gb_for_the_site_uk_in_routing_is_refused_at_its_line(tmp_path):
    """The site table reads GB as UK, so 'config check' took routing.sites.GB and a warehouse rule
    for site GB, but the engine looks both up under the order's site, UK: neither ever applied,
    and UK orders were quoted by every carrier from the default warehouse."""
    text = _with("  sites:\n    GB: ['yunexpress:AYPZXR']\n"
                 "warehouse_routing:\n  - {warehouse: main, sites: [GB]}\n")
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:{_line_of(text, '    GB: [' + repr('yunexpress:AYPZXR') + ']')}: routing.sites.GB: "
        "the site is written UK here, not GB",
        f"{path}:{_line_of(text, '  - {warehouse: main, sites: [GB]}')}: warehouse_routing[0].sites[0]: "
        "the site is written UK here, not GB",
    ]


def test_a_new_site_without_carrier_codes_is_named_at_its_line(write_config):
    """ZA is in the site table without rules: a site_rules block adds them, and one without the
    carrier list was refused without a line."""
    path = write_config({"site_rules": {"ZA": {"buy_shipping": False, "tracked_below": "5 USD"}}})
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == "ZA:")
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1, checked.output
    assert f"{path}:{line}: site_rules.ZA: a new site needs carrier_codes" in checked.output, checked.output


def test_a_mapping_with_merge_keys_used_again_through_an_alias_repeats_no_key(tmp_path):
    """PyYAML merges in place: the mapping met again through its alias had its merged keys counted
    as written, and a key it overrides was said to appear twice (at a line that does not have it)."""
    text = MINIMAL.format(region="na", secret="s") + (
        "sandbox:\n  emulators:\n    spapi: &spapi\n      <<: {search_lag_seconds: 1}\n"
        "      search_lag_seconds: 2\n    spapi_copy: *spapi\n")
    config = load_config(write(tmp_path, text))
    assert config.data["sandbox"]["emulators"]["spapi_copy"] == {"search_lag_seconds": 2}
    # the same, for a mapping first merged into another (where it is defined), then used itself
    text = MINIMAL.format(region="na", secret="s") + (
        "sandbox:\n  emulators:\n"
        "    spapi: {<<: &spapi {<<: {search_lag_seconds: 1}, search_lag_seconds: 2}}\n"
        "    spapi_copy: *spapi\n")
    config = load_config(write(tmp_path, text))
    assert config.data["sandbox"]["emulators"]["spapi_copy"] == {"search_lag_seconds": 2}


def test_a_carrier_section_its_settings_class_refuses_is_refused_at_load_with_its_line(tmp_path):
    """The core's typed sections are built when the file is read, so their own checks (beyond the
    schema) refuse it then; a plugin's were built only by `run`: `config check` said OK to a
    tracking_number_pattern that is no regular expression, and the daemon then refused to start."""
    from connector.configured import load_config_with_plugins

    text = MINIMAL.format(region="na", secret="s") + (
        "carriers:\n  yunexpress:\n    base_url: http://127.0.0.1:8701\n    customer_code: C1\n"
        "    api_secret: s3cret\n    tracking_number_pattern: '^[A-Z'\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config_with_plugins(str(path))
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:18: carriers.yunexpress: tracking_number_pattern is not a regular "
                              "expression"), problem
    assert "s3cret" not in problem
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and "tracking_number_pattern is not a regular" in checked.output


def test_no_secret_in_the_repr_of_the_configuration_or_its_sections(tmp_path):
    """Secrets are Secret ('***' in a repr), but Config's repr showed its raw ``data`` (every
    secret, as written) and LedgerSettings' showed a PostgreSQL URL's password: a repr of the
    configuration, the runtime that holds it, or the ledger section, in a log line or a traceback
    with its locals, gave them away."""
    text = MINIMAL.format(region="na", secret="TOPSECRET") + (
        "ledger:\n  url: postgresql://mfn:PGPASSWORD@db.internal:5432/mfn\n"
        "webhooks:\n  endpoints:\n    - {name: erp, url: 'https://a.example/hook', secret: whsec_"
        + "W" * 24 + "}\n")
    config = load_config(write(tmp_path, text))
    assert config.ledger_url.endswith("mfn:PGPASSWORD@db.internal:5432/mfn")  # (still the URL to use)
    for shown in (repr(config), repr(config.ledger), repr(config.accounts), repr(config.webhooks)):
        for secret in ("TOPSECRET", "PGPASSWORD", "Atzr|", "W" * 24):
            assert secret not in shown, shown


@pytest.mark.parametrize("written", [
    "${LWA_CLIENT_SECRET }",  # a space
    "${LWA-CLIENT-SECRET}",  # dashes
    "${LWA_CLIENT_SECRET:default}",  # the default's ':-' written ':'
    "${LWA_CLIENT_SECRET",  # not closed
    "'${1PASSWORD_ITEM}'",  # a name starting with a digit
    "$LWA_CLIENT_SECRET",  # no braces, as a shell takes it
    "'$LWA_CLIENT_SECRET'"])
def test_a_mistyped_variable_reference_is_refused_not_taken_as_the_secret(tmp_path, monkeypatch, written):
    """Only ${NAME} and ${NAME:-default} were replaced; a reference mistyped was kept as written,
    so `config check` said OK and the daemon sent '${LWA_CLIENT_SECRET }' to Amazon as the secret."""
    monkeypatch.setenv("LWA_CLIENT_SECRET", "TOPSECRET")
    path = write(tmp_path, MINIMAL.format(region="na", secret=written))
    (only,) = problems(path)
    assert only.startswith(f"{path}:14: accounts[0].client_secret: ") and "${NAME}" in only, only
    assert "TOPSECRET" not in only and "LWA" not in only and "PASSWORD" not in only


def test_a_secret_that_really_holds_a_dollar_brace_comes_from_a_variable_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("LWA_CLIENT_SECRET", "ab${cd}ef")
    path = write(tmp_path, MINIMAL.format(region="na", secret="${LWA_CLIENT_SECRET}"))
    assert str(load_config(path).accounts[0].client_secret) == "ab${cd}ef"


def test_a_secret_glued_to_its_field_name_is_not_echoed_and_is_reported_at_its_line(tmp_path):
    """`client_secret:TOPSECRET` in a flow mapping (no space after the colon) is a key to YAML,
    and the unknown-field message quoted it, secret and all."""
    text = MINIMAL.format(region="na", secret="s").replace(
        "routing:", "  - {name: b, region: na, marketplaces: [CA],\n"
                    "     refresh_token: r, client_id: c, client_secret:TOPSECRET}\nrouting:")
    path = write(tmp_path, text)
    out = problems(path)
    assert all("TOPSECRET" not in p for p in out), out
    assert f"{path}:15: accounts[1]: missing required field 'client_secret'" in out, out
    [glued] = [p for p in out if "unknown field" in p]
    assert glued.startswith(f"{path}:16: accounts[1]") and "did you mean 'client_secret'?" in glued, out


def test_a_variable_set_but_empty_is_a_problem_or_takes_its_default(tmp_path, monkeypatch):
    """`${VAR}` of a variable set to "" (a line `MFN_LEDGER_URL=` left in the EnvironmentFile) was
    taken as "": `ledger.url` then silently meant a new, empty SQLite ledger beside the file, and
    `state_dir` the configuration's own directory. `${VAR:-default}`, as in a shell, now takes the
    default for an empty variable too; `${VAR}` of an empty one is refused at its line."""
    monkeypatch.setenv("TEST_LEDGER_URL", "")
    monkeypatch.setenv("TEST_STATE_DIR", "")
    text = MINIMAL.format(region="na", secret="s") + "state_dir: ${TEST_STATE_DIR:-state}\n"
    config = load_config(write(tmp_path, text))
    assert config.state_dir == (tmp_path / "state").resolve()
    path = write(tmp_path, text + "ledger:\n  url: ${TEST_LEDGER_URL}\n")
    assert problems(path) == [f"{path}:19: ledger.url: environment variable TEST_LEDGER_URL is empty "
                              "(write ${TEST_LEDGER_URL:-} where empty is meant)"]


def test_an_alias_inside_its_own_anchor_is_a_problem_not_a_recursion_error(tmp_path):
    """`sandbox: &s {emulators: *s}` is a mapping that holds itself: building it recursed until
    Python's RecursionError, a traceback from `config check`."""
    text = MINIMAL.format(region="na", secret="s") + "sandbox: &s\n  emulators:\n    spapi: *s\n"
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:19: sandbox.emulators.spapi: holds itself (an alias inside its "
                              "own anchor)"]
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output


def test_a_webhook_url_that_carries_its_token_is_not_in_a_repr(tmp_path):
    """Slack's, Discord's and Teams' incoming-webhook URLs carry their secret in the path: the API
    and the status page show them cut (shown_webhook_url), but the endpoint's repr showed them whole."""
    text = MINIMAL.format(region="na", secret="s") + (
        "webhooks:\n  endpoints:\n    - {name: slack, url: 'https://hooks.slack.com/services/T0/B0/TOKENPART',"
        " secret: whsec_" + "W" * 24 + "}\n")
    config = load_config(write(tmp_path, text))
    assert config.webhooks.endpoints[0].url.endswith("/TOKENPART")  # (still the URL to post to)
    assert "TOKENPART" not in repr(config.webhooks)


def test_a_quote_never_closed_is_reported_where_it_opens_not_at_the_end_of_the_file(tmp_path):
    """A quoted value may span lines, so YAML reads an unclosed one to the end of the file and said
    "found unexpected end of stream" at the file's last line, far from the quote."""
    text = MINIMAL.format(region="na", secret="'TOPSECRET") + "engine:\n  workers: 2\n"
    path = write(tmp_path, text)
    (only,) = problems(path)
    assert only.startswith(f"{path}:14: YAML syntax error: ") and "quote" in only, only
    assert "TOPSECRET" not in only


def test_an_unquoted_date_that_does_not_exist_is_said_to_be_no_date_not_a_tag(tmp_path):
    """YAML reads an unquoted 2026-02-30 as a timestamp it cannot make; the message said "a value
    tagged !!timestamp cannot be read: write it without the tag", of a value written with no tag."""
    path = write(tmp_path, _with("", secret_extra="    client_secret_rotated_at: 2026-02-30\n"))
    (only,) = problems(path)
    assert only.startswith(f"{path}:15: accounts[0].client_secret_rotated_at: is not a real date"), only
    assert "tag" not in only


def test_a_client_secret_rotated_in_the_future_is_refused_at_its_line(tmp_path):
    """A year typo (2062 for 2026) put the rotation warning decades past the secret's real expiry.
    Tomorrow is taken: the host's clock, or the operator's, may be a day ahead."""
    from datetime import datetime, timedelta, timezone

    today = datetime.now(timezone.utc).date()
    for days in (0, 1):
        day = today + timedelta(days=days)
        path = write(tmp_path, _with("", secret_extra=f"    client_secret_rotated_at: '{day}'\n"))
        assert load_config(path).accounts[0].rotated_at == day
    late = today + timedelta(days=2)
    path = write(tmp_path, _with("", secret_extra=f"    client_secret_rotated_at: '{late}'\n"))
    assert problems(path) == [
        f"{path}:15: accounts[0].client_secret_rotated_at: {late} is in the future: the day the secret "
        "was made or rotated (a wrong year would put the rotation warning past its real deadline)"]


def test_a_quota_for_an_operation_nothing_calls_is_refused_at_its_line(tmp_path):
    """``amazon.quotas`` took any key: a misspelled operation (``confirmShipments``) set nothing
    while the operator believed the quota set. The known operations are the core's and those the
    installed carrier plugins declare (Buy Shipping's getRates)."""
    from connector.configured import load_config_with_plugins

    text = MINIMAL.format(region="na", secret="s") + (
        "amazon:\n  quotas:\n"
        "    confirmShipments: {rate: 1, burst: 5}\n"
        "    getRates: {rate: 1, burst: 5}\n"
        "    createFeed: {rate: 0.01, burst: 15}\n"
        "    searchorders: {rate: 0.01, burst: 5}\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config_with_plugins(str(path))
    out = [str(p) for p in info.value.problems if "amazon." in str(p)]
    assert len(out) == 2, out
    assert out[0].startswith(f"{path}:19: amazon.quotas.confirmShipments: sets nothing: no SP-API operation "
                             "'confirmShipments' is called (did you mean 'confirmShipment'? known: "), out
    assert out[1].startswith(f"{path}:22: amazon.quotas.searchorders: sets nothing: no SP-API operation "
                             "'searchorders' is called (did you mean 'searchOrders'?"), out
    assert "getRates" in out[0] and "cancelFeed" in out[0] and "getOrder" in out[0]
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 1 and "amazon.quotas.confirmShipments" in checked.output


def test_a_whole_number_written_with_a_point_is_refused_at_its_line_not_read_as_less(tmp_path):
    """YAML reads ``max_rows: 5.000`` as 5.0, which JSON Schema counts an integer: 5 rows a feed,
    where a seller whose locale separates thousands with '.' meant 5000 (a rate card's
    ``max_weight_g: 2.000`` was 2 g the same way). A whole-number field takes a whole number only."""
    text = MINIMAL.format(region="na", secret="s") + "amazon:\n  feeds:\n    max_rows: 5.000\n"
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:19: amazon.feeds.max_rows: must be a whole number written without a point (is 1.000 "
        "1, or 1000 with a point between thousands?)"]
    path.write_text(text.replace("5.000", "5000"), encoding="utf-8")
    assert load_config(path).amazon.feeds.max_rows == 5000


def test_an_empty_routing_list_for_a_site_is_refused_at_its_line_not_read_as_the_default(tmp_path):
    """``UK: []`` could mean "ship nothing for UK" or be a slip; taken as the default's carriers it
    would ship what the operator meant to stop. It is refused (the README says so)."""
    path = write(tmp_path, MINIMAL.format(region="na", secret="s") + "  sites:\n    US: []\n")
    assert problems(path) == [f"{path}:18: routing.sites.US: must have at least 1 item(s)"]


@pytest.mark.parametrize("levels", [70, 600])
def test_a_value_nested_too_deeply_is_a_problem_at_its_line_not_a_recursion_error(tmp_path, levels):
    """PyYAML composes a file recursively, and the loader builds it so: a few hundred nested
    brackets overflowed Python's stack, a RecursionError traceback from `config check`."""
    text = MINIMAL.format(region="na", secret="s") + (
        "sandbox:\n  emulators:\n    spapi:\n      deep: " + "[" * levels + "]" * levels + "\n")
    path = write(tmp_path, text)
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:20: ") and "more than 64 levels deep" in problem, problem
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output


def test_aliases_that_nest_too_deeply_are_a_problem_not_a_recursion_error(tmp_path):
    """Each anchor one level inside the one before: every line is short, but built out the value
    nests as deep as there are anchors."""
    chain = "".join(f"  a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 600))
    text = MINIMAL.format(region="na", secret="s") + (
        "x-anchors:\n  a0: &a0 []\n" + chain + "sandbox:\n  emulators:\n    spapi: {deep: *a599}\n")
    path = write(tmp_path, text)
    found = problems(path)
    assert any("more than 64 levels deep" in p for p in found), found


@pytest.mark.parametrize("second", [3, 2, 2.5])
def test_a_tracking_cadence_step_that_could_never_apply_is_refused_at_its_line(tmp_path, second):
    """Steps apply by age, the first whose until_days the parcel is younger than: a step after
    one of more (or as many) days was never used -- an hourly first day appended at the end of
    the list changed nothing, silently."""
    text = _with("tracking:\n  cadence:\n    - {until_days: 3, every_hours: 6}\n"
                 "    - {until_days: 1, every_hours: 1}\n"
                 f"    - {{until_days: {second}, every_hours: 2}}\n")
    path = write(tmp_path, text)
    lines = [_line_of(text, "    - {until_days: 1, every_hours: 1}"),
             _line_of(text, f"    - {{until_days: {second}, every_hours: 2}}")]
    assert problems(path) == [f"{path}:{line}: tracking.cadence[{i}].until_days: must be more than an "
                              "earlier step's 3 days (steps go youngest first: this one would never apply)"
                              for i, line in zip((1, 2), lines, strict=True)]


def test_a_webhook_subscription_no_event_matches_is_refused_at_its_line(tmp_path):
    """An endpoint subscribed to a misspelt type (order.shiped) or glob (packages.*) was accepted
    and then sent nothing, with nothing to say why."""
    events = "      events: [order.held, packages.*, '*_lost', alert.some_plugin_kind, order.shiped]"
    text = _with("webhooks:\n  endpoints:\n    - name: erp\n      url: https://erp.example.com/hooks\n"
                 "      secret: whsec_" + "W" * 24 + "\n" + events + "\n")
    path = write(tmp_path, text)
    line = _line_of(text, events)
    said = "matches no event type (known: order.received, order.held"
    found = problems(path)
    assert [p.split(": ", 2)[:2] for p in found] == [[f"{path}:{line}", f"webhooks.endpoints[0].events[{j}]"]
                                                     for j in (1, 4)]
    assert all(said in p for p in found), found


def test_aliases_repeated_inside_aliases_are_a_problem_not_a_hang(tmp_path, monkeypatch):
    """Eight short lines, each an anchor repeating the one before ten times, stand for 10^8 values:
    `config check` and the daemon's start built them all, for minutes, until memory ran out."""
    anchors = "  x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
        f"  x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10)}]\n" for n in range(1, 8))
    text = MINIMAL.format(region="na", secret="s") + "sandbox:\n  emulators:\n" + anchors.replace(
        "  x", "    x") + "    spapi: {lol: *x7}\n"
    path = write(tmp_path, text)
    monkeypatch.setattr("connector.config.MAX_VALUES", 1000)  # (the real limit takes seconds to reach)
    found = problems(path)
    assert len(found) == 1 and "more than 1000 values" in found[0], found


@pytest.mark.parametrize(("faults", "field", "said"), [
    ("{error_5xx: 0.1, eror_timeout: 0.2}", "sandbox.faults.eror_timeout", "unknown field"),
    ("{reset: 2}", "sandbox.faults.reset", "must be <= 1"),
    ("-0.5", "sandbox.faults", "must be >= 0"),
])
def test_a_sandbox_fault_rate_the_emulators_refuse_is_refused_at_its_line(tmp_path, faults, field, said):
    """sandbox.faults took any number or mapping: a misspelt kind passed config check, then
    `sandbox serve` and `demo` ended in a ValueError traceback from the emulators."""
    text = _with(f"sandbox:\n  faults: {faults}\n")
    path = write(tmp_path, text)
    found = problems(path)
    assert [p.split(": ", 2)[1] for p in found] == [field], found
    assert found[0].startswith(f"{path}:{_line_of(text, f'  faults: {faults}')}: ") and said in found[0]
    assert load_config(write(tmp_path, _with("sandbox:\n  faults: {timeout: 0.5, malformed: 0.1}\n")))


def test_the_configurations_fault_kinds_are_the_emulators():
    from connector.config import SANDBOX_FAULT_KINDS
    from connector.sandbox.framework import FAULT_KINDS

    assert SANDBOX_FAULT_KINDS == FAULT_KINDS


@pytest.mark.parametrize(("written", "read_as"), [
    ("  postal_code: 518057\n", "a number"),  # digits unquoted: a number
    ("  postal_code: 0755\n", "a number"),  # ... and 0755 even an octal one, 493
    ("  postal_code: NO\n", "true or false"),  # NO, yes, on, off: YAML 1.1's booleans
])
def test_text_yaml_reads_as_another_type_where_a_string_belongs_is_said_to_need_quotes(tmp_path, written,
                                                                                     read_as):
    """`postal_code: 518057` was refused with "must be a string", though a string is what the
    operator wrote: YAML read it as a number, and nothing said so, or to quote it."""
    phone = '  phone: "+86 1"\n'
    text = MINIMAL.format(region="na", secret="s").replace(phone, phone + written)
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:8: ship_from.postal_code: must be a string (YAML reads the value, "
                              f"unquoted, as {read_as}: put it in quotes)"]


def test_gb_for_the_site_uk_in_an_accounts_marketplaces_is_refused_at_its_line(tmp_path):
    """An account selling on [GB] passed the loader (the site table reads GB as UK), then `config
    check` and the daemon refused it with "no site rules for GB (install mfn-marketplace-amazon...)",
    though that plugin was installed: the site's rules are under UK."""
    text = MINIMAL.format(region="eu", secret="s").replace("[US]", "[DE, GB]")
    path = write(tmp_path, text)
    assert problems(path) == [f"{path}:11: accounts[0].marketplaces[1]: the site is written UK here, not GB"]
