"""``henn backends`` and ``henn schemes``: what is declared, what loads, what is usable, and why not.

Listing never fails because of a broken plugin: each one is shown with the reason it did not load
(from :func:`hennframework.registry.list_plugins`).
"""

from __future__ import annotations

import argparse
from typing import Any

from hennframework import registry
from hennframework.cli import common
from hennframework.exceptions import HennError
from hennframework.registry import PluginStatus

__all__ = ["register", "run_backends", "run_schemes", "scheme_details"]


def register(subparsers: Any) -> None:
    """Add the ``backends`` and ``schemes`` commands."""
    backends = subparsers.add_parser(
        "backends",
        help="list array backends: which load, which are usable here, and why not",
        description=(
            "List every backend declared in the 'hennframework.backends' entry-point group, "
            "whether it imports, whether it can run on this machine, and if not, why."
        ),
    )
    common.add_output_options(backends, "print machine-readable JSON")
    backends.set_defaults(func=run_backends)
    schemes = subparsers.add_parser(
        "schemes",
        help="list encryption schemes and their parameter sets with security labels",
        description=(
            "List every scheme declared in the 'hennframework.schemes' entry-point group, "
            "whether it loads, and each scheme's parameter sets with an honest security label."
        ),
    )
    common.add_output_options(schemes, "print machine-readable JSON")
    schemes.set_defaults(func=run_schemes)


def _selected(args: argparse.Namespace, setting: str) -> dict[str, str] | None:
    """The configured choice, or None with a warning when the configuration itself is broken."""
    try:
        chosen = common.choice(args, "backend" if setting == "backend" else "scheme")
    except HennError as exc:
        print(f"henn: warning: cannot tell which {setting} is selected: {exc}")
        return None
    return {"name": chosen.value, "source": chosen.source}


def _status_rows(
    statuses: list[PluginStatus], selected: str | None, detail: bool
) -> list[list[str]]:
    rows = []
    for status in statuses:
        mark = "*" if status.name == selected else ""
        row = [
            f"{status.name}{mark}",
            common.yes_no(status.loads),
            common.yes_no(status.usable),
            status.distribution,
        ]
        if detail or not status.usable:
            row.append(status.detail)
        else:
            row.append("ok")
        rows.append(row)
    return rows


def _footer(kind: str, selected: dict[str, str] | None, statuses: list[PluginStatus]) -> None:
    if not statuses:
        print(f"No {kind}s are declared: is hennframework installed (pip install -e .)?")
    if selected is not None:
        print(f"* selected {kind}: {selected['name']} (from {selected['source']})")


def run_backends(args: argparse.Namespace) -> int:
    """Print the backend listing."""
    statuses = registry.list_plugins("backend")
    selected = _selected(args, "backend")
    if getattr(args, "json", False):
        common.print_json(
            {"selected": selected, "backends": [status.as_dict() for status in statuses]}
        )
        return 0
    headers = ["BACKEND", "LOADS", "USABLE", "PACKAGE", "DETAIL"]
    print(common.format_table(headers, _status_rows(statuses, _name(selected), detail=True)))
    _footer("backend", selected, statuses)
    return 0


def _name(selected: dict[str, str] | None) -> str | None:
    return selected["name"] if selected else None


def scheme_details(status: PluginStatus) -> dict[str, Any]:
    """Parameter sets (with security labels) and capabilities of a loaded scheme class."""
    scheme_class = status.plugin
    if not status.usable or scheme_class is None:
        return {"parameter_sets": [], "capabilities": []}
    default = getattr(scheme_class, "default_parameter_set", None)
    sets = []
    for params in scheme_class.parameter_sets().values():
        sets.append(
            {
                "name": params.name,
                "default": params.name == default,
                "security": params.security_label(),
                "security_bits": params.security_bits,
                "secure": params.is_secure,
                "description": params.description,
                "note": params.security_note,
            }
        )
    capabilities = sorted(str(cap) for cap in getattr(scheme_class, "capabilities", ()))
    return {"parameter_sets": sets, "capabilities": capabilities}


def run_schemes(args: argparse.Namespace) -> int:
    """Print the scheme listing and each scheme's parameter sets."""
    statuses = registry.list_plugins("scheme")
    selected = _selected(args, "scheme")
    details = {status.name: scheme_details(status) for status in statuses}
    if getattr(args, "json", False):
        common.print_json(
            {
                "selected": selected,
                "schemes": [status.as_dict() | details[status.name] for status in statuses],
            }
        )
        return 0
    headers = ["SCHEME", "LOADS", "USABLE", "PACKAGE", "DETAIL"]
    print(common.format_table(headers, _status_rows(statuses, _name(selected), detail=False)))
    _footer("scheme", selected, statuses)
    for status in statuses:
        info = details[status.name]
        if not info["parameter_sets"]:
            continue
        print()
        print(f"{status.name}: parameter sets (default marked *)")
        rows = [
            [
                f"{item['name']}{'*' if item['default'] else ''}",
                item["security"],
                item["description"],
            ]
            for item in info["parameter_sets"]
        ]
        print(common.format_table(["SET", "SECURITY", "DESCRIPTION"], rows))
        print(f"capabilities: {', '.join(info['capabilities'])}")
        if any(not item["secure"] for item in info["parameter_sets"]):
            notes = {item["note"] for item in info["parameter_sets"] if not item["secure"]}
            for note in sorted(notes):
                print(f"note: {note}")
    return 0
