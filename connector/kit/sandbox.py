"""What a carrier plugin's sandbox emulator is built from (its ``sandbox.py`` imports this).

Only the ``sandbox`` and ``demo`` commands and tests import emulators; the daemon never does.

An emulator subclasses :class:`Emulator` and marks handlers with ``@route(method, pattern)``; the
framework serves it on its own loopback port (:class:`EmulatorServer`) and adds, for every
emulator:

* control endpoints, never faulted: ``GET /_sandbox/state`` (what ``sandbox_state()`` returns),
  ``POST /_sandbox/faults`` (``{"rate": 0.2}`` or per-kind rates) and ``POST /_sandbox/clock``
  (``{"advance_seconds": 86400}`` moves :attr:`Emulator.clock`, which tracking should follow);
* faults at the configured rates (:data:`FAULT_KINDS`): ``error_5xx`` is answered before the
  request takes effect; ``timeout``, ``reset`` and ``malformed`` after it did -- the ambiguous
  cases that make exactly-once hard;
* persistence of ``self.store`` (plain JSON data, guarded by ``self.lock``) across restarts.

The exactly-once audits (the contract suite, ``mfn-connector demo``) read
``sandbox_state()["labels"]``: ``{customer reference: {"created": n, "tracking_number": ...}}``,
how many labels the emulator issued under each reference. Authenticate requests in
``authorize()``, answer with :class:`Response`, and make labels with :func:`make_label_pdf`.

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
  clock; :meth:`Response.pdf` answers a label file.
"""
from __future__ import annotations

from ..sandbox.framework import (
    FAULT_KINDS,
    Checks,
    Emulator,
    EmulatorServer,
    EmulatorSpec,
    FaultPlan,
    Refusal,
    Request,
    Response,
    SimClock,
    as_integer,
    as_number,
    as_text,
    as_whole,
    route,
)
from ..sandbox.pdf import make_label_pdf

__all__ = ["FAULT_KINDS", "Checks", "Emulator", "EmulatorServer", "EmulatorSpec", "FaultPlan", "Refusal",
           "Request", "Response", "SimClock", "as_integer", "as_number", "as_text", "as_whole",
           "make_label_pdf", "route"]
