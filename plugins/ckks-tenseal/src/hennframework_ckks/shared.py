"""The one CKKS scheme instance per parameter set that tensors, loads and refresh exchanges share.

A CKKS tensor carries only its key; hennframework's writers of loose tensors (ciphertext files,
refresh requests, predictions) and the training loops find its scheme through ``tensor.scheme``,
which is this module's :func:`scheme_for`. The instance comes from hennframework's registry of
shared scheme instances (:func:`hennframework.io.codecs.scheme_instance`), which makes it with the
codec this plugin registers, so a tensor and a file loaded under the same parameter set agree on
one scheme object.

This module sits below :mod:`~hennframework_ckks.tensor` and imports no other module of the
plugin but :mod:`~hennframework_ckks.params`: the tensor module reaches its scheme through it
without an import circle (the scheme module imports the tensor module).
"""

from __future__ import annotations

from typing import Any

from hennframework.io.codecs import scheme_instance
from hennframework.plugin import HEScheme, SerializationError

from hennframework_ckks.params import CKKSParams

__all__ = ["SCHEME_NAME", "params_json", "scheme_for"]

#: The name the scheme is registered under (entry point ``hennframework.schemes``), its codec's
#: ``scheme_name`` and the scheme class's ``name``.
SCHEME_NAME = "ckks"


def params_json(params: CKKSParams) -> dict[str, Any]:
    """A parameter set as the JSON that ``.henn`` files store (what the codec reads back)."""
    return {
        "name": params.name,
        "values": {
            "poly_modulus_degree": params.poly_modulus_degree,
            "coeff_bits": list(params.coeff_bits),
            "scale_bits": params.scale_bits,
        },
        "description": params.description,
    }


def scheme_for(params: CKKSParams) -> HEScheme:
    """The process-wide shared CKKS scheme instance of a parameter set (what loads bind to)."""
    instance = scheme_instance(SCHEME_NAME, params_json(params))
    if not isinstance(instance, HEScheme) or instance.name != SCHEME_NAME:
        raise SerializationError(  # pragma: no cover - another codec replaced this plugin's
            f"the codec registered for {SCHEME_NAME!r} is not the CKKS plugin's"
        )
    return instance
