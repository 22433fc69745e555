"""Exact-integer layer of the kit on the integer-vector scheme, and bit-exact agreement with a slow
reference written here in plain Python integers (the vectorised int64 / float64-limb code must equal
exact big-integer math, bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework.randomness import RandomSource
from hennframework.schemes.integer_vector import IntegerVectorParams, IntegerVectorScheme
from hennframework.testing import kit_settings
from hennframework.testing import strategies as hst
from hennframework.testing.integer_vector import IntegerVectorExactTests

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

#: Parameter sets for the reference: the named ones (bits and base 2**8; odd divisor 125 in w r
#: for "seed") and two custom ones with k = 2 (T has two columns) and other gadget bases.
CUSTOM = {
    "ref-k2-b5": IntegerVectorParams(
        name="ref-k2-b5", w=2**36, scale=2**10, k=2, t_bound=3, a_bound=5, e_bound=2, gadget_bits=5
    ),
    "ref-k2-b16": IntegerVectorParams(
        name="ref-k2-b16",
        w=3 * 2**30,
        scale=1000,
        k=2,
        t_bound=2,
        a_bound=2,
        e_bound=3,
        gadget_bits=16,
    ),
}
REFERENCE_SETS = ["default", "seed", "vhe", *CUSTOM]


class TestIntegerVectorExact(IntegerVectorExactTests):
    """The exact layer on the named parameter sets and one with k = 2 (T has two columns)."""

    @pytest.fixture(scope="class", params=["default", "seed", "vhe", "ref-k2-b16"])
    @classmethod
    def scheme(cls, request: pytest.FixtureRequest) -> IntegerVectorScheme:
        return IntegerVectorScheme(CUSTOM.get(request.param, request.param))


class TestIntegerVectorExactXp(IntegerVectorExactTests):
    """The exact layer on the CuPy backend's code (float64 limb GEMMs) running on NumPy."""

    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> IntegerVectorScheme:
        from hennframework_backends._xp_backend import XpBackend

        return IntegerVectorScheme("default", backend=XpBackend())


# ================================================================================================
# A slow reference in plain Python integers (written from the paper and docs/scheme.md, sharing no
# code with the package), run on the package's own keys and input ciphertexts.
# ================================================================================================


Matrix = list[list[int]]
WRAP = 1 << 64


def digits_ref(value: int, p: IntegerVectorParams) -> list[int]:
    """Gadget digits of one integer, least significant first (paper: signed bits for b = 1)."""
    if p.gadget_bits == 1:
        sign = (value > 0) - (value < 0)
        magnitude = abs(value)
        assert magnitude >> p.digits == 0, "value too large for the digit count"
        return [sign * ((magnitude >> d) & 1) for d in range(p.digits)]
    base = 1 << p.gadget_bits
    out = []
    for _ in range(p.digits):
        digit = (value + base // 2) % base - base // 2  # balanced: [-B/2, B/2)
        out.append(digit)
        value = (value - digit) // base
    assert value == 0, "value too large for the digit count"
    return out


def round_div_ref(value: int, divisor: int) -> int:
    """round(value / divisor), halves away from zero."""
    magnitude = (abs(value) + divisor // 2) // divisor
    return magnitude if value >= 0 else -magnitude


def signed64(value: int) -> int:
    value %= WRAP
    return value - WRAP if value >= 1 << 63 else value


def key_matrix(t: Matrix, m: int) -> Matrix:
    """S = [I_m, T[:m]] in Python ints."""
    return [[int(i == j) for j in range(m)] + list(t[i]) for i in range(m)]


def switch_ref(
    c: list[int], stored_t: object, source: Matrix, target_t: Matrix, p: IntegerVectorParams
) -> list[int]:
    """c' = M c* with M rebuilt exactly (no wraparound) from the stored matrix and the secret.

    From the stored M (modulo 2**64) the reference recovers A (its last k rows, exact) and
    E = M_top - K* + T' A (mod 2**64, small), checks both are within their bounds, rebuilds
    M_top = K* + E - T' A over the integers, and returns M c* together with a check of the
    key-switching identity S' c' = K c + E c*.
    """
    stored = [[int(v) for v in row] for row in np.asarray(stored_t).T.tolist()]
    rows, k, l_digits = len(source), p.k, p.digits
    base = 1 << p.gadget_bits
    c_star = [d for value in c for d in digits_ref(value, p)]
    expanded = [
        [source[i][j] * base**d for j in range(len(c)) for d in range(l_digits)]
        for i in range(rows)
    ]
    a = stored[rows:]
    assert len(a) == k and all(abs(v) <= p.a_bound for row in a for v in row)
    t_a = [
        [sum(target_t[i][j] * a[j][col] for j in range(k)) for col in range(len(c_star))]
        for i in range(rows)
    ]
    e = [
        [signed64(stored[i][col] - expanded[i][col] + t_a[i][col]) for col in range(len(c_star))]
        for i in range(rows)
    ]
    assert all(abs(v) <= p.e_bound for row in e for v in row), "E outside [-e_bound, e_bound]"
    true_m = [
        [expanded[i][col] + e[i][col] - t_a[i][col] for col in range(len(c_star))]
        for i in range(rows)
    ] + a
    out = [sum(mv * cv for mv, cv in zip(row, c_star, strict=True)) for row in true_m]
    # the identity the construction promises: S' c' = K c + E c*
    s_target = key_matrix(target_t, rows)
    for i in range(rows):
        lhs = sum(s_target[i][j] * out[j] for j in range(rows + k))
        rhs = sum(source[i][j] * c[j] for j in range(len(c))) + sum(
            e[i][col] * c_star[col] for col in range(len(c_star))
        )
        assert lhs == rhs
    return out


def product_key_ref(t: Matrix, m: int, k: int) -> Matrix:
    """Slot i of (S c1) * (S c2): weights 1, T_ij, T_ij T_ij' on the tensor entries."""
    key = []
    for i in range(m):
        row = [int(i == j) for j in range(m)]
        row += [t[i][j] if r == i else 0 for r in range(m) for j in range(k)]
        row += [t[i][j] * t[i][jj] for j in range(k) for jj in range(k)]
        key.append(row)
    return key


def product_tensor_ref(c1: list[int], c2: list[int], m: int, k: int, divisor: int) -> list[int]:
    top = [round_div_ref(c1[i] * c2[i], divisor) for i in range(m)]
    cross = [
        round_div_ref(c1[i] * c2[m + j] + c1[m + j] * c2[i], divisor)
        for i in range(m)
        for j in range(k)
    ]
    bottom = [round_div_ref(c1[m + j] * c2[m + jj], divisor) for j in range(k) for jj in range(k)]
    return top + cross + bottom


def dot_ref(
    c1: list[int],
    c2: list[int],
    h: Matrix,
    stored_t: object,
    vec: Matrix,
    t: Matrix,
    m: int,
    p: IntegerVectorParams,
) -> list[int]:
    """x^T H y: every entry of vec(c1 c2^T) rounded; the two tops' block (weights H, public)
    summed as it is into the first coefficient, the entries with a bottom switched. ``vec`` is
    vec(S^T H S) over all (m + k)**2 entries; ``stored_t`` has rows for the switched entries only
    or for all of them (then its rows for the switched ones are used)."""
    n = m + p.k
    tensor = [round_div_ref(c1[i] * c2[j], p.w) for i in range(n) for j in range(n)]
    switched = [i * n + j for i in range(n) for j in range(n) if i >= m or j >= m]
    stored = np.asarray(stored_t)
    if stored.shape[0] == n * n * p.digits:
        stored = stored.reshape(n * n, p.digits, -1)[switched].reshape(-1, stored.shape[1])
    out = switch_ref(
        [tensor[c] for c in switched], stored, [[vec[0][c] for c in switched]], t[:1], p
    )
    out[0] += sum(h[i][j] * tensor[i * n + j] for i in range(m) for j in range(m))
    return out


def rows_of(ciphertext: object) -> list[list[int]]:
    data = np.asarray(ciphertext.data)  # type: ignore[attr-defined]
    return [[int(v) for v in row] for row in data.reshape(-1, data.shape[-1]).tolist()]


def vectors(
    scheme: IntegerVectorScheme, values: np.ndarray, key: object, m: int, **options: object
) -> object:
    """A batch of m-vector ciphertexts (scalars for m = 1; see IntegerVectorExactTests)."""
    if m == 1:
        return scheme.encrypt(values[..., 0], key, **options)
    return scheme.encrypt(values, key, dim=m, **options)


class TestPythonIntegerReference:
    """The package's ciphertexts equal the reference's, coefficient for coefficient."""

    @pytest.fixture(scope="class", params=REFERENCE_SETS)
    @classmethod
    def scheme(cls, request: pytest.FixtureRequest) -> IntegerVectorScheme:
        return IntegerVectorScheme(CUSTOM.get(request.param, request.param))

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, scheme: IntegerVectorScheme) -> object:
        dims = (1, 2, 3, 4)
        return scheme.keygen(seed=11, max_dim=4, dims=dims, products=dims)

    @pytest.fixture(scope="class")
    @classmethod
    def other_keys(cls, scheme: IntegerVectorScheme) -> object:
        return scheme.keygen(seed=12, max_dim=4, dims=(1,), products=())

    @staticmethod
    def t_of(keys: object) -> Matrix:
        return [[int(v) for v in row] for row in keys.secret.t_matrix.tolist()]  # type: ignore[attr-defined]

    @staticmethod
    def small(scheme: IntegerVectorScheme) -> int:
        """Message magnitude whose products stay exact and decryptable for every set here."""
        return 40

    @kit_settings()
    @given(data=st.data())
    def test_decompose(self, scheme: IntegerVectorScheme, data: st.DataObject) -> None:
        p = scheme.params
        limit = (1 << 62) - 1
        values = data.draw(hst.integer_arrays((data.draw(st.integers(1, 3)), 3), limit), label="v")
        got = np.asarray(scheme.decompose(scheme.backend.asarray(values)))
        want = [[d for v in row for d in digits_ref(int(v), p)] for row in values.tolist()]
        assert got.tolist() == want
        assert np.abs(got).max(initial=0) <= p.digit_bound
        # a transposed (non-contiguous) array, as a sliced or transposed ciphertext passes it
        strided = scheme.backend.asarray(np.ascontiguousarray(values.T)).T
        assert np.asarray(scheme.decompose(strided)).tolist() == want

    @kit_settings()
    @given(data=st.data())
    def test_public_key_encryption(
        self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject
    ) -> None:
        p = scheme.params
        m = data.draw(st.integers(1, 4), label="m")
        seed = data.draw(st.integers(0, 2**32), label="seed")
        x = data.draw(
            hst.integer_arrays((data.draw(st.integers(1, 3)), m), p.max_plaintext), label="x"
        )
        got = rows_of(vectors(scheme, x, keys.public, m, seed=seed))  # type: ignore[attr-defined]
        # the fresh noise e0 is the first draw from the seeded stream (encrypt's documented seed)
        e0 = RandomSource(seed).integers(-p.e_bound, p.e_bound, x.shape).tolist()
        stored = keys.public.encryption[m].matrix_t  # type: ignore[attr-defined]
        identity = [[int(i == j) for j in range(m)] for i in range(m)]
        t = self.t_of(keys)[:m]
        for row, xs, es in zip(got, x.tolist(), e0, strict=True):
            c0 = [p.w * xi + ei for xi, ei in zip(xs, es, strict=True)]
            assert row == switch_ref(c0, stored, identity, t, p)

    @kit_settings()
    @given(data=st.data())
    def test_key_switch(
        self, scheme: IntegerVectorScheme, keys: object, other_keys: object, data: st.DataObject
    ) -> None:
        p = scheme.params
        m = data.draw(st.integers(1, 4), label="m")
        x = data.draw(hst.integer_arrays((2, m), p.max_plaintext // 4), label="x")
        switch = scheme.make_switch_key(keys, other_keys, dim=m)  # type: ignore[arg-type]
        a = vectors(scheme, x, keys.public, m)  # type: ignore[attr-defined]
        got = rows_of(a.switch_key(switch))  # type: ignore[attr-defined]
        source = key_matrix(self.t_of(keys), m)
        target = self.t_of(other_keys)[:m]
        for row, c in zip(got, rows_of(a), strict=True):
            assert row == switch_ref(c, switch.matrix_t, source, target, p)

    @kit_settings()
    @given(data=st.data())
    def test_product(self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject) -> None:
        p = scheme.params
        m = data.draw(st.integers(1, 4), label="m")
        fixed = data.draw(st.booleans(), label="fixed point")
        if fixed:
            x = data.draw(hst.real_arrays((2, m), 4.0), label="x")
            y = data.draw(hst.real_arrays((2, m), 4.0), label="y")
            options = {"scale": p.scale}
        else:
            x = data.draw(hst.integer_arrays((2, m), self.small(scheme)), label="x")
            y = data.draw(hst.integer_arrays((2, m), self.small(scheme)), label="y")
            options = {}
        a = vectors(scheme, x, keys.public, m, **options)  # type: ignore[attr-defined]
        b = vectors(scheme, y, keys.public, m, **options)  # type: ignore[attr-defined]
        divisor = p.w * (p.scale if fixed else 1)
        got = rows_of(a * b)  # type: ignore[operator]
        t = self.t_of(keys)
        stored = keys.public.evaluation.keys[f"product:{m}"].matrix_t  # type: ignore[attr-defined]
        source = product_key_ref(t, m, p.k)
        # slot i's weight on entry i (top_a[i] top_b[i]) is 1: that entry is added as it is,
        # the others are switched with the key's rows for them (after the first m entries')
        switched = [row[m:] for row in source]
        stored_switched = np.asarray(stored)[m * p.digits :]
        for row, c1, c2 in zip(got, rows_of(a), rows_of(b), strict=True):
            tensor = product_tensor_ref(c1, c2, m, p.k, divisor)
            out = switch_ref(tensor[m:], stored_switched, switched, t[:m], p)
            assert row == [v + (tensor[i] if i < m else 0) for i, v in enumerate(out)]

    @kit_settings()
    @given(data=st.data())
    def test_dot(self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject) -> None:
        p = scheme.params
        m = data.draw(st.integers(1, 4), label="m")
        x = data.draw(hst.integer_arrays((2, m), 6), label="x")
        y = data.draw(hst.integer_arrays((2, m), 6), label="y")
        h = data.draw(hst.integer_matrices(m, m, 2), label="H")
        key = scheme.add_dot_key(keys, m, h)  # type: ignore[arg-type]
        a = vectors(scheme, x, keys.public, m)  # type: ignore[attr-defined]
        b = vectors(scheme, y, keys.public, m)  # type: ignore[attr-defined]
        got = rows_of(a.dot(b, h))  # type: ignore[attr-defined]
        t = self.t_of(keys)
        s = key_matrix(t, m)
        n = m + p.k
        hl = h.tolist()
        vec = [
            [
                sum(s[r][i] * hl[r][q] * s[q][j] for r in range(m) for q in range(m))
                for i in range(n)
                for j in range(n)
            ]
        ]
        for row, c1, c2 in zip(got, rows_of(a), rows_of(b), strict=True):
            assert row == dot_ref(c1, c2, hl, key.matrix_t, vec, t, m, p)

    @kit_settings()
    @given(data=st.data())
    def test_dot_with_a_key_for_every_tensor_entry(
        self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject
    ) -> None:
        """A key with rows for all (m + k)**2 entries (as keys were made before the tops' block
        was summed in the clear) gives the same ciphertexts through its rows for the others."""
        from hennframework.schemes.integer_vector.keys import build_switch_matrix, to_backend_key

        p = scheme.params
        m = data.draw(st.integers(1, 3), label="m")
        x = data.draw(hst.integer_arrays((2, m), 6), label="x")
        y = data.draw(hst.integer_arrays((2, m), 6), label="y")
        t = self.t_of(keys)
        s = key_matrix(t, m)
        n = m + p.k
        vec = [[sum(s[r][i] * s[r][j] for r in range(m)) for i in range(n) for j in range(n)]]
        secret = keys.secret  # type: ignore[attr-defined]
        matrix = build_switch_matrix(
            np.array(vec, dtype=np.int64), secret.t_for(1), p, RandomSource(7)
        )
        compact = scheme.add_dot_key(keys, m)  # type: ignore[arg-type]
        full = to_backend_key(
            scheme.backend, "dot", matrix, n * n, 1, secret.key_id, secret.key_id, compact.label
        )
        assert (compact.source_columns, full.source_columns) == (2 * m * p.k + p.k**2, n * n)
        evaluation = scheme.public_key(secret.key_id).evaluation.keys
        name = f"dot:{m}:{compact.label}"
        a = vectors(scheme, x, keys.public, m)  # type: ignore[attr-defined]
        b = vectors(scheme, y, keys.public, m)  # type: ignore[attr-defined]
        try:
            evaluation[name] = full
            product = a.dot(b)  # type: ignore[attr-defined]
        finally:
            evaluation[name] = compact
        got = rows_of(product)
        identity = [[int(i == j) for j in range(m)] for i in range(m)]
        for row, c1, c2 in zip(got, rows_of(a), rows_of(b), strict=True):
            assert row == dot_ref(c1, c2, identity, full.matrix_t, vec, t, m, p)
        assert scheme.decrypt(product, keys.secret).reshape(-1).tolist() == [  # type: ignore[attr-defined]
            int(np.dot(u, v)) for u, v in zip(x.tolist(), y.tolist(), strict=True)
        ]

    @kit_settings()
    @given(data=st.data())
    def test_linear_transform(
        self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject
    ) -> None:
        p = scheme.params
        m = data.draw(st.integers(1, 4), label="m")
        out = data.draw(st.integers(1, 4), label="out")
        g = data.draw(hst.integer_matrices(out, m, 5), label="G")
        x = data.draw(hst.integer_arrays((2, m), p.max_plaintext // 32), label="x")
        key = scheme.add_linear_key(keys, g)  # type: ignore[arg-type]
        a = vectors(scheme, x, keys.public, m)  # type: ignore[attr-defined]
        got = rows_of(a.linear_transform(g))  # type: ignore[attr-defined]
        t = self.t_of(keys)
        s = key_matrix(t, m)
        gl = g.tolist()
        gs = [
            [sum(gl[i][r] * s[r][j] for r in range(m)) for j in range(m + p.k)] for i in range(out)
        ]
        for row, c in zip(got, rows_of(a), strict=True):
            assert row == switch_ref(c, key.matrix_t, gs, t[:out], p)

    @kit_settings()
    @given(data=st.data())
    def test_plaintext_products_and_rescale(
        self, scheme: IntegerVectorScheme, keys: object, data: st.DataObject
    ) -> None:
        """Real plaintext products round(c p_enc / f) and P @ c: exact 128-bit paths included."""
        p = scheme.params
        f = p.scale
        big = data.draw(st.booleans(), label="near the range limit")
        bound = p.max_plaintext / f / 8 if big else 4.0  # |P @ x| <= 6 |x|
        x = data.draw(hst.real_arrays((3,), bound), label="x")
        k = data.draw(hst.reals(2.0), label="k")
        mat = data.draw(hst.real_matrices(2, 3, 2.0), label="P")
        a = scheme.encrypt_tensor(x, keys.public)  # type: ignore[attr-defined]
        c = rows_of(a)
        k_enc = int(np.rint(k * f))
        assert rows_of(a * k) == [[round_div_ref(v * k_enc, f) for v in row] for row in c]
        p_enc = [[int(v) for v in row] for row in np.rint(mat * f).tolist()]
        want = [
            [
                round_div_ref(sum(p_enc[j][i] * c[i][col] for i in range(3)), f)
                for col in range(len(c[0]))
            ]
            for j in range(2)
        ]
        assert rows_of(mat @ a) == want
        fine = scheme.encrypt(
            x * (p.max_plaintext / (bound * f * f)),
            keys.public,  # type: ignore[attr-defined]
            scale=f * f,
        )
        assert rows_of(fine.rescale()) == [
            [round_div_ref(v, f) for v in row] for row in rows_of(fine)
        ]


@pytest.mark.parametrize("bits", range(1, 33))
def test_digit_count_covers_the_exact_range(bits: int) -> None:
    """Every |v| < 2**62 decomposes into ``digits`` balanced digits, for every gadget base.

    Balanced digits lie in [-B/2, B/2 - 1]: the positive side reaches less than the negative one.
    """
    p = IntegerVectorParams(
        name=f"digits-b{bits}",
        w=2**40,
        scale=2**12,
        k=1,
        t_bound=1,
        a_bound=1,
        e_bound=1,
        gadget_bits=bits,
    )
    scheme = IntegerVectorScheme(p)
    extremes = np.array([[(1 << 62) - 1, -((1 << 62) - 1), 1, -1, 0]], dtype=np.int64)
    digits = np.asarray(scheme.decompose(extremes)).reshape(5, p.digits)
    recomposed = [sum(int(d) << (bits * i) for i, d in enumerate(row)) for row in digits.tolist()]
    base = 1 << bits
    (base // 2 - 1) * (base**p.digits - 1) // (base - 1) if bits > 1 else 0
    assert recomposed == extremes[0].tolist()
