from connector import hookimpl  # noqa: F401  (filled in by the plugin work)
