"""What a carrier plugin's sandbox emulator is built from (its ``sandbox.py`` imports this).

Only the ``sandbox`` and ``demo`` commands and tests import emulators; the daemon never does.

An emulator subclasses :class:`Emulator` and marks handlers with ``@route(method, pattern)``; the
framework serves it on its own loopback port (:class:`EmulatorServer`) and adds, for every
emulator:

* control endpoints, never faulted: ``GET /_sandbox/state`` (what ``sandbox_state()`` returns,
  plus ``parcels``), ``POST /_sandbox/faults`` (``{"rate": 0.2}`` or per-kind rates),
  ``POST /_sandbox/clock`` (``{"advance_seconds": 86400}`` moves :attr:`Emulator.clock`, which
  tracking follows; :meth:`Emulator.clock_moved` is the hook) and ``POST /_sandbox/parcels``
  (``{"tracking_number": "...", "outcome": "lost"}`` forces one parcel's outcome);
* faults at the configured rates (:data:`FAULT_KINDS`): ``error_5xx`` is answered before the
  request takes effect; ``timeout``, ``reset`` and ``malformed`` after it did -- the ambiguous
  cases that make exactly-once hard;
* persistence of ``self.store`` (plain JSON data, guarded by ``self.lock``) across restarts.

The exactly-once audits (the contract suite, ``mfn-connector demo``) read
``sandbox_state()["labels"]``: ``{customer reference: {"created": n, "tracking_number": ...}}``,
how many labels the emulator issued under each reference. Authenticate requests in
``authorize()``, answer with :class:`Response`, and make labels with :func:`make_label_pdf`.

Parcel lives (``self.parcels``, a :class:`ParcelLives`; the full description is in
:mod:`connector.sandbox.framework`): register every label you issue,
``self.parcels.register(tracking_number, created_at=..., transit_days=(7, 12), aliases=[waybill])``
(``first_scan_delay_hours`` for a failed pickup first); the framework draws its outcome from the
``seed`` and the ``parcel_outcomes`` option (:data:`PARCEL_OUTCOMES`: delivered on time, late,
no_first_scan, failed_delivery, returned, lost; default shares :data:`DEFAULT_PARCEL_OUTCOMES`:
5 % late, 2 % never scanned, 2 % failed delivery, 1 % returned, 1 % lost) and plans its timeline:
information received at once, the first scan 4-24 hours later (option ``first_scan_hours``),
the transit steps, and the delivery (attempt) between the earliest and the promised transit day
(after it when late). Answer tracking from
``self.parcels.get(number).steps(self.clock.now())`` -- :class:`ParcelStep` objects whose ``kind``
(:data:`INFO_RECEIVED`, :data:`ACCEPTED`, ..., :data:`DELIVERED`, :data:`DELIVERY_FAILED`,
:data:`RETURNING`, :data:`RETURNED`; :data:`STEP_KINDS` in order) you word in the carrier's codes,
texts and time zone (``step.leg`` says origin or destination) -- refuse a void once
``life.scanned(now)`` and call ``self.parcels.cancel(number)`` after one. ``info_received`` is the
one step that is not a carrier scan (:data:`SCAN_KINDS`). ``POST /_sandbox/parcels`` forces an
outcome and ``GET /_sandbox/state`` reports ``parcels`` without further work.

What the carrier emulators have in common is here too, so that none writes it again:

* answering half-way: ``raise Refusal(response)`` in a handler or a helper it calls;
* one way in for every route of an emulator or extension: define ``serve_route(name, handler,
  request)`` (see :func:`route`);
* request bodies: :class:`Checks` (``need_text``, ``need_object``, ``need_positive``,
  ``need_integer``, ``need_whole``, ``each_object``) collects the problems in the emulator's
  wording; :func:`as_text`, :func:`as_number`, :func:`as_integer`, :func:`as_whole` read loose
  JSON values; :meth:`Request.json_or` reads a body that may not be JSON;
* the labels audit: :meth:`Emulator.record_label` keeps ``store["labels"]``,
  :meth:`Emulator.label_numbers` and :meth:`Emulator.live_label` read it and
  :meth:`Emulator.labels_audit` reports it;
  :meth:`Emulator.count_create_attempt` / :meth:`Emulator.create_attempts` keep and report
  ``store["create_attempts"]``; :meth:`Emulator.next_seq` counts numbers issued; ``Emulator.seed``
  is the ``seed`` option; :meth:`Emulator.hours_since` the age of a parcel on the simulated
  clock; :func:`transit_window` reads transit days (``"7-12"``); :meth:`Response.pdf` answers a
  label file.
"""
from __future__ import annotations

from ..sandbox.framework import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS,
    CUSTOMS_CLEARED,
    DEFAULT_PARCEL_OUTCOMES,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    EXPORT,
    FAULT_KINDS,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    PARCEL_OUTCOMES,
    RETURNED,
    RETURNING,
    SCAN_KINDS,
    STEP_KINDS,
    Checks,
    Emulator,
    EmulatorServer,
    EmulatorSpec,
    FaultPlan,
    ParcelLife,
    ParcelLives,
    ParcelStep,
    Refusal,
    Request,
    Response,
    SimClock,
    as_integer,
    as_number,
    as_text,
    as_whole,
    route,
    transit_window,
)
from ..sandbox.pdf import make_label_pdf

__all__ = ["ACCEPTED", "ARRIVED", "CUSTOMS", "CUSTOMS_CLEARED", "DEFAULT_PARCEL_OUTCOMES", "DELIVERED",
           "DELIVERY_FACILITY", "DELIVERY_FAILED", "DEPARTED", "EXPORT", "FAULT_KINDS", "INFO_RECEIVED",
           "LAST_MILE", "ORIGIN_FACILITY", "OUT_FOR_DELIVERY", "PARCEL_OUTCOMES", "RETURNED", "RETURNING",
           "SCAN_KINDS", "STEP_KINDS", "Checks", "Emulator", "EmulatorServer", "EmulatorSpec", "FaultPlan",
           "ParcelLife", "ParcelLives", "ParcelStep", "Refusal", "Request", "Response", "SimClock",
           "as_integer", "as_number", "as_text", "as_whole", "make_label_pdf", "route", "transit_window"]
