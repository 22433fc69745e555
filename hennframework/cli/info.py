"""``henn info``: versions, the chosen backend and scheme, and where each choice came from.

It really loads the chosen backend and scheme, so a bad choice fails here with the same
actionable error that the library would raise (unknown name, missing dependency, unusable here).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import sys
from typing import Any

import hennframework
from hennframework import config, registry
from hennframework.cli import common

__all__ = ["collect", "register", "run"]

#: Required runtime libraries, reported by distribution name.
REQUIRED = ("numpy", "stevedore")
#: Optional libraries (import name -> extra of hennframework that installs it).
OPTIONAL = {"cupy": "cupy", "tenseal": "ckks"}


def register(subparsers: Any) -> None:
    """Add the ``info`` command."""
    parser = subparsers.add_parser(
        "info",
        help="versions, the chosen backend and scheme, and where each choice came from",
        description=(
            "Print the versions of hennframework and its libraries, the backend and default "
            "scheme that would be used here, where each choice came from (option, context, "
            "environment, config file or default), the backend's device, and the scheme's "
            "default parameter set with its security label."
        ),
    )
    common.add_output_options(parser, "print machine-readable JSON")
    parser.set_defaults(func=run)


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _optional_version(module: str) -> str | None:
    """Version of an optional library if it is importable (without importing it), else None."""
    if importlib.util.find_spec(module) is None:
        return None
    for dist in importlib.metadata.packages_distributions().get(module, []):
        version = _distribution_version(dist)
        if version is not None:
            return version
    return "installed (version unknown)"


def versions() -> dict[str, str | None]:
    """hennframework, Python, the required libraries, and the optional ones (None: absent)."""
    found: dict[str, str | None] = {
        "hennframework": hennframework.__version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.executable})",
    }
    for name in REQUIRED:
        found[name] = _distribution_version(name)
    for module in OPTIONAL:
        found[module] = _optional_version(module)
    return found


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``henn info`` reports, as JSON-ready data. Raises if the choices cannot load."""
    backend_choice = common.choice(args, "backend")
    scheme_choice = common.choice(args, "scheme")
    backend = registry.get_backend(backend_choice.value)
    scheme_class = registry.get_scheme_class(scheme_choice.value)
    params = scheme_class.get_parameter_set(None)
    capabilities = sorted(str(cap) for cap in getattr(scheme_class, "capabilities", ()))
    return {
        "versions": versions(),
        "backend": {
            "name": backend_choice.value,
            "source": backend_choice.source,
            "description": backend.describe(),
        },
        "scheme": {
            "name": scheme_choice.value,
            "source": scheme_choice.source,
            "default_parameter_set": {
                "name": params.name,
                "security": params.security_label(),
                "security_bits": params.security_bits,
                "secure": params.is_secure,
                "note": params.security_note,
                "description": params.description,
            },
            "capabilities": capabilities,
            "implementation": _implementation(scheme_class),
        },
        "config_files": [
            {
                "kind": item.kind,
                "path": str(item.path) if item.path else None,
                "exists": item.exists,
            }
            for item in config.config_files()
        ],
        "environment": {name: value for name, value in _environment().items() if value is not None},
    }


def _implementation(scheme_class: Any) -> str | None:
    """The scheme's line on how it computes here (None where it has nothing to say)."""
    describe = getattr(scheme_class, "implementation", None)
    return describe() if callable(describe) else None


def _environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in config.ENV_VARS.values()}


def _print_text(data: dict[str, Any]) -> None:
    vers = data["versions"]
    print(f"hennframework {vers['hennframework']}")
    rows = []
    for name, version in vers.items():
        if name == "hennframework":
            continue
        if version is None:
            extra = OPTIONAL.get(name)
            hint = f' (optional: pip install "hennframework[{extra}]")' if extra else ""
            rows.append([name, f"not installed{hint}"])
        else:
            rows.append([name, version])
    print(_indent(common.format_table(["library", "version"], rows, header=False)))
    print()
    backend, scheme = data["backend"], data["scheme"]
    params = scheme["default_parameter_set"]
    print(f"backend: {backend['name']}  (from {backend['source']})")
    print(f"  {backend['description']}")
    print(f"scheme:  {scheme['name']}  (from {scheme['source']})")
    print(f"  default parameter set: {params['name']}: {params['security']}")
    if not params["secure"]:
        print(f"  {params['note']}")
    print(f"  capabilities: {', '.join(scheme['capabilities'])}")
    if scheme.get("implementation"):
        print(f"  {scheme['implementation']}")
    print()
    print("config files (highest precedence first):")
    for item in data["config_files"]:
        where = item["path"] or "none found"
        state = "" if item["exists"] or item["path"] is None else " (absent)"
        print(f"  {item['kind']}: {where}{state}")
    env = data["environment"]
    if env:
        print("environment: " + ", ".join(f"{name}={value}" for name, value in env.items()))


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def run(args: argparse.Namespace) -> int:
    """Print the report (text or ``--json``)."""
    data = collect(args)
    if getattr(args, "json", False):
        common.print_json(data)
    else:
        _print_text(data)
    return 0
