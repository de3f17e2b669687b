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
    try:
        config = load_config(path, **_carrier_facts(host))
        plugins = config.plugins
    except ConfigError:
        plugins = _plugins_section(path)
        if not _turns_off(plugins):
            raise
    if _turns_off(plugins):  # a plugin it turns off must not judge the carrier sections
        host = load_plugins(allow=plugins.allow, deny=plugins.deny)
        config = load_config(path, **_carrier_facts(host))  # (read once more only then)
    _check_carrier_settings(config, host)
    return config, host


def _turns_off(plugins) -> bool:
    return plugins is not None and (plugins.allow is not None or bool(plugins.deny))


def _plugins_section(path: str):
    """The file's ``plugins`` section when the rest reads without the carrier plugins' checks
    (None otherwise: the error with them checked is the one to show)."""
    try:
        return load_config(path).plugins
    except ConfigError:
        return None


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
            "carrier_services": {code: {s.code for s in spec.services} for code, spec in carriers.items()},
            "carrier_operations": {op for spec in carriers.values() for op in spec.spapi_quotas}}


def open_configured_ledger(config: Config, *, key_check: bool = True) -> Ledger:
    """Migrated (by ``open_ledger``, before its key check: never again here, each run takes the
    whole ledger's write lock). ``key_check=False``: opened whatever key it was sealed with
    (``pii adopt-key``)."""
    return open_ledger(config.ledger_url, key_file=str(config.pii_key_file),
                       create_key=config.ledger.create_pii_key, key_check=key_check)
