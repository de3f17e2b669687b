from connector.hookspecs import hookimpl  # noqa: F401
