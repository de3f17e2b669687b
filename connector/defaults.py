"""Built-in default implementations of decision hooks (``trylast``: any plugin overrides them)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl(trylast=True)
def mfn_choose_service(order, candidates):
    """Take the configured preference order as it stands: the first allowed (carrier, service)."""
    return candidates[0] if candidates else None


@hookimpl
def mfn_register_sandbox_emulators(register):
    """The SP-API emulator is core; it registers through the same hook as carrier emulators."""
    from .sandbox.spapi import SPAPI_EMULATOR

    register(SPAPI_EMULATOR)
