"""Plugin manager: a safe entry-point loader, per-plugin reports and isolated hook calls.

Plugins are found through entry points in the group ``mfn_connector`` (the same string is the
pluggy project name and, upper-cased, the env-var prefix). Built-in carriers are ordinary
distributions under ``plugins/`` that take exactly this path.

Loading never crashes the daemon: a plugin that fails to import, fails pluggy's validation,
implements an unknown hook or registers a carrier code that is already taken is reported
(``mfn-connector plugins``) and skipped. ``MFN_CONNECTOR_STRICT_PLUGINS=1`` turns every such
report into an error, for plugin authors.

Knobs (all use entry-point names):

* ``MFN_CONNECTOR_LOAD_PLUGINS=a,b`` -- allow list; empty string loads no external plugin;
* ``MFN_CONNECTOR_DISABLED_PLUGINS=a,b`` -- deny list; also ``plugins.deny`` in the YAML,
  and ``plugins.allow`` as an allow list.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import defaults, hookspecs
from .carriers import CarrierSpec

log = logging.getLogger(__name__)

GROUP = hookspecs.PROJECT
ENV_PREFIX = GROUP.upper() + "_"
ENV_ALLOW = ENV_PREFIX + "LOAD_PLUGINS"
ENV_DENY = ENV_PREFIX + "DISABLED_PLUGINS"
ENV_STRICT = ENV_PREFIX + "STRICT_PLUGINS"


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
        self._carriers: dict[str, CarrierSpec] | None = None
        self._emulators: dict[str, Any] | None = None
        self._site_rules: list[Any] | None = None
        self._register(defaults, "builtin-defaults", status="builtin")

    # -- loading ---------------------------------------------------------------------------

    def load_entrypoints(self, *, allow: Iterable[str] | None = None,
                         deny: Iterable[str] = ()) -> None:
        env_allow = _split(os.environ.get(ENV_ALLOW))
        allow_set = set(env_allow) if env_allow is not None else (set(allow) if allow else None)
        deny_set = set(_split(os.environ.get(ENV_DENY)) or ()) | set(deny)
        eps = []
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group == GROUP:
                    eps.append((dist.metadata["Name"] or "", ep.name, dist, ep))
        seen: set[str] = set()
        for dist_name, ep_name, dist, ep in sorted(eps, key=lambda t: (t[0], t[1])):
            if ep_name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep_name)
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
            self._register(module, ep_name, report=report)

    def _register(self, module: Any, name: str, *, status: str = "loaded",
                  report: PluginReport | None = None) -> None:
        report = report or PluginReport(name, "mfn-connector", _core_version(), status)
        report.status = status
        try:
            self.pm.register(module, name=name)
        except Exception as exc:  # pluggy validation: bad hook arguments, non-generator wrapper
            self._fail(report, f"rejected by pluggy: {exc}", exc)
            return
        unknown = [hc.name for hc in self.pm.get_hookcallers(module) or [] if hc.spec is None
                   and not all(i.optionalhook for i in hc.get_hookimpls())]
        if unknown:
            self.pm.unregister(module)
            self._fail(report, "implements unknown hook(s): " + ", ".join(sorted(unknown)))
            return
        report.hooks = sorted(hc.name for hc in self.pm.get_hookcallers(module) or [])
        self.reports[name] = report

    def _fail(self, report: PluginReport, message: str, exc: BaseException | None = None) -> None:
        report.status = "failed"
        report.error = message
        self.reports[report.name] = report
        if report.name in self.pm.list_name_plugin() and self.pm.get_plugin(report.name):
            self.pm.unregister(name=report.name)
        log.warning("plugin %s (%s %s) skipped: %s", report.name, report.distribution,
                    report.version, message)
        if exc is not None:
            log.debug("".join(traceback.format_exception(exc)))
        if self.strict:
            raise PluginError(f"plugin {report.name!r}: {message}") from exc

    # -- calling ---------------------------------------------------------------------------

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        # pluggy calls implementations last-registered first; keep that order.
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def call_each(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of an event hook, isolated: one failure never stops others."""
        results = []
        for impl in self._impls(hook_name):
            try:
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception:  # noqa: BLE001 - a plugin's failure is logged and contained
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
                continue
            if result is not None:
                results.append(result)
        return results

    def decide(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a firstresult decision hook; a failing plugin is logged and skipped."""
        for impl in self._impls_by_priority(hook_name):
            try:
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception:  # noqa: BLE001
                log.exception("plugin %s failed in %s; asking the next", impl.plugin_name, hook_name)
                continue
            if result is not None:
                return result
        return None

    def _impls_by_priority(self, hook_name: str) -> list[pluggy.HookImpl]:
        impls = self._impls(hook_name)
        first = [i for i in impls if i.tryfirst]
        last = [i for i in impls if i.trylast]
        return first + [i for i in impls if not i.tryfirst and not i.trylast] + last

    def _collect(self, hook_name: str, kind: str, key: Callable[[Any], str]) -> dict[str, Any]:
        """Run a registration hook plugin by plugin, attributing each registration."""
        found: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for impl in self._impls(hook_name):
            report = self.reports.get(impl.plugin_name)
            mine: dict[str, Any] = {}

            def register(item: Any, _mine: dict[str, Any] = mine) -> None:
                _mine[key(item)] = item

            try:
                impl.function(**{k: {"register": register}[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001
                if report:
                    self._fail(report, f"{hook_name} raised {type(exc).__name__}: {exc}", exc)
                continue
            duplicates = [k for k in mine if k in found]
            if duplicates and report:
                self._fail(report, f"duplicate {kind} code(s) {', '.join(duplicates)} "
                                   f"(already registered by {', '.join(owners[k] for k in duplicates)})")
                continue
            for k, item in mine.items():
                found[k] = item
                owners[k] = impl.plugin_name
                if report:
                    report.registered.append(f"{kind}:{k}")
        return found

    # -- registries ------------------------------------------------------------------------

    def carriers(self) -> dict[str, CarrierSpec]:
        if self._carriers is None:
            self._carriers = self._collect("mfn_register_carriers", "carrier", lambda s: s.code)
        return self._carriers

    def emulators(self) -> dict[str, Any]:
        if self._emulators is None:
            self._emulators = self._collect("mfn_register_sandbox_emulators", "emulator",
                                            lambda s: s.name)
        return self._emulators

    def site_rules(self) -> list[Any]:
        """Every SiteRules and SiteRulesPatch plugins registered, in call order (rules.merge_rules
        resolves them: unlike carriers, a site may be registered once and patched by others)."""
        if self._site_rules is None:
            found: list[Any] = []
            for impl in self._impls("mfn_register_site_rules"):
                report = self.reports.get(impl.plugin_name)
                mine: list[Any] = []
                try:
                    impl.function(**{k: {"register": mine.append}[k] for k in impl.argnames})
                except Exception as exc:  # noqa: BLE001
                    if report:
                        self._fail(report, f"mfn_register_site_rules raised {type(exc).__name__}: {exc}", exc)
                    continue
                found += mine
                if report:
                    report.registered.append(f"site rules:{len(mine)}")
            self._site_rules = found
        return self._site_rules

    def register_commands(self, cli: Any) -> None:
        self.call_each("mfn_register_commands", cli=cli)


def _core_version() -> str:
    from . import __version__
    return __version__


def load_plugins(*, allow: Iterable[str] | None = None, deny: Iterable[str] = (),
                 strict: bool | None = None, entrypoints: bool = True) -> PluginHost:
    """A fresh plugin host with built-ins and (unless disabled) every installed plugin."""
    host = PluginHost(strict=strict)
    if entrypoints:
        host.load_entrypoints(allow=allow, deny=deny)
    # Registration errors (duplicates, raising hooks) surface in the reports straight away.
    host.carriers()
    host.emulators()
    host.site_rules()
    return host
