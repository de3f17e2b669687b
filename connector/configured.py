"""What most commands build first, without importing the engine (so `orders list` and friends
start fast): the configuration, validated with the carrier plugins' settings schemas, and the
ledger it names, migrated."""
from __future__ import annotations

from .config import Config, ConfigError, Problem, load_config
from .ledger import Ledger, open_ledger
from .plugins import PluginHost, load_plugins


def load_config_with_plugins(path: str, host: PluginHost | None = None) -> tuple[Config, PluginHost]:
    """Plugins first (their settings schemas validate the carrier sections), then the config."""
    host = host or load_plugins()
    try:  # the plugins section first: a plugin it turns off must not judge the carrier sections
        plugins = load_config(path).plugins
    except ConfigError:
        plugins = None  # (the load below says what is wrong, with the carrier sections checked too)
    if plugins is not None and (plugins.allow is not None or plugins.deny):
        host = load_plugins(allow=plugins.allow, deny=plugins.deny)
    config = load_config(path, **_carrier_facts(host))
    _check_carrier_settings(config, host)
    return config, host


def _check_carrier_settings(config: Config, host: PluginHost) -> None:
    """Each carrier section built as the daemon builds it, as the core's sections are: the checks of
    its settings class that a schema cannot express (``__post_init__``) refuse the file now."""
    problems = []
    for code, section in config.carriers.items():
        where = f"carriers.{code}"
        try:
            host.carriers()[code].settings.from_section(section, where=where)
        except Exception as exc:  # noqa: BLE001 - a plugin's check (or bug) names its section
            problems.append(Problem(str(config.path), config.line_of("carriers", code), where,
                                    str(exc).removeprefix(f"{where}: ")))
    if problems:
        raise ConfigError(problems)


def _carrier_facts(host: PluginHost) -> dict[str, dict]:
    """What the loader checks the carrier sections and the routes against."""
    carriers = host.carriers()
    return {"carrier_schemas": {code: spec.settings_schema for code, spec in carriers.items()},
            "carrier_services": {code: {s.code for s in spec.services} for code, spec in carriers.items()}}


def open_configured_ledger(config: Config, *, key_check: bool = True) -> Ledger:
    """``key_check=False``: opened whatever key it was sealed with (``pii adopt-key``)."""
    ledger = open_ledger(config.ledger_url, key_file=str(config.pii_key_file),
                         create_key=config.ledger.create_pii_key, key_check=key_check)
    ledger.migrate()
    return ledger
