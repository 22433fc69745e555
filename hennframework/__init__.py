"""hennframework: neural networks whose weights are homomorphically encrypted.

Start with :func:`hennframework.get_scheme` (a scheme instance on the configured backend) and the
model API in :mod:`hennframework.nn`.
"""

from __future__ import annotations

from typing import Any

from hennframework.config import backend_context, scheme_context, set_backend, set_scheme
from hennframework.exceptions import HennError
from hennframework.registry import get_backend, get_scheme_class

__version__ = "0.1.0"

__all__ = [
    "HennError",
    "__version__",
    "backend_context",
    "get_backend",
    "get_scheme",
    "get_scheme_class",
    "scheme_context",
    "set_backend",
    "set_scheme",
]


def get_scheme(name: str | None = None, params: Any = None, backend: Any = None) -> Any:
    """An instance of the scheme ``name`` (default: configured) with ``params`` on ``backend``.

    ``backend`` is a backend instance, a name, or None for the configured one (``HENN_BACKEND``,
    config files, NumPy). A warning it causes (such as
    :class:`~hennframework.exceptions.InsecureParametersWarning`) is reported at the line that
    called it, not inside the package.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the "default" set states that it is insecure
    ...     scheme = get_scheme("integer-vector", "default", backend="numpy")
    >>> keys = scheme.keygen()
    >>> total = scheme.encrypt_tensor([1.5, 2.25], keys.public).sum()
    >>> float(scheme.decrypt_tensor(total, keys.secret))
    3.75
    """
    scheme_class = get_scheme_class(name)
    if not getattr(scheme_class, "uses_array_backend", True):
        return scheme_class(params, backend=backend)  # e.g. CKKS: SEAL computes on the CPU
    return scheme_class(params, backend=get_backend(backend))
