"""``python -m connector.cli``: the same as the ``mfn-connector`` console script."""
from . import main

main()
