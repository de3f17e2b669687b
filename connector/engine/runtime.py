"""Wiring: everything one daemon process needs, built from a validated configuration."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..amazon.auth import LwaTokenProvider
from ..amazon.client import SpApiClient
from ..amazon.sites import LWA_TOKEN_URL, REGION_HOSTS
from ..carriers import Carrier, CarrierSpec
from ..catalog import Catalog, load_catalog
from ..config import Config, ConfigError, Problem, client_secret_rotated_at, load_config
from ..fx import FxError, RateTable
from ..ledger import Ledger, open_ledger
from ..model import Address
from ..plugins import PluginHost, load_plugins
from ..ratelimit import DEFAULT_QUOTAS, RateLimiter
from ..rules import ChoicePolicy, RulesError, SiteRules, SiteRulesPatch, merge_rules

log = logging.getLogger("connector.engine")


@dataclass
class Counters:
    """What this process did (for the summary): never derived from the ledger."""

    labels_bought: int = 0
    labels_recovered: int = 0  # found at the carrier by reference instead of bought again
    confirmations_sent: int = 0
    verified: int = 0
    held: int = 0
    ingested_new: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


@dataclass
class Runtime:
    config: Config
    host: PluginHost
    ledger: Ledger
    catalog: Catalog
    carrier_specs: dict[str, CarrierSpec]
    carriers: dict[str, Carrier]
    amazon: dict[str, SpApiClient]  # by account name
    ship_from: Address
    labels_dir: Path
    site_rules: dict[str, SiteRules]
    fx: RateTable
    policy: ChoicePolicy
    counters: Counters = field(default_factory=Counters)

    def engine_setting(self, key: str) -> Any:
        return self.config.data["engine"][key]

    def close(self) -> None:
        self.ledger.close()


def load_config_with_plugins(path: str, host: PluginHost | None = None) -> tuple[Config, PluginHost]:
    """Plugins first (their settings schemas validate the carrier sections), then the config."""
    host = host or load_plugins()
    schemas = {code: spec.settings_schema for code, spec in host.carriers().items()}
    config = load_config(path, carrier_schemas=schemas)
    plugin_cfg = config.data["plugins"]
    if plugin_cfg.get("allow") is not None or plugin_cfg.get("deny"):
        host = load_plugins(allow=plugin_cfg.get("allow"), deny=plugin_cfg.get("deny") or ())
        schemas = {code: spec.settings_schema for code, spec in host.carriers().items()}
        config = load_config(path, carrier_schemas=schemas)
    return config, host


def build_runtime(config: Config, host: PluginHost) -> Runtime:
    specs = host.carriers()
    catalog = load_catalog(config.catalog_path)
    ledger = open_ledger(config.ledger_url, key_file=str(config.pii_key_file),
                         create_key=config.data["ledger"]["create_pii_key"])
    ledger.migrate()
    amazon_cfg = config.data["amazon"]
    overrides = {op: (q["rate"], q["burst"]) for op, q in amazon_cfg["quotas"].items()}
    limiter = RateLimiter({**DEFAULT_QUOTAS, **overrides}, pacing=amazon_cfg["pacing"])
    timeout = (amazon_cfg["connect_timeout_seconds"], amazon_cfg["read_timeout_seconds"])
    amazon: dict[str, SpApiClient] = {}
    for account in config.data["accounts"]:
        session = requests.Session()
        tokens = LwaTokenProvider(
            account.get("lwa_token_url") or LWA_TOKEN_URL, account["refresh_token"],
            account["client_id"], account["client_secret"], session=session,
            client_secret_rotated_at=client_secret_rotated_at(account))
        amazon[account["name"]] = SpApiClient(
            account=account["name"], endpoint=account.get("endpoint") or REGION_HOSTS[account["region"]],
            tokens=tokens, limiter=limiter, session=session, timeout=timeout,
            max_attempts=amazon_cfg["max_attempts"], backoff_base=amazon_cfg["backoff_base_seconds"])
    carriers: dict[str, Carrier] = {}
    for code, settings in config.data["carriers"].items():
        spec = specs[code]
        try:
            extra = {"amazon": amazon} if spec.needs_amazon else {}
            carriers[code] = spec.factory(settings, requests.Session(), **extra)
        except Exception as exc:  # noqa: BLE001 - a plugin bug must name the plugin, not crash blind
            problem = Problem(str(config.path), config.line_of("carriers", code), f"carriers.{code}",
                              f"carrier plugin failed to start: {exc}")
            raise ConfigError([problem]) from exc
    site_rules, fx, policy = _rules(config, host)
    labels_dir = config.labels_dir
    labels_dir.mkdir(parents=True, exist_ok=True)
    return Runtime(config=config, host=host, ledger=ledger, catalog=catalog, carrier_specs=specs,
                   carriers=carriers, amazon=amazon, ship_from=Address.from_dict(config.data["ship_from"]),
                   labels_dir=labels_dir, site_rules=site_rules, fx=fx, policy=policy)


def _rules(config: Config, host: PluginHost) -> tuple[dict[str, SiteRules], RateTable, ChoicePolicy]:
    """Site rules (plugins, then their patches, then the site_rules section), fx, selection policy."""
    registered = host.site_rules()
    try:
        rules = merge_rules([r for r in registered if isinstance(r, SiteRules)],
                            [p for p in registered if isinstance(p, SiteRulesPatch)],
                            config.data.get("site_rules"))
        fx = RateTable.from_config(config.data.get("fx"))
        policy = ChoicePolicy.from_config(config.data.get("selection"))
    except (RulesError, FxError) as exc:
        raise ConfigError([Problem(str(config.path), None, "", str(exc))]) from None
    for i, account in enumerate(config.data["accounts"]):
        missing = [s for s in account["marketplaces"] if s not in rules]
        if missing:
            line = config.line_of("accounts", i, "marketplaces")
            raise ConfigError([Problem(str(config.path), line, f"accounts[{i}].marketplaces",
                                       f"no site rules for {', '.join(missing)} (install "
                                       "mfn-marketplace-amazon, or add them under site_rules)")])
    return rules, fx, policy
