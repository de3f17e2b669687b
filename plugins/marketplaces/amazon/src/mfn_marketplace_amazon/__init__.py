"""Amazon site rules for mfn-connector, as data: ``sites.yaml`` in this package, one entry per
site a China-based seller ships MFN to (caps, China-origin tracking rule, IOSS, VTR exclusions,
returnless refunds, accepted carrier codes).

Registered through the ``mfn_connector`` entry point like any third-party plugin. The data file
is validated against :data:`connector.rules.SITES_FILE_SCHEMA`; a bad file raises
:class:`connector.rules.RulesError` naming the file and the field, which the plugin host reports.
"""
from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from connector import hookimpl

DATA_FILE = "sites.yaml"


def load_site_rules(path: str | Path | None = None) -> list[Any]:
    """The :class:`connector.rules.SiteRules` of every site in ``path`` (default: the packaged file)."""
    import yaml

    from connector.kit.schema import format_path, problems
    from connector.rules import SITES_FILE_SCHEMA, RulesError, SiteRules

    if path is None:
        source = resources.files(__package__).joinpath(DATA_FILE)
        name, text = f"{__package__}/{DATA_FILE}", source.read_text(encoding="utf-8")
    else:
        name, text = str(path), Path(path).read_text(encoding="utf-8")
    try:  # libyaml's loader where PyYAML has it: every start reads this file, ten times faster
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise RulesError(f"{name}: YAML syntax error: {exc}") from None
    found = problems(SITES_FILE_SCHEMA, data)  # (jsonschema is imported only when there are some)
    if found:
        raise RulesError(f"{name}: " + "; ".join(f"{format_path(where) or '(top)'}: {message}"
                                                  for where, message in found))
    return [SiteRules.from_mapping(site, fields) for site, fields in data["sites"].items()]


@hookimpl
def mfn_register_site_rules(register: Callable[[Any], None]) -> None:
    for rules in load_site_rules():
        register(rules)
