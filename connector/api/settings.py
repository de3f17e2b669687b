"""The ``api:`` section of the configuration (no web framework imported here: start-up stays fast)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..kit.settings import Settings


@dataclass(frozen=True, kw_only=True)
class ApiSettings(Settings):
    SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "default": {},
        "properties": {
            "host": {"type": "string", "minLength": 1, "default": "127.0.0.1",
                     "description": "address to listen on (loopback unless a proxy with TLS is in front)"},
            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 8780},
            "max_body_bytes": {"type": "integer", "minimum": 1024, "default": 1048576,
                               "description": "larger request bodies are refused with 413"},
            "page_size_max": {"type": "integer", "minimum": 1, "default": 500},
            "auto_release_unknown_sku": {"type": "boolean", "default": True,
                                         "description": "release orders held unknown_sku once every "
                                                        "SKU they need is in the item master"},
            "shipment_wait_seconds": {"type": "number", "minimum": 0, "default": 60,
                                      "description": "how long POST /v1/shipments drives the label "
                                                     "before answering 202 (the daemon finishes it)"},
        },
    }
    host: str
    port: int
    max_body_bytes: int
    page_size_max: int
    auto_release_unknown_sku: bool
    shipment_wait_seconds: float
