"""Make the plugin importable from its source tree when it is not installed (editable install:
``pip install -e plugins/marketplaces/amazon``), so its tests run in either case."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("mfn_marketplace_amazon") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
