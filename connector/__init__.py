"""mfn-connector: Amazon MFN orders to carrier labels and confirmed shipments, exactly once.

Plugin authors import from :mod:`connector.kit`; ``connector.hookimpl`` is the marker's
permanent home and is re-exported there.
"""
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["hookimpl", "__version__"]
