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
"""
from __future__ import annotations

from ..sandbox.framework import (
    FAULT_KINDS,
    Emulator,
    EmulatorServer,
    EmulatorSpec,
    FaultPlan,
    Request,
    Response,
    SimClock,
    route,
)
from ..sandbox.pdf import make_label_pdf

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorServer", "EmulatorSpec", "FaultPlan", "Request", "Response",
           "SimClock", "make_label_pdf", "route"]
