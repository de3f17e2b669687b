"""The HTTP API for ERPs and operators (``mfn-connector serve``). See docs/erp-integration.md.

Importing this package loads nothing heavy: FastAPI is imported by :mod:`connector.api.app`,
only when a server or a test builds the application.
"""
