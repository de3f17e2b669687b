"""Hook specifications for mfn-connector plugins.

Every hook name starts with ``mfn_``. Implementations may accept any subset of the arguments
(pluggy passes only those they name), so adding an argument never breaks a plugin. Each hook is
documented in ``docs/plugin-hooks.md``; a test fails when one is not.

Three kinds of hooks:

* registration hooks, called once at start-up with a ``register`` callback;
* decision hooks, ``firstresult``: the first non-``None`` answer wins, built-ins are ``trylast``;
* event hooks, called once per event; the engine calls each implementation isolated, so one
  failing plugin never stops the others or the order.
"""
from __future__ import annotations

import pluggy

PROJECT = "mfn_connector"  # pluggy project, entry-point group and (upper-cased) env-var prefix

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration ---------------------------------------------------------------------------


@hookspec
def mfn_register_carriers(register):
    """Register carriers: call ``register(CarrierSpec(...))`` once per carrier.

    Called once per process. A carrier code registered twice is reported as a plugin error and
    the second registration is skipped.
    """


@hookspec
def mfn_register_sandbox_emulators(register):
    """Register sandbox emulators: call ``register(EmulatorSpec(...))`` once per emulator.

    Called only by ``mfn-connector sandbox serve``, ``demo`` and tests (the daemon never imports
    emulator code). Each emulator runs on its own loopback port, or, with
    ``EmulatorSpec(mount_on="spapi")``, as an extension served by the SP-API emulator.
    """


@hookspec
def mfn_register_commands(cli):
    """Add click commands or groups to the ``mfn-connector`` command group."""


# -- decisions -------------------------------------------------------------------------------


@hookspec
def mfn_register_site_rules(register):
    """Register Amazon site rules: ``register(SiteRules(...))`` defines a whole site,
    ``register(SiteRulesPatch(site, field=value))`` overrides fields of one.

    Full definitions are merged first, then patches, then the ``site_rules`` configuration
    section, which always wins.
    """


@hookspec(firstresult=True)
def mfn_choose_quote(order, requirements, candidates):
    """Choose the label for ``order``: return one of ``candidates`` or ``None`` to pass.

    ``candidates`` are the eligible ``rules.Candidate`` objects (a quote and its cost after
    discounts and the Buy Shipping premium), cheapest first; ``requirements`` says what the
    order's site demands. The built-in default (``trylast``) returns the cheapest. An answer
    that is not one of the candidates is ignored and the order held.
    """


# -- events (for the ERP side) ----------------------------------------------------------------


@hookspec
def mfn_event(event_id, type, at, data):  # noqa: A002 - the event's field name
    """Every event of the outbox (docs/erp-integration.md has the catalogue), in order, at least
    once: ``event_id`` (``evt_N``, the same on a repeat), ``type`` (``order.held``...), ``at``
    (when the change was committed), ``data`` (no buyer PII). The hooks below are shorthands for
    some of these events."""


@hookspec
def mfn_order_received(order):
    """A new order entered the ledger. ``order`` carries no buyer PII."""


@hookspec
def mfn_order_held(order_id, reason, message):
    """An order was held: ``reason`` is machine-readable, ``message`` is for a human."""


@hookspec
def mfn_package_labeled(order_id, package):
    """A label was bought and stored: ``package`` is the ledger's Package record."""


@hookspec
def mfn_package_confirmed(order_id, package):
    """Amazon holds the package's tracking number and reading the order back showed it."""


@hookspec
def mfn_alert(kind, subject, message, details):
    """Something a person must look at: raised once per (kind, subject) until it clears.

    ``kind`` is one of ``vtr_below_threshold`` (subject ``SITE/category``),
    ``service_vtr_below_threshold`` (``carrier:service``), ``parcel_lost``, ``parcel_late``,
    ``ship_by_near`` (subject: the order id), ``carrier_credentials_refused`` (subject: the carrier
    code, or ``<carrier code>:tracking`` for its tracking credentials),
    ``carrier_filed_differently`` (subject: ``SITE:carrier code``),
    ``amazon_credentials_refused`` (subject: the seller account's name); ``message`` is for a
    human, ``details`` a dict of figures. Never carries buyer PII, a token or a secret.
    """
