"""A NumPy-backed stand-in for CuPy that keeps CuPy's rules, so CI without a GPU can run the CuPy backend.

``FakeCupy`` plays the ``cupy`` module and ``FakeCupyx`` the ``cupyx`` module. Arrays are
:class:`DeviceArray` (a NumPy array subclass) and behave like ``cupy.ndarray`` where it matters:

* mixing a device array with a host (NumPy) array of one or more dimensions raises ``TypeError``
  (CuPy refuses implicit host/device mixing), so scheme code that forgets ``backend.asarray``
  fails here as it would on a GPU;
* Python integers outside int64 raise ``OverflowError`` in elementwise operations (CuPy cannot
  pass them to a kernel, cupy/cupy#8709 and #9753; NumPy 2 accepts them for uint64);
* reductions return 0-d device arrays, not NumPy scalars;
* ``cupy.add.at`` (and ``cupyx.scatter_add``, its deprecated older name) accepts only the CUDA
  atomicAdd dtypes (not int64) and wraps out-of-bounds indices instead of raising, as CuPy does;
  ``FakeCupy.atomic_adds`` counts the calls;
* ``cupy.cuda`` answers device queries; it can pretend there is no GPU (``is_available()``
  False and ``runtime.getDeviceCount()`` raising, as CuPy does without a driver) or that
  kernels cannot run.

``load_cupy_backend`` imports ``backends/cupy_backend.py`` against these fakes under a private
module name, leaving ``sys.modules`` as it was.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
SCATTER_ADD_DTYPES = ("int32", "uint32", "uint64", "float16", "float32", "float64")


class CUDARuntimeError(RuntimeError):
    """Stands in for ``cupy_backends.cuda.api.runtime.CUDARuntimeError``."""


class DeviceArray(np.ndarray):  # type: ignore[type-arg]
    """NumPy memory that behaves like a ``cupy.ndarray`` towards host arrays (see module doc)."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _check_operands(ufunc.__name__, inputs, check_ints=True)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        _check_operands(func.__name__, (args, tuple(kwargs.values())), check_ints=False)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def get(self) -> np.ndarray:  # type: ignore[type-arg]
        """``cupy.ndarray.get()``: a host copy."""
        return np.array(self.view(np.ndarray))


def _is_host_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and not isinstance(value, DeviceArray) and value.ndim > 0


def _check_operands(name: str, values: Any, *, check_ints: bool) -> None:
    for value in values:
        if isinstance(value, list | tuple):
            _check_operands(name, value, check_ints=check_ints)
        elif _is_host_array(value):
            raise TypeError(
                f"Unsupported type {type(value)} in {name}: a host (NumPy) array was mixed with "
                "device arrays (CuPy refuses this; convert with backend.asarray first)"
            )
        elif (
            check_ints
            and isinstance(value, int)
            and not isinstance(value, bool)
            and not INT64_MIN <= value <= INT64_MAX
        ):
            raise OverflowError(
                f"Python int too large to convert to C long ({value} in {name}): CuPy passes "
                "Python integers to kernels as int64"
            )


def _unwrap(value: Any) -> Any:
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, DeviceArray):
        return value
    if isinstance(value, np.ndarray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _device_function(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        _check_operands(name, (args, tuple(kwargs.values())), check_ints=False)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    call.__name__ = name
    return call


class _FakeUfunc:
    """A NumPy ufunc with device rules on its operands (``cupy.add``, ``cupy.add.at`` ...)."""

    def __init__(self, ufunc: np.ufunc, owner: FakeCupy) -> None:
        self._ufunc = ufunc
        self._owner = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _check_operands(self._ufunc.__name__, args, check_ints=True)
        return _wrap(self._ufunc(*_unwrap(args), **_unwrap(kwargs)))

    def __getattr__(self, method: str) -> Any:
        if method == "at" and self._ufunc is np.add:
            return self._add_at
        bound = getattr(self._ufunc, method)
        if not callable(bound):
            return bound
        return _device_function(f"{self._ufunc.__name__}.{method}", bound)

    def _add_at(self, a: Any, indices: Any, b: Any) -> None:
        """``cupy.add.at``: CUDA atomicAdd, so CuPy's dtype and index rules."""
        _atomic_add("cupy.add.at", a, indices, b)
        self._owner.atomic_adds += 1


def _atomic_add(name: str, a: Any, slices: Any, value: Any) -> None:
    """``a[slices] += value`` with repeats, as CuPy's atomic scatter does it (and refuses it)."""
    if not isinstance(a, DeviceArray):
        raise TypeError(f"{name} needs a cupy.ndarray target, got {type(a)}")
    if a.dtype.name not in SCATTER_ADD_DTYPES:
        raise TypeError(
            f"{name} only supports int32, float16, float32, float64, uint32, uint64, as data type"
        )
    index = _unwrap(slices)
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu" and a.ndim:
        index = index % a.shape[0]  # CuPy wraps out-of-bounds indices instead of raising
    values = np.asarray(_unwrap(value)).astype(a.dtype)  # CuPy casts values to a.dtype
    np.add.at(a.view(np.ndarray), index, values)


class _Stream:
    def __init__(self) -> None:
        self.synchronized = 0

    def synchronize(self) -> None:
        self.synchronized += 1


class _Device:
    def __init__(self, device_id: int | None = None) -> None:
        self.id = 0 if device_id is None else device_id
        self.compute_capability = "90"
        self.mem_info = (70 * 2**30, 80 * 2**30)

    def synchronize(self) -> None:
        return None


class _Runtime:
    def __init__(self, cuda: FakeCuda) -> None:
        self._cuda = cuda

    def getDeviceCount(self) -> int:
        if not self._cuda.available:
            raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return 1

    def getDeviceProperties(self, device_id: int) -> dict[str, Any]:
        return {"name": b"Fake GPU (NumPy)", "major": 9, "minor": 0, "totalGlobalMem": 80 * 2**30}

    def runtimeGetVersion(self) -> int:
        return 12040

    def driverGetVersion(self) -> int:
        return 12080


class FakeCuda:
    """``cupy.cuda``: availability, device properties, the current stream."""

    def __init__(self, available: bool = True, query_error: Exception | None = None) -> None:
        self.available = available
        self.query_error = query_error
        self.runtime = _Runtime(self)
        self.stream = _Stream()
        self.Device = _Device

    def is_available(self) -> bool:
        if self.query_error is not None:
            raise self.query_error
        return self.available

    def get_current_stream(self) -> _Stream:
        return self.stream


class FakeCupy(types.ModuleType):
    """Plays the ``cupy`` module: NumPy functions under device rules (see the module doc)."""

    ndarray = DeviceArray
    __version__ = "13.99.0-fake"

    def __init__(
        self,
        *,
        available: bool = True,
        query_error: Exception | None = None,
        broken_kernels: bool = False,
    ) -> None:
        super().__init__("cupy")
        self.cuda = FakeCuda(available, query_error)
        self.broken_kernels = broken_kernels
        #: calls of ``cupy.add.at`` (atomic scatter-adds)
        self.atomic_adds = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            return _FakeUfunc(attr, self)
        if callable(attr) and not isinstance(attr, type):
            return _device_function(name, attr)
        return attr

    def asarray(self, data: Any, dtype: Any = None) -> DeviceArray:
        """Host data is copied to the "device"; device arrays pass through (cast if asked)."""
        if isinstance(data, DeviceArray):
            return data if dtype is None or data.dtype == np.dtype(dtype) else data.astype(dtype)
        return np.array(_unwrap(data), dtype=dtype).view(DeviceArray)

    def array(self, data: Any, dtype: Any = None, copy: bool = True) -> DeviceArray:
        return np.array(_unwrap(data), dtype=dtype, copy=copy).view(DeviceArray)

    def arange(self, *args: Any, **kwargs: Any) -> DeviceArray:
        if self.broken_kernels:
            raise RuntimeError("CUDA_ERROR_NO_BINARY_FOR_GPU: no kernel image is available")
        return np.arange(*args, **kwargs).view(DeviceArray)

    def argsort(self, a: Any, axis: int = -1, kind: Any = None) -> DeviceArray:
        """``cupy.argsort``: no choice of algorithm, so give none (NumPy's default is not stable)."""
        if kind is not None:
            raise ValueError("CuPy's argsort does not take kind (older versions reject it)")
        return np.argsort(_unwrap(a), axis=axis).view(DeviceArray)

    def asnumpy(self, array: Any) -> np.ndarray:  # type: ignore[type-arg]
        """``cupy.asnumpy``: device arrays are copied to the host; host arrays pass through."""
        if isinstance(array, DeviceArray):
            return np.array(array.view(np.ndarray))
        return np.asarray(array)


class FakeCupyx(types.ModuleType):
    """Plays the ``cupyx`` module: ``scatter_add`` with CuPy's dtype and index rules."""

    def __init__(self) -> None:
        super().__init__("cupyx")
        self.calls = 0

    def scatter_add(self, a: Any, slices: Any, value: Any) -> None:
        """``cupyx.scatter_add`` (deprecated in CuPy for ``cupy.add.at``): the same rules."""
        _atomic_add("scatter_add", a, slices, value)
        self.calls += 1


def load_cupy_backend(cupy_module: FakeCupy, cupyx_module: FakeCupyx) -> types.ModuleType:
    """``backends/cupy_backend.py`` imported against the fakes, under a private module name."""
    import hennframework_backends

    path = Path(hennframework_backends.__file__).with_name("cupy_backend.py")
    saved = {name: sys.modules.get(name) for name in ("cupy", "cupyx")}
    sys.modules["cupy"] = cupy_module
    sys.modules["cupyx"] = cupyx_module
    try:
        # inside the package, so the module's relative imports resolve; never put in sys.modules
        spec = importlib.util.spec_from_file_location(
            "hennframework_backends._henn_emulated_cupy_backend", path
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


def emulated_cupy(**options: Any) -> tuple[Any, FakeCupy, FakeCupyx]:
    """A ``CupyBackend`` running on fresh fakes, and the fakes (``options`` go to :class:`FakeCupy`)."""
    fake, fake_x = FakeCupy(**options), FakeCupyx()
    module = load_cupy_backend(fake, fake_x)
    return module.CupyBackend(), fake, fake_x


def emulated_cupy_backend(**options: Any) -> Any:
    """A ``CupyBackend`` instance running on the fakes (``options`` go to :class:`FakeCupy`)."""
    return emulated_cupy(**options)[0]
