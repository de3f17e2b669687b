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
            "metrics_public": {"type": "boolean", "default": False,
                               "description": "serve /metrics without a token to clients on a loopback "
                                              "address (a Prometheus on the same host)"},
            "ready_poll_max_age_seconds": {
                "type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                "description": "/readyz answers 503 when an account's last successful order poll is "
                               "older than this (null: 3 x engine.poll_interval_seconds)"},
        },
    }
    host: str
    port: int
    max_body_bytes: int
    page_size_max: int
    auto_release_unknown_sku: bool
    shipment_wait_seconds: float
    metrics_public: bool
    ready_poll_max_age_seconds: float | None
