"""The CuPy backend: registration, the two actionable failures, dispatch, and (on a GPU) the device.

Everything but the last section runs without a GPU and without CuPy: a missing CuPy is simulated
by blocking the import, a machine without a GPU and a working one by the NumPy-backed fake CuPy of
``henn_fake_cupy.py``. Tests marked ``gpu`` need CuPy and a CUDA device and are skipped (with the
reason) elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
from henn_fake_cupy import (
    CUDARuntimeError,
    DeviceArray,
    FakeCupy,
    FakeCupyx,
    emulated_cupy,
    emulated_cupy_backend,
)

from hennframework import registry
from hennframework.exceptions import BackendUnavailableError, InputError, PluginDependencyError

MODULE = "hennframework_backends.cupy_backend"


def install_fake_cupy(
    monkeypatch: pytest.MonkeyPatch, **options: Any
) -> tuple[FakeCupy, FakeCupyx]:
    """Make ``import cupy`` / ``import cupyx`` return fakes (with the ``clean_registry`` fixture,
    which makes the backend module import afresh and forgets it afterwards)."""
    fake, fake_x = FakeCupy(**options), FakeCupyx()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupyx", fake_x)
    return fake, fake_x


def quiet_scheme(backend: Any = None) -> Any:
    """The integer-vector scheme on ``backend`` (a name, an instance, or None: the configured one)."""
    import hennframework

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hennframework.get_scheme("integer-vector", "default", backend)


# -- registration and the actionable errors (CI, no GPU) -------------------------------------
def test_entry_point_declared() -> None:
    statuses = {s.name: s for s in registry.list_plugins("backend")}
    assert statuses["cupy"].target == f"{MODULE}:CupyBackend"


def test_missing_cupy_names_the_extra(monkeypatch: pytest.MonkeyPatch, clean_registry: Any) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ModuleNotFoundError
    with pytest.raises(PluginDependencyError, match=r'pip install "hennframework\[cupy\]"') as info:
        registry.get_backend("cupy")
    assert isinstance(info.value.__cause__, ImportError)
    status = {s.name: s for s in registry.list_plugins("backend")}["cupy"]
    assert not status.loads and not status.usable
    assert "hennframework[cupy]" in status.detail


@pytest.mark.skipif(
    importlib.util.find_spec("cupy") is not None,
    reason="CuPy is installed here; this checks the message a user without CuPy gets",
)
def test_missing_cupy_from_the_environment_variable() -> None:
    """``HENN_BACKEND=cupy`` without CuPy: one clear error naming the extra, in a fresh process."""
    env = {**os.environ, "HENN_BACKEND": "cupy"}
    run = subprocess.run(
        [sys.executable, "-c", "import hennframework; hennframework.get_backend()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0
    assert "PluginDependencyError" in run.stderr
    assert 'pip install "hennframework[cupy]"' in run.stderr


def test_no_gpu_is_backend_unavailable(
    monkeypatch: pytest.MonkeyPatch, clean_registry: Any
) -> None:
    """CuPy installed, no device: is_available() is False and getDeviceCount() raises."""
    fake, _ = install_fake_cupy(monkeypatch, available=False)
    with pytest.raises(CUDARuntimeError):  # as CuPy does: it raises, it does not return 0
        fake.cuda.runtime.getDeviceCount()
    with pytest.raises(BackendUnavailableError) as info:
        registry.get_backend("cupy")
    message = str(info.value)
    assert "no usable CUDA GPU" in message
    assert "cudaErrorNoDevice" in message  # the runtime's own reason is passed on
    assert "HENN_BACKEND=numpy" in message  # and the way out
    status = {s.name: s for s in registry.list_plugins("backend")}["cupy"]
    assert status.loads and not status.usable
    assert "cudaErrorNoDevice" in status.detail


def test_cuda_query_error_is_the_reason(
    monkeypatch: pytest.MonkeyPatch, clean_registry: Any
) -> None:
    install_fake_cupy(monkeypatch, query_error=OSError("libcuda.so.1: cannot open shared object"))
    with pytest.raises(BackendUnavailableError, match=r"libcuda\.so\.1"):
        registry.get_backend("cupy")


def test_gpu_without_working_kernels(monkeypatch: pytest.MonkeyPatch, clean_registry: Any) -> None:
    install_fake_cupy(monkeypatch, broken_kernels=True)
    with pytest.raises(BackendUnavailableError, match="cannot run a kernel"):
        registry.get_backend("cupy")


def test_dispatch_by_name_and_environment(
    monkeypatch: pytest.MonkeyPatch, clean_registry: Any
) -> None:
    """Selecting the GPU is configuration only; ciphertexts then live in device arrays."""
    fake, fake_x = install_fake_cupy(monkeypatch)
    backend = registry.get_backend("cupy")
    assert type(backend).__module__ == MODULE and backend.name == "cupy"
    assert backend.xp is fake
    monkeypatch.setenv("HENN_BACKEND", "cupy")
    scheme = quiet_scheme()
    assert scheme.backend is backend
    keys = scheme.keygen(seed=5, max_dim=4, dims=(1, 4), products=())
    values = np.array([[1, -2, 3, 4], [5, 6, -7, 8]])
    ct = scheme.encrypt(values, keys.public, dim=4, seed=9)
    doubled = ct + ct * 3
    assert isinstance(ct.data, DeviceArray) and isinstance(doubled.data, DeviceArray)
    assert isinstance(doubled.noise, DeviceArray)
    assert np.array_equal(scheme.decrypt(doubled, keys), 4 * values)
    summed = ct.scatter_add([1, 1], ct)  # int64 scatter through CUDA-style uint64 atomics
    assert fake.atomic_adds >= 1 and fake_x.calls == 0  # cupy.add.at, not the deprecated name
    assert np.array_equal(
        scheme.decrypt(summed, keys), np.array([values[0], values[1] + values.sum(0)])
    )
    before = fake.cuda.stream.synchronized
    backend.synchronize()
    assert fake.cuda.stream.synchronized == before + 1


def test_describe_names_device_and_versions() -> None:
    text = emulated_cupy_backend().describe()
    for part in (
        "CuPy 13.99.0-fake",
        "Fake GPU (NumPy)",
        "compute capability 9.0",
        "80.0 GiB",
        "70.0 GiB free",
        "CUDA runtime 12.4",
        "driver 12.8",
    ):
        assert part in text


def test_describe_survives_failing_queries() -> None:
    backend, fake, _ = emulated_cupy()

    def broken(device_id: int) -> dict[str, Any]:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    fake.cuda.runtime.getDeviceProperties = broken  # type: ignore[method-assign]
    text = backend.describe()
    assert "device query failed" in text and "CUDA runtime 12.4" in text


def test_emulated_backend_leaves_sys_modules_alone() -> None:
    before = {name: sys.modules.get(name) for name in ("cupy", "cupyx", MODULE)}
    emulated_cupy_backend()
    assert {name: sys.modules.get(name) for name in before} == before


# -- the fake is faithful where it matters (so the emulated runs can fail) --------------------
def test_fake_cupy_refuses_what_cupy_refuses() -> None:
    fake, fake_x = FakeCupy(), FakeCupyx()
    device = fake.asarray(np.arange(4, dtype=np.int64))
    with pytest.raises(TypeError, match="host"):
        device + np.arange(4)
    with pytest.raises(TypeError, match="host"):
        np.arange(4) * device
    with pytest.raises(TypeError, match="host"):
        fake.concatenate([device, np.arange(2)])
    with pytest.raises(OverflowError):
        _ = device.view(np.uint64) >= 2**63
    with pytest.raises(TypeError, match="scatter_add only supports"):
        fake_x.scatter_add(device, fake.asarray(np.array([0, 0])), device[:2])
    with pytest.raises(TypeError, match=r"cupy\.add\.at only supports"):
        fake.add.at(device, fake.asarray(np.array([0, 0])), device[:2])
    assert isinstance(device.sum(), DeviceArray) and device.sum().ndim == 0
    wrapped = fake.zeros(3, dtype=np.uint64)
    fake.add.at(wrapped, fake.asarray(np.array([4])), fake.asarray(np.array([1], dtype=np.uint64)))
    assert wrapped.tolist() == [0, 1, 0]  # out-of-bounds index wrapped, as CuPy does


def test_int64_index_add_uses_uint64_atomics() -> None:
    backend, fake, _ = emulated_cupy()
    target = backend.asarray(np.array([2**63 - 1, 0, -5], dtype=np.int64))
    backend.index_add(
        target,
        backend.asarray(np.array([0, 0, 2])),
        backend.asarray(np.array([1, 1, 5], dtype=np.int64)),
    )
    assert backend.to_numpy(target).tolist() == [-(2**63) + 1, 0, 0]
    assert fake.atomic_adds == 1  # one atomic scatter on the uint64 view (no int64 atomicAdd)


def test_ciphertexts_of_two_backends() -> None:
    """A host scheme decrypts a device ciphertext (and the reverse); combining them is refused
    with an error that names both backends, not the array library's conversion TypeError."""
    host = quiet_scheme("numpy")
    device = quiet_scheme(emulated_cupy_backend())
    keys = host.keygen(seed=21)
    values = np.array([0.5, -1.25, 2.0])
    on_host = host.encrypt_tensor(values, keys.public)
    on_device = device.encrypt_tensor(values, keys.public)
    assert type(on_device.data) is not type(on_host.data)
    for scheme in (host, device):
        for ciphertext in (on_host, on_device):
            decrypted = scheme.decrypt_tensor(ciphertext, keys.secret)
            assert isinstance(decrypted, np.ndarray)
            np.testing.assert_array_equal(decrypted, values)
    for combine, what in (
        (lambda: on_host + on_device, "add"),
        (lambda: on_device * on_host, "multiply"),
        (lambda: host.multiply(on_host, on_device), "multiply"),
    ):
        with pytest.raises(InputError, match=f"cannot {what}: .*'(numpy|cupy)'.*'(numpy|cupy)'"):
            combine()


def test_demo_on_a_gpu_backend_says_the_cpu_is_faster_for_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_registry: Any
) -> None:
    """``henn demo xor --backend cupy`` trains (here on the emulated CuPy) after a note that such
    a small network runs faster on the NumPy backend; the NumPy backend gets no note."""
    from hennframework import cli

    install_fake_cupy(monkeypatch)
    for backend, noted in (("cupy", True), ("numpy", False)):
        argv = ["--backend", backend, "demo", "xor", "--iterations", "3", "--json"]
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 1, err  # 3 iterations do not learn XOR (exit 1); they ran
        assert json.loads(out)["backend"] == backend
        assert ("slower than 'numpy' for a network this small" in err) is noted


# -- on a real GPU ----------------------------------------------------------------------------
def _gpu_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return 'CuPy is not installed (pip install "hennframework[cupy]")'
    try:
        import cupy

        if not cupy.cuda.is_available():
            return "cupy.cuda.is_available() is False: no usable CUDA GPU here"
    except Exception as exc:
        return f"CUDA is not usable here ({type(exc).__name__}: {exc})"
    return None


GPU_REASON = _gpu_reason()
needs_gpu = [pytest.mark.gpu, pytest.mark.skipif(GPU_REASON is not None, reason=str(GPU_REASON))]


@pytest.mark.usefixtures("clean_registry")
class TestOnGpu:
    pytestmark = needs_gpu

    def test_backend_is_usable_and_described(self) -> None:
        backend = registry.get_backend("cupy")
        ok, why = backend.is_available()
        assert ok, why
        assert "compute capability" in backend.describe()

    def test_ciphertexts_stay_on_the_device(self) -> None:
        import cupy

        scheme = quiet_scheme("cupy")
        keys = scheme.keygen(seed=3, max_dim=8, dims=(8,), products=(8,))
        scheme.add_dot_key(keys, 8)
        values = np.arange(16).reshape(2, 8) - 5
        ct = scheme.encrypt(values, keys.public, dim=8, seed=4)
        dot = ct.dot(ct * ct)
        assert isinstance(ct.data, cupy.ndarray) and isinstance(dot.data, cupy.ndarray)
        assert np.array_equal(scheme.decrypt(dot, keys)[:, 0], (values**3).sum(axis=1))

    def test_host_and_device_ciphertexts(self) -> None:
        host, device = quiet_scheme("numpy"), quiet_scheme("cupy")
        keys = host.keygen(seed=22)
        values = np.array([0.5, -1.25, 2.0])
        on_device = device.encrypt_tensor(values, keys.public)
        np.testing.assert_array_equal(host.decrypt_tensor(on_device * 1.0, keys.secret), values)
        with pytest.raises(InputError, match="'numpy' backend and the other's on 'cupy'"):
            _ = host.encrypt_tensor(values, keys.public) + on_device

    def test_large_exact_products_on_device(self) -> None:
        backend = registry.get_backend("cupy")
        rng = np.random.default_rng(0)
        left = rng.integers(-(2**63), 2**63 - 1, size=(257, 1031), dtype=np.int64, endpoint=True)
        right = rng.integers(-(2**63), 2**63 - 1, size=(1031, 65), dtype=np.int64, endpoint=True)
        with np.errstate(over="ignore"):
            expected = left @ right  # NumPy's int64 matmul wraps modulo 2**64
        result = backend.to_numpy(
            backend.matmul_int_wrap(backend.asarray(left), backend.asarray(right))
        )
        assert np.array_equal(result, expected)
        digits = rng.integers(-128, 129, size=(4096, 1031), dtype=np.int64)
        with np.errstate(over="ignore"):
            expected = digits @ right
        result = backend.to_numpy(
            backend.matmul_small_left(backend.asarray(digits), backend.asarray(right), 128)
        )
        assert np.array_equal(result, expected)

    def test_float_index_add_is_deterministic_and_numpy_ordered(self) -> None:
        backend = registry.get_backend("cupy")
        rng = np.random.default_rng(1)
        indices = rng.integers(0, 50, size=20000)
        values = rng.standard_normal(20000) * 10.0 ** rng.integers(-10, 10, 20000)
        expected = np.zeros(50)
        np.add.at(expected, indices, values)
        for _ in range(3):
            target = backend.zeros((50,), dtype="float64")
            backend.index_add(target, backend.asarray(indices), backend.asarray(values))
            assert backend.to_numpy(target).tobytes() == expected.tobytes()

    def test_integer_index_add_runs_atomics_without_deprecated_calls(self) -> None:
        """int64 targets (uint64 atomics), repeats and tuple indices: exact, and through
        ``cupy.add.at`` (``cupyx.scatter_add`` warns that it is deprecated in CuPy 14)."""
        backend = registry.get_backend("cupy")
        rng = np.random.default_rng(2)
        indices = rng.integers(0, 40, size=5000)
        values = rng.integers(-(2**62), 2**62, size=(5000, 3), dtype=np.int64)
        expected = rng.integers(-(2**62), 2**62, size=(40, 3), dtype=np.int64)
        target = backend.asarray(expected.copy())
        with np.errstate(over="ignore"):
            np.add.at(expected, indices, values)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            backend.index_add(target, backend.asarray(indices), backend.asarray(values))
            assert np.array_equal(backend.to_numpy(target), expected)
            rows, cols = rng.integers(0, 40, size=300), rng.integers(0, 3, size=300)
            extra = rng.integers(-(2**62), 2**62, size=300, dtype=np.int64)
            with np.errstate(over="ignore"):
                np.add.at(expected, (rows, cols), extra)
            backend.index_add(
                target, (backend.asarray(rows), backend.asarray(cols)), backend.asarray(extra)
            )
            assert np.array_equal(backend.to_numpy(target), expected)

    def test_large_copies_to_the_host_are_exact(self) -> None:
        backend = registry.get_backend("cupy")
        rng = np.random.default_rng(3)
        values = rng.integers(-(2**63), 2**63 - 1, size=(100_000, 16), dtype=np.int64)
        device = backend.asarray(values)
        assert np.array_equal(backend.to_numpy(device), values)  # 12.8 MB
        assert np.array_equal(backend.to_numpy(device[:, ::3]), values[:, ::3])  # strided
        floats = rng.standard_normal((50_000, 8))
        assert backend.to_numpy(backend.asarray(floats)).tobytes() == floats.tobytes()
