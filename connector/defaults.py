"""Built-in default implementations of decision hooks (``trylast``: any plugin overrides them)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl(trylast=True)
def mfn_choose_quote(order, requirements, candidates):
    """The lowest cost after discounts and the Buy Shipping premium (rules.choose_cheapest)."""
    from .rules import choose_cheapest

    return choose_cheapest(candidates, req=requirements)


@hookimpl
def mfn_register_sandbox_emulators(register):
    """The SP-API emulator is core; it registers through the same hook as carrier emulators."""
    from .sandbox.spapi import SPAPI_EMULATOR

    register(SPAPI_EMULATOR)
