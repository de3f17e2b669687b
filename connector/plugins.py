"""Plugin manager: a safe entry-point loader, per-plugin reports and isolated hook calls.

Plugins are found through entry points in the group ``mfn_connector`` (the same string is the
pluggy project name and, upper-cased, the env-var prefix). Built-in carriers are ordinary
distributions under ``plugins/`` that take exactly this path.

Loading never crashes the daemon: a plugin that fails to import, fails pluggy's validation,
implements an unknown hook or registers a carrier code that is already taken is reported
(``mfn-connector plugins``) and skipped. ``MFN_CONNECTOR_STRICT_PLUGINS=1`` turns every such
report into an error, for plugin authors.

Every hook is called through pluggy, so ``firstresult``, ``tryfirst``/``trylast`` and wrappers
(``wrapper=True`` / ``hookwrapper=True``) behave as pluggy documents. Isolation is added at
registration: each ordinary implementation is wrapped so that an exception is logged (and, for a
registration hook, reported as the plugin's failure) and counts as "no answer", and the next
implementation still runs.

Loading is lazy: importing the plugins' modules is cheap, and what they register (carriers, site
rules, emulators) is collected the first time someone asks, so ``--help`` and ``plugins`` stay
fast and the daemon never imports an emulator.

Knobs (all use entry-point names):

* ``MFN_CONNECTOR_LOAD_PLUGINS=a,b`` -- allow list; empty string loads no external plugin;
* ``MFN_CONNECTOR_DISABLED_PLUGINS=a,b`` -- deny list; also ``plugins.deny`` in the YAML,
  and ``plugins.allow`` as an allow list.
"""
from __future__ import annotations

import contextvars
import functools
import importlib.metadata
import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from . import defaults, hookspecs

if TYPE_CHECKING:
    from .kit.carrier import CarrierSpec

log = logging.getLogger(__name__)

GROUP = hookspecs.PROJECT
ENV_PREFIX = GROUP.upper() + "_"
ENV_ALLOW = ENV_PREFIX + "LOAD_PLUGINS"
ENV_DENY = ENV_PREFIX + "DISABLED_PLUGINS"
ENV_STRICT = ENV_PREFIX + "STRICT_PLUGINS"
REGISTRATION_PREFIX = "mfn_register_"  # the registration hooks: a failure in one fails its plugin

# The plugins this project ships (plugins/ in its repository): loaded before any other, so that a
# carrier code or an entry-point name they hold is never taken by a distribution installed later.
BUILTIN_DISTRIBUTIONS = frozenset({
    "mfn-carrier-amazon-shipping", "mfn-carrier-chinapost", "mfn-carrier-dhl-ecommerce",
    "mfn-carrier-yanwen", "mfn-carrier-yunexpress", "mfn-marketplace-amazon"})

# Which plugin is running right now (set by the guard around each implementation), so that a
# registration callback can attribute what it receives.
_current_plugin: contextvars.ContextVar[str] = contextvars.ContextVar("mfn_current_plugin", default="")


class PluginError(Exception):
    """Raised in strict mode for any plugin problem that is otherwise reported and skipped."""


@dataclass
class PluginReport:
    name: str
    distribution: str = ""
    version: str = ""
    status: str = "loaded"  # loaded | failed | blocked | builtin
    hooks: list[str] = field(default_factory=list)
    error: str = ""
    registered: list[str] = field(default_factory=list)  # e.g. "carrier:yunexpress"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "distribution", "version", "status", "hooks",
                                                "registered", "error")}


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _is_strict() -> bool:
    return os.environ.get(ENV_STRICT, "").lower() in ("1", "true", "yes")


class PluginHost:
    """Owns the pluggy manager, the reports and the registries plugins fill."""

    def __init__(self, *, strict: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _is_strict() if strict is None else strict
        self.reports: dict[str, PluginReport] = {}
        self._registries: dict[str, Any] = {}
        self._failures: list[tuple[str, str, BaseException]] = []  # (plugin, hook, error) of the guard
        self._lock = threading.Lock()
        self.register(defaults, "builtin-defaults", status="builtin")

    # -- loading ---------------------------------------------------------------------------

    def load_entrypoints(self, *, allow: Iterable[str] | None = None,
                         deny: Iterable[str] = ()) -> None:
        env_allow = _split(os.environ.get(ENV_ALLOW))
        allow_set = set(env_allow) if env_allow is not None else (set(allow) if allow is not None else None)
        deny_set = set(_split(os.environ.get(ENV_DENY)) or ()) | set(deny)
        eps = []
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group == GROUP:
                    eps.append((dist.metadata["Name"] or "", ep.name, dist, ep))
        seen: dict[str, str] = {}  # entry-point name -> the distribution that has it
        # Built-ins first, then by name: the first to hold a name (or a carrier code) keeps it.
        for dist_name, ep_name, dist, ep in sorted(
                eps, key=lambda t: (t[0] not in BUILTIN_DISTRIBUTIONS, t[0], t[1])):
            if ep_name in seen:
                if seen[ep_name] != dist_name:  # (the same distribution found twice on sys.path: skipped)
                    self._fail(PluginReport(f"{ep_name} ({dist_name})", dist_name, dist.version),
                               f"entry point name {ep_name!r} is taken by {seen[ep_name]}: rename "
                               "this plugin's entry point")
                continue
            seen[ep_name] = dist_name
            report = PluginReport(ep_name, dist_name, dist.version)
            if ep_name in deny_set or (allow_set is not None and ep_name not in allow_set):
                report.status = "blocked"
                self.reports[ep_name] = report
                self.pm.set_blocked(ep_name)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is reported, not fatal
                self._fail(report, f"import failed: {type(exc).__name__}: {exc}", exc)
                continue
            self.register(module, ep_name, report=report)
        named = deny_set | (allow_set or set())
        if named - set(seen):  # a carrier code (yanwen) for a plugin's name (carrier_yanwen), a typo
            log.warning("%s, %s or plugins.allow/deny name(s) %s, which no installed plugin has: nothing "
                        "is done for them (the names are those `mfn-connector plugins` lists: %s)",
                        ENV_DENY, ENV_ALLOW, ", ".join(repr(n) for n in sorted(named - set(seen))),
                        ", ".join(sorted(seen)) or "none")

    def register(self, plugin: Any, name: str, *, status: str = "loaded",
                 report: PluginReport | None = None) -> bool:
        """Register one plugin (a module or an object with hookimpls); False when it was refused.

        The way in for entry points, built-ins and tests alike: pluggy validates the arguments,
        unknown hooks are refused, ordinary implementations are isolated (see the module docs).
        """
        report = report or PluginReport(name, "mfn-connector", _core_version(), status)
        report.status = status
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validation: bad hook arguments, non-generator wrapper
            self._fail(report, f"rejected by pluggy: {exc}", exc)
            return False
        callers = self.pm.get_hookcallers(plugin) or []
        unknown = [hc.name for hc in callers if hc.spec is None
                   and not all(i.optionalhook for i in hc.get_hookimpls())]
        if unknown:
            self.pm.unregister(plugin)
            self._fail(report, "implements unknown hook(s): " + ", ".join(sorted(unknown)))
            return False
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    self._isolate(impl, caller.name)
        report.hooks = sorted(hc.name for hc in callers)
        self.reports[name] = report
        self._registries.clear()  # a new plugin may register more
        return True

    def _isolate(self, impl: pluggy.HookImpl, hook_name: str) -> None:
        """Wrap an ordinary implementation: its exception is recorded and logged, and pluggy
        goes on to the next implementation. Wrappers are left as they are (they see the others'
        results and exceptions, as pluggy intends)."""
        if impl.hookwrapper or impl.wrapper:
            return
        function = impl.function
        # Only a registration hook's failures are read (each fails its plugin). Any other hook's
        # kept would pile up for good, each traceback holding its caller's frames (a batch of
        # events, an order): a plugin failing at every event would grow the daemon without bound.
        kept = hook_name.startswith(REGISTRATION_PREFIX)

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            token = _current_plugin.set(impl.plugin_name)
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - one plugin's bug never stops the others
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
                if kept:
                    with self._lock:
                        self._failures.append((impl.plugin_name, hook_name, exc))
                return None
            finally:
                _current_plugin.reset(token)

        impl.function = guarded

    def _fail(self, report: PluginReport, message: str, exc: BaseException | None = None) -> None:
        report.status = "failed"
        report.error = message
        # Skipped: its other hooks no longer run. Only when the name is this plugin's (one refused
        # because its name is taken leaves the plugin holding the name alone).
        registered = self.reports.get(report.name) is report and self.pm.get_plugin(report.name) is not None
        self.reports[report.name] = report
        if registered:
            self.pm.unregister(name=report.name)
        if self.strict:  # nothing is skipped: the command stops (and shows the plugin's traceback)
            raise PluginError(f"plugin {report.name!r}: {message}") from exc
        log.warning("plugin %s (%s %s) skipped: %s", report.name, report.distribution,
                    report.version, message)
        if exc is not None:
            log.debug("".join(traceback.format_exception(exc)))

    # -- calling ---------------------------------------------------------------------------

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an event hook: every implementation runs, each isolated."""
        try:
            getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception:  # noqa: BLE001 - a failing wrapper: logged, the order goes on
            log.exception("a wrapper of %s failed", hook_name)

    def decide(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` decision hook: the first non-``None`` answer, or ``None``."""
        try:
            return getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception:  # noqa: BLE001 - a failing wrapper: no decision
            log.exception("a wrapper of %s failed; no decision", hook_name)
            return None

    def _collect(self, hook_name: str, kind: str, key: Callable[[Any], str] | None,
                 accepts: tuple[type, ...]) -> Any:
        """Run a registration hook through pluggy, attributing every registration to its plugin.

        A plugin that registers anything but ``accepts`` fails (and what it registered is
        dropped). With ``key``, a code registered by two plugins fails the one registered later
        (built-ins are registered first; the dict maps code -> item); without, every item is kept,
        in pluggy's call order (a list).
        """
        mine: dict[str, list[Any]] = {}

        def register(item: Any) -> None:
            mine.setdefault(_current_plugin.get(), []).append(item)

        while True:
            with self._lock:
                failures_before = len(self._failures)
            try:
                getattr(self.pm.hook, hook_name)(register=register)
                break
            except Exception as exc:  # noqa: BLE001 - a wrapper (not isolated): it fails, the others go on
                mine.clear()
                if not self._fail_wrappers(hook_name, exc):
                    raise
        for plugin in self._fail_raised(hook_name, failures_before):
            mine.pop(plugin, None)
        for plugin in list(mine):
            wrong = [item for item in mine[plugin] if not isinstance(item, accepts)]
            if wrong:
                mine.pop(plugin)
                expected = " or ".join(t.__name__ for t in accepts)
                report = self.reports.get(plugin)
                if report:
                    self._fail(report, f"{hook_name} registered a {type(wrong[0]).__name__}, "
                                       f"not a {expected}")
        # A code goes to the plugin registered first; a list keeps pluggy's call order (the last
        # registered first), which merge_rules documents.
        order = [name for name, _ in self.pm.list_name_plugin()]
        if key is None:
            order.reverse()
        found: dict[str, Any] = {}
        owners: dict[str, str] = {}
        items: list[Any] = []
        for plugin in sorted(mine, key=lambda p: order.index(p) if p in order else len(order)):
            report = self.reports.get(plugin)
            if key is None:
                items += mine[plugin]
                if report:
                    report.registered.append(f"{kind}:{len(mine[plugin])}")
                continue
            keys = [key(item) for item in mine[plugin]]
            codes = dict(zip(keys, mine[plugin], strict=True))
            twice = [k for k in codes if keys.count(k) > 1]
            if twice:  # which of the two it meant is not guessed
                if report:
                    self._fail(report, f"{kind} code(s) {', '.join(twice)} registered twice")
                continue
            duplicates = [k for k in codes if k in found]
            if duplicates:
                if report:
                    self._fail(report, f"duplicate {kind} code(s) {', '.join(duplicates)} "
                                       f"(already registered by {', '.join(owners[k] for k in duplicates)})")
                continue
            for code, item in codes.items():
                found[code] = item
                owners[code] = plugin
                if report:
                    report.registered.append(f"{kind}:{code}")
        return found if key is not None else items

    def _fail_wrappers(self, hook_name: str, exc: Exception) -> bool:
        """Fail (and unregister) the wrapper of ``hook_name`` that raised ``exc``: the innermost of
        those its traceback went through (an outer one it merely passed through is not to blame);
        False when it went through none."""
        wrappers = {impl.function.__code__: impl.plugin_name
                    for impl in getattr(self.pm.hook, hook_name).get_hookimpls()
                    if impl.wrapper or impl.hookwrapper}
        culprit = None
        tb = exc.__traceback__
        while tb is not None:
            culprit = wrappers.get(tb.tb_frame.f_code, culprit)
            tb = tb.tb_next
        if culprit is None:
            return False
        self._fail(self.reports.get(culprit) or PluginReport(culprit),
                   f"{hook_name} raised {type(exc).__name__}: {exc}", exc)
        if self.pm.get_plugin(culprit) is not None:
            self.pm.unregister(name=culprit)
        return True

    def _registry(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self._registries:
            self._registries[name] = build()
        return self._registries[name]

    # -- registries ------------------------------------------------------------------------

    def carriers(self) -> dict[str, CarrierSpec]:
        from .kit.carrier import CarrierSpec

        return self._registry("carriers", lambda: self._collect("mfn_register_carriers", "carrier",
                                                                lambda s: s.code, (CarrierSpec,)))

    def emulators(self) -> dict[str, Any]:
        """Sandbox emulators (imports emulator code: only for ``sandbox``, ``demo`` and tests)."""
        from .sandbox.framework import EmulatorSpec

        return self._registry("emulators", lambda: self._collect(
            "mfn_register_sandbox_emulators", "emulator", lambda s: s.name, (EmulatorSpec,)))

    def site_rules(self) -> list[Any]:
        """Every SiteRules and SiteRulesPatch plugins registered, in pluggy's call order
        (rules.merge_rules resolves them: unlike carriers, a site may be registered once and
        patched by others)."""
        from .rules import SiteRules, SiteRulesPatch

        return self._registry("site_rules", lambda: self._collect(
            "mfn_register_site_rules", "site rules", None, (SiteRules, SiteRulesPatch)))

    def _fail_raised(self, hook_name: str, since: int) -> set[str]:
        """Fail each plugin whose ``hook_name`` raised (caught by its guard) since the ``since``-th
        failure; returns their names."""
        with self._lock:
            failed = {(plugin, exc) for plugin, hook, exc in self._failures[since:] if hook == hook_name}
        for plugin, exc in failed:
            report = self.reports.get(plugin)
            if report:
                self._fail(report, f"{hook_name} raised {type(exc).__name__}: {exc}", exc)
        return {plugin for plugin, _ in failed}

    def register_commands(self, cli: Any) -> None:
        """Let plugins add commands to the click group ``cli``. A name already there (a built-in
        command's, or an earlier plugin's) is refused: a plugin's ``report`` or ``run`` would
        replace the built-in one without a word. That plugin fails, and the commands it added go
        with it."""
        added: dict[str, list[str]] = {}
        add = cli.add_command

        def add_command(command: Any, name: str | None = None) -> None:
            name = name or command.name
            if name in cli.commands:
                raise ValueError(f"a command named {name!r} exists already")
            add(command, name)
            added.setdefault(_current_plugin.get(), []).append(name)

        with self._lock:
            failures_before = len(self._failures)
        cli.add_command = add_command  # click's @cli.command() and @cli.group() call it too
        try:
            self.notify("mfn_register_commands", cli=cli)
        finally:
            del cli.add_command
        for plugin in self._fail_raised("mfn_register_commands", failures_before):
            for name in added.get(plugin, []):
                cli.commands.pop(name, None)


def _core_version() -> str:
    from . import __version__
    return __version__


def load_plugins(*, allow: Iterable[str] | None = None, deny: Iterable[str] = (),
                 strict: bool | None = None, entrypoints: bool = True) -> PluginHost:
    """A fresh plugin host with built-ins and (unless disabled) every installed plugin."""
    host = PluginHost(strict=strict)
    if entrypoints:
        host.load_entrypoints(allow=allow, deny=deny)
    return host
