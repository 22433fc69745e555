"""The attack that makes every named integer-vector parameter set insecure, kept as a test so that the
InsecureParametersWarning (and the docs' "INSECURE") stay true.

With S = [I, T] and no modulus, ``c_top + T c_bottom = w x + e`` with ``c_bottom`` small, so
``round(c[:m] / w)`` recovers ``x`` from a fresh public-key ciphertext WITHOUT any key. The public
encryption key also gives T away: ``M_top - I* = E - T A`` with A public and E small.
If one day a parameter set makes these attacks fail, this test fails and the warning can be revisited.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework.exceptions import InsecureParametersWarning
from hennframework.schemes.integer_vector import PARAMETER_SETS, IntegerVectorScheme, params
from hennframework.testing import kit_settings
from hennframework.testing import strategies as hst

NAMED_SETS = sorted(PARAMETER_SETS)
DIMS = (1, 4, 16)


def attack(data: np.ndarray, m: int, w: int) -> list[list[int]]:
    """round(c[:m] / w), halves up, in Python integers: uses the public ciphertext and w only."""
    rows = np.asarray(data).reshape(-1, data.shape[-1]).tolist()
    return [[(int(c) + w // 2) // w for c in row[:m]] for row in rows]


@pytest.fixture(scope="module", params=NAMED_SETS)
def scheme_and_keys(request: pytest.FixtureRequest) -> tuple[IntegerVectorScheme, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        scheme = IntegerVectorScheme(request.param)
    keys = scheme.keygen(seed=5, max_dim=max(DIMS), dims=DIMS, products=())
    return scheme, keys


@pytest.mark.parametrize("m", DIMS)
@kit_settings()
@given(data=st.data())
def test_fresh_public_key_ciphertexts_reveal_the_plaintext(
    scheme_and_keys: tuple[IntegerVectorScheme, object], m: int, data: st.DataObject
) -> None:
    scheme, keys = scheme_and_keys
    p = scheme.params
    magnitude = data.draw(st.sampled_from([10, 1000, p.max_plaintext]), label="magnitude")
    x = data.draw(hst.integer_arrays((data.draw(st.integers(1, 4)), m), magnitude), label="x")
    ciphertext = scheme.encrypt(x if m > 1 else x[:, 0], keys.public, dim=m if m > 1 else None)  # type: ignore[attr-defined]
    assert attack(ciphertext.data, m, p.w) == x.tolist()


def test_fixed_point_ciphertexts_reveal_the_values(
    scheme_and_keys: tuple[IntegerVectorScheme, object],
) -> None:
    scheme, keys = scheme_and_keys
    values = np.array([0.5, -1.25, 3.0, 0.001])
    tensor = scheme.encrypt_tensor(values, keys.public)  # type: ignore[attr-defined]
    recovered = np.array(attack(tensor.data, 1, scheme.params.w))[:, 0] / scheme.params.scale
    assert np.array_equal(recovered, scheme.decrypt_tensor(tensor, keys.secret))  # type: ignore[attr-defined]


def test_public_key_reveals_t(scheme_and_keys: tuple[IntegerVectorScheme, object]) -> None:
    """Each row of the public 16-vector encryption key pins T's row: |M_top - I* + t A| <= e_bound
    holds for the true t only."""
    scheme, keys = scheme_and_keys
    p = scheme.params
    m = max(DIMS)
    matrix = np.asarray(keys.public.encryption[m].matrix_t).T  # type: ignore[attr-defined]
    a = matrix[m:].astype(object)  # k x (m l), public
    powers = [pow(p.base, d) for d in range(p.digits)]
    candidates = np.arange(-p.t_bound, p.t_bound + 1)
    recovered = []
    for i in range(m):
        expansion = [powers[c % p.digits] if c // p.digits == i else 0 for c in range(m * p.digits)]
        difference = [
            ((int(v) - e) + (1 << 63)) % (1 << 64) - (1 << 63)
            for v, e in zip(matrix[i].tolist(), expansion, strict=True)
        ]  # E - t A
        diff = np.array(difference, dtype=np.int64)
        a_row = np.asarray(a[0], dtype=np.int64)
        fits = np.abs(diff[None, :] + candidates[:, None] * a_row[None, :]).max(axis=1) <= p.e_bound
        assert fits.sum() == 1, f"row {i}: {fits.sum()} candidates"
        recovered.append(int(candidates[fits][0]))
    assert p.k == 1
    assert recovered == keys.secret.t_matrix[:m, 0].tolist()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMED_SETS)
def test_insecure_warning_once_per_process_and_set(name: str) -> None:
    params._warned.discard(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        IntegerVectorScheme(name)
        IntegerVectorScheme(name)
    insecure = [w for w in caught if issubclass(w.category, InsecureParametersWarning)]
    assert len(insecure) == 1, [str(w.message) for w in insecure]
    message = str(insecure[0].message)
    assert name in message and "NO security" in message and "round(c[:m] / w)" in message
    assert name in params._warned


@pytest.mark.parametrize("name", NAMED_SETS)
def test_named_sets_declare_no_security(name: str) -> None:
    parameter_set = IntegerVectorScheme.parameter_sets()[name]
    assert parameter_set.security_bits is None and not parameter_set.is_secure
    assert parameter_set.security_label().startswith("INSECURE")
    assert "INSECURE" in IntegerVectorScheme.describe()
