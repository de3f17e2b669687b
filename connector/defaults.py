"""Built-in default implementations of decision hooks (``trylast``: any plugin overrides them)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl(trylast=True)
def mfn_choose_quote(order, requirements, candidates):
    """The lowest comparable cost (``rules.choose_cheapest``: discounts applied, and the premium the
    seller accepts for labels that confirm themselves deducted)."""
    from .rules import choose_cheapest

    return choose_cheapest(candidates, req=requirements)


@hookimpl
def mfn_register_sandbox_emulators(register):
    """The SP-API emulator is core; it registers through the same hook as carrier emulators, and
    the SP-APIs plugins emulate mount on it (``EmulatorSpec(..., mount_on="spapi")``)."""
    from .sandbox.spapi import SPAPI_EMULATOR

    register(SPAPI_EMULATOR)
