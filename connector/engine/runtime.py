"""Wiring: everything one daemon process needs, built from a validated configuration."""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .. import httpsession
from ..amazon.auth import LwaTokenProvider
from ..amazon.client import SpApiClient
from ..amazon.server_clock import ServerClock
from ..amazon.sites import LWA_TOKEN_URL, REGION_HOSTS, SiteTable
from ..catalog import LayeredCatalog, load_catalog
from ..config import Config, ConfigError, EngineSettings, Problem, Warehouse
from ..configured import open_configured_ledger
from ..files import unwritable
from ..fx import FxError, RateTable
from ..kit.carrier import Carrier, CarrierContext, CarrierSpec
from ..ledger import Ledger
from ..model import Address
from ..plugins import PluginHost
from ..ratelimit import DEFAULT_QUOTAS, RateLimiter
from ..rules import ChoicePolicy, RulesError, SiteRules, SiteRulesPatch, amazon_carrier_code, merge_rules
from .alerts import AlertKind, KnownOpen
from .logins import AmazonLogins
from .workers import Membership

log = logging.getLogger("connector.engine")

LOCK_RETRY_SECONDS = 0.05  # how often a wait for a key another process holds looks again


@dataclass
class Counters:
    """What this process did (for the summary): never derived from the ledger."""

    labels_bought: int = 0
    labels_recovered: int = 0  # found at the carrier by reference instead of bought again
    confirmations_sent: int = 0
    verified: int = 0
    held: int = 0
    ingested_new: int = 0
    labels_voided: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


@dataclass
class Runtime:
    config: Config
    host: PluginHost
    ledger: Ledger
    catalog: LayeredCatalog
    carrier_specs: dict[str, CarrierSpec]
    carriers: dict[str, Carrier]
    amazon: dict[str, SpApiClient]  # by account name
    site_rules: dict[str, SiteRules]
    fx: RateTable
    policy: ChoicePolicy
    counters: Counters = field(default_factory=Counters)
    webhook_session: requests.Session = field(default_factory=httpsession.Session, repr=False)
    hooks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one dispatcher at a time
    _locks: dict[str, list] = field(default_factory=dict, repr=False)  # key -> [lock, users]: holding()
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    verify_sweeps: dict[str, Any] = field(default_factory=dict, repr=False)  # account -> verify.SweepMark
    membership: Membership | None = field(default=None, repr=False)  # shared ledger: accounts leased here
    # Set by a stop request (watch_stop): every wait of this process ends on it, an API request's too
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    # False for a command beside the daemon (orders void, the API without its engine): a step it
    # drives leaves the hooks to the daemon's leader, one dispatcher for all (engine/hooks.py)
    may_lead: bool = field(default=True, repr=False)
    # Per account, the confirmations in flight at once (engine/confirm.py); None: unrationed (passes)
    confirm_lanes: dict[str, Any] | None = field(default=None, repr=False)
    # Carriers whose credentials were refused, with an open alert (engine/shopping.py)
    credential_alerts: KnownOpen = field(
        default_factory=lambda: KnownOpen(AlertKind.CARRIER_CREDENTIALS_REFUSED), repr=False)
    # Seller accounts whose Amazon login (LWA) was refused, with an open alert (engine/logins.py)
    amazon_login_alerts: KnownOpen = field(
        default_factory=lambda: KnownOpen(AlertKind.AMAZON_CREDENTIALS_REFUSED), repr=False)
    # The open carrier_filed_differently alerts this process knows of (engine/verify.py)
    filing_alerts: KnownOpen = field(
        default_factory=lambda: KnownOpen(AlertKind.CARRIER_FILED_DIFFERENTLY), repr=False)
    # The host clock's lead over Amazon's, from the answers' Date (the purge waits on it)
    amazon_clock: ServerClock = field(default_factory=ServerClock, repr=False)
    _quote_pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict, repr=False)
    _quote_pools_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        logins = AmazonLogins(self)  # a login refused raises its account's alert, a call that works clears it
        for client in self.amazon.values():
            if isinstance(client, SpApiClient):
                client.login_watch = logins
                client.before_waiting = self.ledger.release_connection  # a connection per thread at work
                client.server_clock = self.amazon_clock
                if isinstance(client.tokens, LwaTokenProvider):  # a refused login shows Amazon's time too
                    client.tokens.server_clock = self.amazon_clock

    def amazon_carrier_code(self, carrier: str, site: str) -> str | None:
        """The carrier code Amazon is sent for ``carrier``'s labels on ``site``
        (:func:`connector.rules.amazon_carrier_code`); None when the carrier is not configured
        or has no code there."""
        spec = self.carrier_specs.get(carrier)
        return None if spec is None else amazon_carrier_code(spec, self.site_rules.get(site), site)

    def listed_carrier_code(self, carrier: str, site: str) -> str | None:
        """:meth:`amazon_carrier_code`, but None also when the site's carrier list does not have
        it (in any spelling): what may be sent to confirm a label. The list may have changed
        since the label was bought, and a code Amazon does not list is filed as "Other"."""
        code = self.amazon_carrier_code(carrier, site)
        rules = self.site_rules.get(site)
        return None if code is None or (rules is not None and code not in rules.carrier_codes) else code

    def driving(self, order_id: str, wait: float = 0.0) -> AbstractContextManager[bool]:
        """Hold the lock one order is driven under (:meth:`holding`): the loop's workers and the
        HTTP API's requests never step the same order at once (a second look at a claimed label
        could ask the carrier while the first call is still in flight)."""
        return self.holding(f"order:{order_id}", wait)

    @contextmanager
    def holding(self, key: str, wait: float = 0.0) -> Iterator[bool]:
        """Hold ``key`` (an order, a feed) against this process's other threads and every other
        process on the ledger (the ledger's own lock): yields False when someone else kept it for
        ``wait`` seconds. A lock nobody holds or waits for is forgotten, so a long-running daemon
        keeps one per key in use, not one per key ever seen."""
        deadline = time.monotonic() + wait
        with self._locks_guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        lock = entry[0]
        acquired = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        try:
            if acquired:  # and no other process holds it
                with self._ledger_lock(key, deadline) as ours:
                    yield ours
            else:
                yield False
        finally:
            if acquired:
                lock.release()
            with self._locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    @contextmanager
    def _ledger_lock(self, key: str, deadline: float) -> Iterator[bool]:
        """The ledger's lock on ``key`` (it never waits), tried again until ``deadline``."""
        while True:
            stack = ExitStack()
            ours = stack.enter_context(self.ledger.exclusive(key))
            if ours or time.monotonic() >= deadline:
                break
            stack.close()
            time.sleep(LOCK_RETRY_SECONDS)
        with stack:
            yield ours

    def quote_pool(self, carrier: str) -> ThreadPoolExecutor:
        """The threads one carrier's quotes run on, kept for the process: a thread started per
        quote cost ~0.2 ms of CPU per order. One pool per carrier, as large as the order workers,
        so a carrier that hangs holds only its own threads, never another carrier's quotes."""
        with self._quote_pools_guard:
            if self._closed:  # a pool made now would outlive close(): nothing would ever shut it down
                raise RuntimeError(f"the runtime is closed: no quote from {carrier}")
            pool = self._quote_pools.get(carrier)
            if pool is None:
                pool = self._quote_pools[carrier] = ThreadPoolExecutor(
                    max_workers=max(1, self.engine.workers), thread_name_prefix=f"quote-{carrier}")
            return pool

    def hand_over_quotas(self, gained: set[str], lost: set[str], stale: set[str]) -> None:
        """Accounts moving between workers take their quota buckets along through the ledger: a
        lost account's buckets are saved now, a gained one's read afresh at their next use. A
        stale one's (lost after its lease ran out: another worker may have spent its quota since)
        are forgotten unsaved."""
        for client in self.amazon.values():
            if client.account in lost:
                client.limiter.save(client.account)
            if client.account in gained or client.account in stale:
                client.limiter.reload(client.account)

    def save_quotas(self) -> None:
        """Quota changes left unsaved since a save ``save_every`` old, of the accounts this daemon
        acts for (one whose lease ran out may have been spent by another worker since)."""
        for limiter in {id(c.limiter): c.limiter for c in self.amazon.values()}.values():
            limiter.save_due(self.acts_for)

    def leads(self) -> bool:
        """Whether this daemon runs the jobs done once for all workers (tracking, alerts, purge,
        hooks, webhooks): always, unless it shares a PostgreSQL ledger and another worker leads,
        or it is a command's runtime beside the daemon (``may_lead`` False)."""
        return self.may_lead and (self.membership is None or self.membership.leads)

    def acts_for(self, account: str) -> bool:
        """Whether this daemon polls and drives ``account``'s orders now (workers/leases)."""
        return self.membership is None or self.membership.owns(account)

    @property
    def engine(self) -> EngineSettings:
        return self.config.engine

    @property
    def sites(self) -> SiteTable:
        return self.config.sites

    @property
    def ship_from(self) -> Address:
        """The default warehouse's address; an order ships from its own warehouse
        (``warehouses.choose_warehouse``, stored in its package's plan)."""
        return self.config.ship_from

    @property
    def warehouses(self) -> tuple[Warehouse, ...]:
        """Every warehouse under ``ship_from``, the default first."""
        return self.config.warehouses

    @property
    def labels_dir(self) -> Path:
        return self.config.labels_dir

    def watch_stop(self, stop: threading.Event) -> None:
        """Every SP-API quota wait, retry back-off and LWA retry ends when ``stop`` is set, and an
        API request waiting for a label (engine/submit.py) answers."""
        self.stopping = stop
        for client in self.amazon.values():
            client.limiter.use_stop(stop)
            client.tokens.stop = stop

    def close(self) -> None:
        with self._quote_pools_guard:  # as quote_pool() fills it from the order threads
            pools, self._quote_pools, self._closed = list(self._quote_pools.values()), {}, True
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)  # a hung quote must not hold the exit
        for client in self.amazon.values():
            if not self.acts_for(client.account):  # its lease ran out: another worker may have spent
                client.limiter.reload(client.account)  # its quota since, so nothing of it is saved
        for limiter in {id(c.limiter): c.limiter for c in self.amazon.values()}.values():
            limiter.save()  # quota state for the next start, or the next owner: before the hand-back
        if self.membership is not None:
            self.membership.stop()  # hand the account leases back to the other workers
        self.ledger.close()


def build_runtime(config: Config, host: PluginHost, *, loopback_only: bool = False) -> Runtime:
    """The daemon's parts, from the configuration. ``loopback_only``: a sandbox run (demo,
    simulation), whose HTTP sessions refuse any host off this machine (connector/sandbox/loopback.py)."""
    specs = host.carriers()

    def session() -> httpsession.Session:
        return httpsession.Session(loopback_only=loopback_only)

    catalog = load_catalog(config.catalog_path)
    site_rules, fx, policy = configured_rules(config, host)
    amazon = _amazon_clients(config, session, specs)
    carriers: dict[str, Carrier] = {}
    for code, section in config.carriers.items():
        context = CarrierContext(http=session(), amazon=amazon)
        try:
            carriers[code] = specs[code].build(section, context)
        except Exception as exc:  # noqa: BLE001 - a plugin bug must name the plugin, not crash blind
            raise ConfigError([failed_to_start(config, code, exc)]) from exc
        lacking = lacking_operations(type(carriers[code]))
        if lacking:  # found now, not after a label bought whose lost answer nothing can look up
            raise ConfigError([lacking_problem(config, code, lacking)])
    config.labels_dir.mkdir(parents=True, exist_ok=True)
    problem = unwritable(config.labels_dir, try_write=True)
    if problem:  # found now, not after a paid label that cannot be kept
        raise OSError(f"labels_dir: {problem}")
    ledger = open_configured_ledger(config)  # the catalog reads the SKUs upserted through the API from it
    for limiter in {id(c.limiter): c.limiter for c in amazon.values()}.values():
        limiter.attach_store(ledger)  # buckets carry on from the last run's quota state
    return Runtime(config=config, host=host, ledger=ledger, catalog=LayeredCatalog(ledger, catalog),
                   carrier_specs=specs, carriers=carriers, amazon=amazon, site_rules=site_rules, fx=fx,
                   policy=policy, webhook_session=session())


REQUIRED_OPERATIONS = ("create_shipment", "get_label", "find_by_reference")


def lacking_operations(cls: type) -> list[str]:
    """The operations the daemon needs that a carrier class leaves to the base class (which raises
    NotSupported), or does not have at all."""
    return [op for op in REQUIRED_OPERATIONS if getattr(cls, op, None) in (None, getattr(Carrier, op))]


def failed_to_start(config: Config, code: str, exc: BaseException) -> Problem:
    """A configured carrier whose plugin could not be built (or its factory imported), at its line."""
    return Problem(str(config.path), config.line_of("carriers", code), f"carriers.{code}",
                   f"carrier plugin failed to start: {exc}")


def lacking_problem(config: Config, code: str, lacking: list[str]) -> Problem:
    return Problem(str(config.path), config.line_of("carriers", code), f"carriers.{code}",
                   f"the {code} carrier plugin does not implement {', '.join(lacking)}: the daemon needs "
                   f"{', '.join(REQUIRED_OPERATIONS)} to buy a label, keep it, and never buy it twice "
                   "(a call whose answer was lost is looked up by reference)")


def _amazon_clients(config: Config, session: Callable[[], httpsession.Session],
                    specs: dict[str, CarrierSpec]) -> dict[str, SpApiClient]:
    """One SP-API client per seller account, all sharing one set of token buckets (with the
    published quotas of the operations the carrier plugins declare)."""
    settings = config.amazon
    overrides = {op: {"rate": q.rate, "burst": q.burst} for op, q in settings.quotas.items()}
    limiter = RateLimiter(DEFAULT_QUOTAS, overrides, pacing=settings.pacing)  # configured: header unused
    for spec in specs.values():
        limiter.add_defaults(spec.spapi_quotas)
    clients: dict[str, SpApiClient] = {}
    for account in config.accounts:
        http = session()
        tokens = LwaTokenProvider(
            account.lwa_token_url or LWA_TOKEN_URL, account.refresh_token, account.client_id,
            account.client_secret, session=http, client_secret_rotated_at=account.rotated_at)
        clients[account.name] = SpApiClient(
            account=account.name, endpoint=account.endpoint or REGION_HOSTS[account.region], tokens=tokens,
            limiter=limiter, session=http,
            timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            max_attempts=settings.max_attempts, backoff_base=settings.backoff_base_seconds)
    return clients


def _setting_path(text: str) -> tuple[str | int, ...] | None:
    """``fx.rates.EUR`` or ``site_rules.DE`` as the parts of a path into the file, or None when
    ``text`` is no such path (a message that names none)."""
    if not re.fullmatch(r"[a-z_]+(\.[\w-]+|\[\d+\])*", text):
        return None
    return tuple(int(part[1:-1]) if part.startswith("[") else part
                 for part in re.findall(r"\[\d+\]|[^.\[\]]+", text))


def configured_rules(config: Config,
                     host: PluginHost) -> tuple[dict[str, SiteRules], RateTable, ChoicePolicy]:
    """Site rules (plugins, then their patches, then the site_rules section), fx, selection policy;
    ConfigError naming what does not merge (a site two plugins define, say): ``config check`` asks too."""
    registered = host.site_rules()
    try:
        rules = merge_rules([r for r in registered if isinstance(r, SiteRules)],
                            [p for p in registered if isinstance(p, SiteRulesPatch)],
                            config.data.get("site_rules"), sites=config.sites)
        fx = RateTable.from_config(config.data.get("fx"))
        policy = ChoicePolicy.from_config(config.data.get("selection"))
    except (RulesError, FxError) as exc:
        path, _, message = str(exc).partition(": ")
        parts = _setting_path(path)  # "fx.rates.EUR: ..." is said at the line that sets it
        if parts is None or not message:
            raise ConfigError([Problem(str(config.path), None, "", str(exc))]) from None
        raise ConfigError([Problem(str(config.path), config.line_of(*parts), path, message)]) from None
    for i, account in enumerate(config.accounts):
        missing = [s for s in account.marketplaces if s not in rules]
        if missing:
            line = config.line_of("accounts", i, "marketplaces")
            raise ConfigError([Problem(str(config.path), line, f"accounts[{i}].marketplaces",
                                       f"no site rules for {', '.join(missing)} (install "
                                       "mfn-marketplace-amazon, or add them under site_rules)")])
    return rules, fx, policy
