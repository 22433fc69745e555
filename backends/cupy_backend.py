"""The CuPy (CUDA GPU) backend: bit-identical to the NumPy backend, with data kept on the device.

Install with ``pip install "hennframework[cupy]"`` (the ``cupy-cuda12x`` wheel: CUDA 12) and select
with ``HENN_BACKEND=cupy`` or ``--backend cupy``. CuPy is imported at the top of this module on
purpose: without it, loading the entry point fails with an ImportError that the registry turns
into :class:`~hennframework.exceptions.PluginDependencyError` naming the extra to install. With
CuPy but no usable GPU, :meth:`CupyBackend.is_available` says why and the registry raises
:class:`~hennframework.exceptions.BackendUnavailableError`.

All array logic lives in :class:`hennframework_backends._xp_backend.XpBackend` (which CI runs on
NumPy, see docs/gpu.md); this module adds what only a GPU has: device queries, host copies,
stream synchronisation and CUDA atomic scatter-adds.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np
import numpy.typing as npt

from ._xp_backend import XpBackend

__all__ = ["CupyBackend"]

#: dtypes that ``cupy.add.at`` supports (CUDA atomicAdd); int64 goes through a uint64 view.
_ATOMIC_ADD_DTYPES = frozenset({"int32", "uint32", "uint64", "float16", "float32", "float64"})


def _cuda_version(number: int) -> str:
    """12040 -> '12.4' (CUDA encodes versions as 1000 * major + 10 * minor)."""
    return f"{number // 1000}.{(number % 1000) // 10}"


class CupyBackend(XpBackend):
    """Arrays are ``cupy.ndarray`` on the current CUDA device; see the module docstring.

    ``xp`` exists for testing: the default is the ``cupy`` module.
    """

    name = "cupy"

    def __init__(self, xp: Any = None) -> None:
        super().__init__(cupy if xp is None else xp, name="cupy")

    # -- availability and description --------------------------------------------------------
    def is_available(self) -> tuple[bool, str]:
        version = getattr(cupy, "__version__", "?")
        try:
            usable = bool(cupy.cuda.is_available())
        except Exception as exc:  # any failure of the driver/runtime query is a reason
            return False, f"CuPy {version} cannot query CUDA ({type(exc).__name__}: {exc})"
        if not usable:
            try:
                count = cupy.cuda.runtime.getDeviceCount()
                detail = f"the CUDA runtime reports {count} device(s), none usable"
            except Exception as exc:  # getDeviceCount raises (not 0) without a driver or GPU
                detail = f"{type(exc).__name__}: {exc}"
            return False, (
                f"CuPy {version} is installed but finds no usable CUDA GPU ({detail}); check "
                "the NVIDIA driver, CUDA_VISIBLE_DEVICES and that the cupy-cuda12x wheel "
                "matches the driver's CUDA version"
            )
        try:
            probe = self.xp.arange(4, dtype=self.xp.int64)
            if int((probe * probe).sum()) != 14:
                return False, f"CuPy {version}: a test kernel gave a wrong result on this GPU"
        except Exception as exc:
            return False, (
                f"CuPy {version} sees a GPU but cannot run a kernel on it "
                f"({type(exc).__name__}: {exc}); the driver may be older than the CUDA "
                "version of the cupy-cuda12x wheel"
            )
        return True, "ok"

    def describe(self) -> str:
        parts = [f"CuPy {getattr(cupy, '__version__', '?')}"]
        try:
            device = cupy.cuda.Device()
            props = cupy.cuda.runtime.getDeviceProperties(device.id)
            name = props.get("name", b"?")
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            capability = str(device.compute_capability)
            free, total = device.mem_info
            parts.append(
                f"on GPU {device.id}: {name}, compute capability "
                f"{capability[:-1]}.{capability[-1:]}, "
                f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)"
            )
        except Exception as exc:
            parts.append(f"(device query failed: {type(exc).__name__}: {exc})")
        try:
            runtime = _cuda_version(int(cupy.cuda.runtime.runtimeGetVersion()))
            driver = _cuda_version(int(cupy.cuda.runtime.driverGetVersion()))
            parts.append(f"CUDA runtime {runtime}, driver {driver}")
        except Exception as exc:
            parts.append(f"(CUDA version query failed: {type(exc).__name__}: {exc})")
        return ", ".join(parts)

    def synchronize(self) -> None:
        cupy.cuda.get_current_stream().synchronize()

    # -- device hooks ------------------------------------------------------------------------
    def _to_host(self, array: Any) -> npt.NDArray[Any]:
        return np.asarray(cupy.asnumpy(array))

    def _scatter_add_integers(self, target: Any, indices: Any, values: Any) -> bool:
        dtype = str(target.dtype)
        if dtype == "int64":
            # CUDA has no signed 64-bit atomicAdd; two's-complement addition is the same
            # operation on the uint64 view, wrapping modulo 2**64 exactly like int64.
            self.xp.add.at(target.view(self.xp.uint64), indices, values.astype(self.xp.uint64))
            return True
        if dtype in _ATOMIC_ADD_DTYPES:
            self.xp.add.at(target, indices, values)
            return True
        return False

    def _index_add_general(self, target: Any, indices: Any, values: Any) -> None:
        # ``cupy.add.at`` runs CUDA atomics (``cupyx.scatter_add``, its older name, is deprecated)
        if str(target.dtype) == "int64":
            values = self.xp.asarray(values).astype(self.xp.int64).astype(self.xp.uint64)
            self.xp.add.at(target.view(self.xp.uint64), indices, values)
        else:
            self.xp.add.at(target, indices, values)
