"""mfn-connector: Amazon MFN orders to carrier labels and confirmed shipments, exactly once.

This module is the one stable import path for plugin authors::

    from connector import hookimpl, CarrierSpec, Carrier
"""
from .carriers import (
    Carrier,
    CarrierError,
    CarrierSpec,
    DuplicateReferenceError,
    NotSupported,
    PermanentCarrierError,
    ServiceSpec,
    TransientCarrierError,
)
from .hookspecs import hookimpl
from .model import (
    Address,
    CustomsLine,
    Money,
    Order,
    OrderItem,
    Parcel,
    Quote,
    Shipment,
    ShipmentRequest,
    TrackingEvent,
    TrackingInfo,
    TrackingStatus,
)

__version__ = "0.1.0"

__all__ = [
    "Address", "Carrier", "CarrierError", "CarrierSpec", "CustomsLine", "DuplicateReferenceError",
    "Money", "NotSupported", "Order", "OrderItem", "Parcel", "PermanentCarrierError", "Quote",
    "ServiceSpec", "Shipment", "ShipmentRequest", "TrackingEvent", "TrackingInfo", "TrackingStatus",
    "TransientCarrierError", "hookimpl", "__version__",
]
