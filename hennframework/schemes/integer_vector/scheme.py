"""The integer-vector scheme (Zhou & Wornell 2014), exact and vectorised, behind :class:`HEScheme`.

Math summary (details and error bounds in docs/scheme.md):

* ``S = [I_m, T]``; ``S c = w mu + e``; decryption ``round(S c / w)``.
* Public-key encryption: ``c0 = w x + e0``, switched from the identity key.
* Addition: ``c1 + c2`` (noise adds). Plaintext scalar/elementwise over the batch: ``p c``.
* Product (slotwise): the tensor ``t = (c1 (x) c2)`` restricted to the entries that slot keys use,
  divided by ``w * r`` (r = rescale divisor) with exact 128-bit rounding, then switched from the
  tensor key to ``S``. Inner product ``x^T H y``: ``vec(c1 c2^T) / (w r)`` under ``vec(S1^T H S2)``,
  switched to the scalar key. Linear transform ``G x``: switch from ``G S``.
* Noise: every operation updates two elementwise bounds on ``|e|`` from public quantities only:
  a worst-case bound (always holds) and a high-probability one (deterministic part plus a
  sub-Gaussian parameter; fails with probability at most 2**-64 per decryption). Key switches
  use the actual gadget digits of the ciphertext. Decryption refuses when the smaller bound could
  reach ``w/2`` (the worst-case bound alone with ``worst_case=True``).
* Overflow: every stored value is kept below 2**62; where a result could exceed that, the
  operation raises :class:`OverflowRiskError` instead of wrapping.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from hennframework.backend import Array, ArrayBackend, default_backend
from hennframework.exceptions import (
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.randomness import RandomSource, as_random_source
from hennframework.scheme import Capability, KeySet, ParameterSet
from hennframework.schemes.integer_vector import native, small, wide
from hennframework.schemes.integer_vector.ciphertext import (
    FAILURE_PROBABILITY_BITS,
    LIMIT,
    SAFETY,
    SCALAR_CACHE_SIZE,
    Ciphertext,
    Evaluator,
    broadcast_batch,
    elementwise_max,
    elementwise_min,
    float_margin,
)
from hennframework.schemes.integer_vector.keys import (
    PENDING_KEY_ID,
    KeySwitchKey,
    PublicKey,
    SecretKey,
    build_switch_matrix,
    dot_key_matrix,
    dot_switched_columns,
    fingerprint_keys,
    kept_with,
    key_part,
    matrix_digest,
    product_key_matrix,
    to_backend_key,
)
from hennframework.schemes.integer_vector.params import (
    INT_BITS,
    PARAMETER_SETS,
    IntegerVectorParams,
    get_params,
    warn_insecure,
)

__all__ = ["IntegerVectorScheme"]

#: Plaintext matrices of at most this many values that ``matmul_plain`` keeps encoded ...
PLAIN_MATRIX_VALUES = 4096
#: ... and how many of them, at most, per scheme.
PLAIN_MATRICES = 64
#: The farthest ``absorb_noise`` moves a value by default, in fixed-point units of the message
#: (``1 / scale`` of the value): a step's own noise with the ``default`` set is about 2**-30.
ABSORB_MOST = 2.0**-16
#: ``absorb_noise`` renews a coefficient bound above this (8 bits below the exact range).
RENEW_COEFFICIENTS_ABOVE = LIMIT >> 8
#: A polynomial's slope coefficients, and the Horner steps and margins of the magnitude
#: bounds of the slope and its derivative (``_with_slope_noise``).
_Slope = tuple[list[float], list[Array], Array]
#: What ``_plain_matrix`` gives (and keeps): see there.
PlainMatrix = tuple[npt.NDArray[np.int64], int, int, Array, Array, Array | None]


class IntegerVectorScheme(Evaluator):
    """Exact integer-vector HE on an array backend: ``IntegerVectorScheme("default")`` (NumPy),
    ``IntegerVectorScheme("default", backend=hennframework.get_backend("cupy"))``, or
    ``hennframework.get_scheme("integer-vector")`` on the configured backend."""

    name: ClassVar[str] = "integer-vector"
    default_parameter_set: ClassVar[str] = "default"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ENCRYPT_PUBLIC,
            Capability.ENCRYPT_SECRET,
            Capability.ADD,
            Capability.MUL_PLAIN,
            Capability.MATMUL_PLAIN,
            Capability.LINEAR_TRANSFORM,
            Capability.MUL_CIPHER,
            Capability.INNER_PRODUCT,
            Capability.RESCALE,
            Capability.POLYNOMIAL,
            Capability.KEY_SWITCH,
            Capability.NOISE_TRACKING,
            Capability.REFRESH,
        }
    )

    def __init__(
        self,
        params: str | IntegerVectorParams | ParameterSet | None = None,
        backend: ArrayBackend | None = None,
        *,
        worst_case: bool = False,
    ) -> None:
        """``backend``: the array backend to compute on, an instance (``None``: NumPy). The scheme
        does not look backends up by name or configuration: :func:`hennframework.get_backend`
        and :func:`hennframework.get_scheme` do that.

        ``worst_case=True``: decryption accepts only the worst-case noise bound (no failure
        probability at all; fewer operations between refreshes). Default: the smaller of the
        worst-case and the high-probability bound (failure probability <= 2**-64 per decryption)."""
        if isinstance(params, ParameterSet):
            params = params.name
        if isinstance(backend, str):
            raise InputError(
                f"IntegerVectorScheme takes a backend instance, not the name {backend!r}: pass "
                f"backend=hennframework.get_backend({backend!r}), or make the scheme with "
                f"hennframework.get_scheme('integer-vector', backend={backend!r})."
            )
        self.params = get_params(params)
        self.backend = default_backend() if backend is None else backend
        self.worst_case = bool(worst_case)
        warn_insecure(self.params)
        # Keys this scheme instance evaluates with (public material only), by key id.
        self._public_keys: dict[str, PublicKey] = {}

    @classmethod
    def parameter_sets(cls) -> Mapping[str, ParameterSet]:
        return {name: p.as_parameter_set() for name, p in PARAMETER_SETS.items()}

    @classmethod
    def implementation(cls) -> str | None:
        """Whether the compiled kernels run here (``native.status``)."""
        return f"compiled kernels: {native.status()}"

    def __repr__(self) -> str:
        return f"IntegerVectorScheme(params={self.params.name!r}, backend={self.backend.name!r})"

    # ======================================================================================
    # keys (owner side)
    # ======================================================================================
    def keygen(
        self,
        *,
        seed: int | bytes | None = None,
        max_dim: int = 1,
        dims: Sequence[int] = (1,),
        products: Sequence[int] = (1,),
        **options: Any,
    ) -> KeySet:
        """Secret key, public encryption keys for ``dims`` and product keys for ``products``.

        ``seed`` makes keys reproducible (for tests and demos only: whoever knows the seed knows
        the secret key). Without it, key material comes from the OS CSPRNG.
        """
        if options:
            raise InputError(f"unknown keygen options: {', '.join(options)}")
        rng = as_random_source(seed)
        max_dim = max([max_dim, *dims, *products])
        p = self.params
        t_matrix = rng.integers(-p.t_bound, p.t_bound, (max_dim, p.k))
        # The key id is the fingerprint of the public keys made here (keys.fingerprint_keys).
        secret = SecretKey(p, PENDING_KEY_ID, t_matrix)
        public = PublicKey(p, PENDING_KEY_ID)
        keys = KeySet(
            p.as_parameter_set(), secret, public, public.evaluation, PENDING_KEY_ID, scheme=self
        )
        keys.rng = rng  # type: ignore[attr-defined]
        for dim in dims:
            self.add_encryption_key(keys, dim)
        for dim in products:
            self.add_product_key(keys, dim)
        key_id = fingerprint_keys(keys)
        self._public_keys[key_id] = public
        return keys

    def _rng(self, keys: KeySet) -> RandomSource:
        return getattr(keys, "rng", None) or RandomSource()

    def add_encryption_key(self, keys: KeySet, dim: int) -> KeySwitchKey:
        """Owner: the public key for encrypting m-vectors (a switch from the identity key)."""
        secret: SecretKey = keys.secret
        matrix = build_switch_matrix(
            np.eye(dim, dtype=np.int64), secret.t_for(dim), self.params, self._rng(keys)
        )
        key = to_backend_key(
            self.backend, "encryption", matrix, dim, dim, "identity", secret.key_id
        )
        keys.public.encryption[dim] = key
        return key

    def add_product_key(self, keys: KeySet, dim: int) -> KeySwitchKey:
        """Owner: the evaluation key for slotwise products of m-vectors."""
        secret: SecretKey = keys.secret
        tensor_key = product_key_matrix(secret.t_for(dim))
        matrix = build_switch_matrix(tensor_key, secret.t_for(dim), self.params, self._rng(keys))
        key = to_backend_key(
            self.backend, "product", matrix, tensor_key.shape[1], dim, secret.key_id, secret.key_id
        )
        keys.public.evaluation.keys[f"product:{dim}"] = key
        return key

    def add_dot_key(
        self, keys: KeySet, dim: int, weight: npt.ArrayLike | None = None
    ) -> KeySwitchKey:
        """Owner: the evaluation key for x^T H y of two m-vectors (H = identity by default)."""
        secret: SecretKey = keys.secret
        # H = I: the identity and its label are kept by m (as ``dot`` reads them), not made
        # and hashed again for every key
        h = small.identity(dim) if weight is None else _integer_matrix(weight, "H")
        if h.shape != (dim, dim):
            raise InputError(f"H must be {dim} x {dim}, got {h.shape}")
        label = (
            self._constant(f"identity-facts:{dim}", lambda: small.matrix_facts(self, h))[0]
            if weight is None
            else matrix_digest(h)
        )
        source = dot_key_matrix(secret.t_for(dim), h)
        matrix = build_switch_matrix(source, secret.t_for(1), self.params, self._rng(keys))
        key = to_backend_key(
            self.backend,
            "dot",
            matrix,
            source.shape[1],
            1,
            secret.key_id,
            secret.key_id,
            label=label,
        )
        keys.public.evaluation.keys[f"dot:{dim}:{key.label}"] = key
        return key

    def add_linear_key(self, keys: KeySet, matrix_g: npt.ArrayLike) -> KeySwitchKey:
        """Owner: the evaluation key for the linear transform x -> G x (G integer, out x m)."""
        secret: SecretKey = keys.secret
        g = _integer_matrix(matrix_g, "G")
        out_dim, dim = g.shape
        source = g.astype(object) @ secret.matrix(dim).astype(object)
        if max((abs(int(v)) for v in source.ravel()), default=0) >= LIMIT:
            raise InputError("G is too large: G S exceeds 62 bits")
        matrix = build_switch_matrix(
            source.astype(np.int64), secret.t_for(out_dim), self.params, self._rng(keys)
        )
        key = to_backend_key(
            self.backend,
            "linear",
            matrix,
            dim + self.params.k,
            out_dim,
            secret.key_id,
            secret.key_id,
            label=matrix_digest(g),
        )
        keys.public.evaluation.keys[f"linear:{key.label}"] = key
        return key

    def make_switch_key(self, source: KeySet, target: KeySet, dim: int = 1) -> KeySwitchKey:
        """Owner: material that moves m-vector ciphertexts from ``source``'s key to ``target``'s.

        Whoever applies it learns nothing new about either key's plaintexts; the result decrypts
        under ``target`` only.
        """
        s_from = source.secret.matrix(dim)
        matrix = build_switch_matrix(
            s_from, target.secret.t_for(dim), self.params, self._rng(target)
        )
        return to_backend_key(
            self.backend, "switch", matrix, dim + self.params.k, dim, source.key_id, target.key_id
        )

    def register_public_key(self, public: PublicKey) -> None:
        """Make a received public key usable for evaluation in this process."""
        if public.params != self.params:
            raise KeyMismatchError(
                f"public key is for parameter set {public.params.name!r}, this scheme uses "
                f"{self.params.name!r}"
            )
        self._public_keys[public.key_id] = public

    def public_key(self, key_id: str) -> PublicKey:
        try:
            return self._public_keys[key_id]
        except KeyError:
            raise KeyMismatchError(
                f"no public key {key_id} is registered with this scheme instance; load the "
                "public key that came with the ciphertexts (scheme.register_public_key)."
            ) from None

    # ======================================================================================
    # encoding, encryption, decryption
    # ======================================================================================
    def encode(self, values: Any, scale: int) -> npt.NDArray[np.int64]:
        """round(values * scale) as int64 (round half to even); rejects NaN/inf and overflow."""
        array = np.asarray(values)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise InputError(f"plaintext must be numeric, got dtype {array.dtype}")
        if array.dtype.kind in "biu" and scale == 1:
            as_int = array.astype(np.int64)
            # compare as Python ints: np.abs(INT64_MIN) is negative, uint64 may exceed int64
            if array.size and max(int(array.max()), -int(array.min())) >= LIMIT:
                raise InputError("integer plaintext exceeds 2**62")
            return as_int
        as_float = array.astype(np.float64)
        if not np.isfinite(as_float).all():
            raise InputError("plaintext contains NaN or infinity; clean the input first.")
        if scale == 1 and not np.array_equal(as_float, np.rint(as_float)):
            raise InputError(
                "non-integer plaintext for an integer ciphertext (scale 1); encrypt real values "
                "with a fixed-point scale (encrypt_tensor, or encrypt(..., scale=f))."
            )
        scaled = np.rint(as_float * scale)
        if scaled.size and np.abs(scaled).max() >= 2.0**53:
            raise InputError(
                f"plaintext too large to encode exactly at scale {scale} (|x * scale| >= 2**53)."
            )
        return scaled.astype(np.int64)

    def _check_plain_range(self, encoded: npt.NDArray[np.int64]) -> int:
        """The largest |encoded value| (0 if none); InputError if a fresh encryption cannot
        take it."""
        limit = self.params.max_plaintext
        largest = small.abs_max(encoded)
        if largest is None:
            largest = int(np.abs(encoded).max()) if encoded.size else 0
        if largest > limit:
            raise InputError(
                f"plaintext out of range: |encoded value| {largest} exceeds "
                f"{limit} for parameter set {self.params.name!r} (w = 2**{self.params.w.bit_length() - 1}). "
                "Use smaller values or a smaller scale."
            )
        return largest

    def _as_slots(self, values: Any, dim: int | None) -> tuple[Any, int]:
        array = np.asarray(values)
        if dim is None:  # scalars: every element is its own ciphertext
            return array[..., None], 1
        if array.ndim == 0 or array.shape[-1] != dim:
            raise InputError(
                f"expected vectors of length {dim} on the last axis, got shape {array.shape}"
            )
        return array, dim

    def encrypt(
        self,
        values: Any,
        key: PublicKey | SecretKey | KeySet,
        *,
        dim: int | None = None,
        scale: int = 1,
        seed: int | bytes | None = None,
    ) -> Ciphertext:
        """Encrypt ``values`` (shape ``(*batch, dim)``, or ``(*batch,)`` for scalars with dim=None).

        ``scale=1`` encrypts integers exactly; a larger scale encodes reals in fixed point.
        With a :class:`PublicKey` anyone can encrypt; with a :class:`SecretKey` the owner gets
        smaller noise.
        """
        if isinstance(key, KeySet):
            key = key.public
        draw = small.noise_source(seed)  # the CSPRNG (pooled) unless a seed is passed
        slots, m = self._as_slots(values, dim)
        limit = self.params.max_plaintext
        plain = small.plain_integers(slots, scale, limit)  # None: encode and check
        if plain is None:
            encoded = self.encode(slots, scale)
            largest = self._check_plain_range(encoded)
        else:
            encoded, largest = plain
        p = self.params
        backend = self.backend
        batch_shape = encoded.shape[:-1]
        x = backend.asarray(encoded, dtype="int64")
        if isinstance(key, SecretKey):
            if key.params is not p and key.params != p:
                raise KeyMismatchError(
                    f"secret key is for parameter set {key.params.name!r}, not {p.name!r}"
                )
            t = backend.asarray(key.t_for(m), dtype="int64")
            a = backend.asarray(draw(-p.a_bound, p.a_bound, (*batch_shape, p.k)))
            e = backend.asarray(draw(-p.e_bound, p.e_bound, encoded.shape))
            top = x * p.w + e - backend.matmul_int_wrap(a, t.T)
            data = backend.concatenate([top, a], axis=-1)
            zero = backend.zeros(batch_shape, dtype="float64")
            noise = zero + float(p.e_bound)
            # e uniform on [-B, B]: |e| <= B, and sub-Gaussian with parameter B (Hoeffding)
            probable = (zero + 0.0, zero + float(p.e_bound))
            key_id = key.key_id
            self._public_keys.setdefault(key_id, PublicKey(p, key_id))
        elif isinstance(key, PublicKey):
            if key.params is not p and key.params != p:
                raise KeyMismatchError(
                    f"public key is for parameter set {key.params.name!r}, not {p.name!r}"
                )
            self._public_keys.setdefault(key.key_id, key)
            enc_key = key.encryption_key(m)
            e0 = backend.asarray(draw(-p.e_bound, p.e_bound, encoded.shape))
            c0 = x * p.w + e0  # |x| <= max_plaintext: below 2**60
            c0_bound = largest * p.w + p.e_bound
            if self._switch_bound(enc_key, c0_bound) >= LIMIT:
                raise OverflowRiskError(
                    f"encrypting {m}-vectors of these values could exceed 62 bits; use smaller "
                    "values or shorter vectors."
                )
            data, l1, l2 = self._switch(c0, enc_key, c0_bound)
            # noise e0 + E c0*: e0 bounded by B; E c0* from the key's independent uniform E,
            # weighted by the actual digits of c0 (independent of E)
            noise = (l1 * float(p.e_bound) + float(p.e_bound)) * SAFETY
            probable = (
                backend.zeros(batch_shape, dtype="float64") + float(p.e_bound),
                l2 * p.e_bound,
            )
            key_id = key.key_id
        else:
            raise InputError(
                f"encrypt needs a PublicKey, SecretKey or KeySet, got {type(key).__name__}"
            )
        return Ciphertext(
            self,
            data,
            m,
            scale,
            noise,
            key_id,
            coeff_bound=small.abs_max(data),  # None: the ciphertext measures it
            noise_det=probable[0],
            noise_sg=probable[1],
        )

    def decrypt(
        self, ciphertext: Ciphertext, secret_key: SecretKey | KeySet
    ) -> npt.NDArray[np.int64]:
        """The integer messages ``round(S c / w)``, shape ``(*batch, m)``; raises on noise risk."""
        # Ordered for one vector, where every attribute read is a sizeable part of the call.
        if type(secret_key) is KeySet:
            secret_key = secret_key.secret
        if type(secret_key) is not SecretKey and not isinstance(secret_key, SecretKey):
            if isinstance(secret_key, KeySet):  # a subclass of KeySet
                secret_key = secret_key.secret
            if not isinstance(secret_key, SecretKey):
                raise InputError("decrypt needs the SecretKey (the key holder's), not a public key")
        if secret_key.key_id != ciphertext.key_id:
            raise KeyMismatchError(
                f"this ciphertext is under key {ciphertext.key_id}, not {secret_key.key_id}: "
                "decrypt with its own secret key (or switch it to yours first)."
            )
        p = self.params
        own = ciphertext.scheme
        if own is not self or secret_key.params is not p:  # else both use this parameter set
            key_params, text_params = secret_key.params, ciphertext.params
            if (key_params is not p and key_params != p) or (
                text_params is not p and text_params != p
            ):
                raise KeyMismatchError("the secret key and ciphertext use different parameter sets")
            if own is not self and own.backend is not self.backend and isinstance(own, type(self)):
                # made on another backend (a GPU's, say): its own scheme decrypts it where its
                # arrays live; the messages come back as NumPy arrays either way
                return own.decrypt(ciphertext, secret_key)
        # One vector's decryption is a few dozen integer operations: where the coefficients
        # prove |S c| < 2**62, the compiled kernel checks the noise bound and decrypts in one
        # call from here (each call and attribute read is a sizeable part of the time; this is
        # what keeps it below vhe.cpp's). It returns None where it refuses, as the general path
        # does (which then raises with the reasons), and for anything but NumPy arrays.
        kernel = native.decrypt_pow2
        limit, shift = p.decryption_kernel_limits
        if kernel is not None and ciphertext.coeff_bound < limit:
            found = kernel(
                ciphertext.data,
                secret_key.t_matrix,
                ciphertext.dim,
                shift,
                ciphertext.noise,
                ciphertext.noise_det,
                ciphertext.noise_sg,
                self.worst_case,
                FAILURE_PROBABILITY_BITS,
                SAFETY,
            )
            if found is not None:
                return found
        few = small.decrypt_few(
            self, ciphertext, secret_key
        )  # None: another backend, or a check that may fail
        if few is not None:
            return few
        backend = self.backend
        bounds = backend.to_numpy(ciphertext.decryption_bounds())
        max_noise = float(bounds.max()) if ciphertext.size else 0.0
        # "not below" rather than ">=": a NaN bound (a bound computation that overflowed) must
        # refuse too, and every comparison with NaN is False (max() propagates a NaN)
        if not max_noise * 2 < p.w:
            bad = int(np.count_nonzero(~(np.broadcast_to(bounds, ciphertext.shape) * 2 < p.w)))
            if self.worst_case or not ciphertext.tracks_probable_noise:
                which = "worst-case noise bound"
            else:
                which = "noise bound (the smaller of the worst-case and the 2**-64 high-probability one)"
            raise NoiseBudgetExhaustedError(
                f"refusing to decrypt: the {which} of {bad} of {ciphertext.size} ciphertexts "
                + (
                    f"(up to 2**{math.log2(max_noise):.1f}) could reach w/2 = "
                    f"2**{math.log2(p.w / 2):.0f}, "
                    if math.isfinite(max_noise)
                    else f"is not a finite number ({max_noise}: a bound computation overflowed), "
                )
                + "so the result could be wrong. The key holder must re-encrypt (refresh) these "
                "values before so many operations, or use fewer operations or a parameter set "
                "with a larger w."
            )
        m = ciphertext.dim
        # The tracked coefficient bound usually proves |S c| < 2**62 at once; measuring the tops
        # and bottoms (two reductions over strided views, slow on a GPU) only where it cannot.
        if ciphertext.coeff_bound * p.key_row_norm >= LIMIT:
            bottom_bound = backend.abs_max(ciphertext.data[..., m:])
            top_bound = backend.abs_max(ciphertext.data[..., :m])
            if top_bound + p.k * p.t_bound * bottom_bound >= LIMIT:
                return self._decrypt_wide(ciphertext, secret_key, max(top_bound, bottom_bound))
        t = backend.asarray(secret_key.t_for(m), dtype="int64")
        sc = ciphertext.data[..., :m] + backend.matmul_int_wrap(ciphertext.data[..., m:], t.T)
        rounded = (sc + p.w // 2) // p.w
        return backend.to_numpy(rounded).astype(np.int64, copy=False)

    def _decrypt_wide(
        self, ciphertext: Ciphertext, secret_key: SecretKey, coeff_bound: int
    ) -> npt.NDArray[np.int64]:
        """``round(S c / w)`` where ``S c`` may pass 2**62: in 128-bit arithmetic.

        A product or a rescale can leave coefficients whose ``|c_top| + k t |c_bottom|`` bound
        passes 2**62 while the message itself is small. ``c S^T`` then comes from limb GEMMs
        each proved exact (``wide.wide_matmul_round_div``), so the result is the exact rounding
        of the exact ``S c``; the noise check already passed, so that is the message. Only a
        message of 63 bits or more, which no int64 holds, is refused.
        """
        p = self.params
        backend = self.backend
        m = ciphertext.dim
        shape = ciphertext.shape
        key_t = backend.asarray(small.secret_parts(secret_key, m)[1], dtype="int64")  # S^T
        rows = ciphertext.data.reshape(-1, m + p.k)
        try:
            messages = wide.wide_matmul_round_div(
                backend, rows, key_t, p.w, coeff_bound, max(1, p.t_bound)
            )
        except OverflowRiskError as error:
            raise OverflowRiskError(
                "refusing to decrypt: a message of this ciphertext does not fit in 63 bits, so "
                "no int64 can hold it exactly. Keep values smaller (rescale, or a smaller "
                "factor) before decrypting."
            ) from error
        return backend.to_numpy(messages).astype(np.int64, copy=False).reshape(*shape, m)

    def refresh(self, tensor: Any, keys: KeySet) -> Ciphertext:
        """Owner-side refresh: the exact messages re-encrypted with the *secret* key.

        Same messages, scale and vector length; the noise drops to ``e_bound`` (a public-key
        encryption would leave ``e_bound (1 + |c*|_1)``, about 2**10 more with the default set),
        so more steps fit before the next refresh. Raises like ``decrypt`` if the noise could
        already have corrupted the values.
        """
        if not isinstance(tensor, Ciphertext):
            raise InputError(f"expected a Ciphertext, got {type(tensor).__name__}")
        messages = self.decrypt(tensor, keys.secret)  # exact integers at the tensor's scale
        if tensor.dim == 1:
            fresh = self.encrypt(messages[..., 0], keys.secret, scale=1)
        else:
            fresh = self.encrypt(messages, keys.secret, dim=tensor.dim, scale=1)
        fresh.scale_int = tensor.scale_int  # the same integers, read at the same scale
        return fresh

    def encrypt_tensor(
        self, values: npt.ArrayLike, key: Any, *, seed: int | bytes | None = None
    ) -> Ciphertext:
        """Encrypt a real array in fixed point (one scalar ciphertext per element)."""
        return self.encrypt(values, key, dim=None, scale=self.params.scale, seed=seed)

    def decrypt_tensor(self, tensor: Any, secret_key: Any) -> npt.NDArray[np.float64]:
        """Decrypt to real values (integer messages divided by the scale); shape = batch shape."""
        if not isinstance(tensor, Ciphertext):
            raise InputError(f"expected a Ciphertext, got {type(tensor).__name__}")
        values = self.decrypt(tensor, secret_key).astype(np.float64) / tensor.scale_int
        return values[..., 0] if tensor.dim == 1 else values

    # ======================================================================================
    # key switching (the one primitive behind encryption, products, transforms)
    # ======================================================================================
    def decompose(self, values: Array) -> Array:
        """Balanced base-2**b digits of int64 values (|v| < 2**62): shape (..., D) -> (..., D * l).

        Digit i is ``((v + H) >> (b i)) & (B - 1)) - B/2`` with ``H = B/2 (1 + B + ... +
        B**(l - 1))``: adding B/2 at every digit position turns the balanced digits into the
        plain base-B digits of ``v + H`` (the same digits as the recurrence ``d = ((r + B/2) mod
        B) - B/2``, ``r = (r - d) / B``), so all of them come from one shift of ``v + H`` by
        every ``b i`` at once. ``v + H`` is computed in uint64, exact when it lies in [0, 2**64)
        for every |v| < 2**62 (``_digit_plan``; b = 8 and b = 2, for instance); other bases
        use the recurrence.
        """
        p = self.params
        count, offset, shifts = self._constant("digits", self._digit_plan)
        shape = (*values.shape[:-1], values.shape[-1] * count)
        values = values.astype("int64", copy=False)
        if p.gadget_bits == 1:  # the paper's sign-and-magnitude bits
            sign = (values > 0).astype("int64") - (values < 0).astype("int64")
            bits = (abs(values)[..., None] >> shifts) & 1
            return (bits * sign[..., None]).reshape(shape)
        base, half, bits_per_digit = p.base, p.base // 2, p.gadget_bits
        if offset is not None:
            unsigned = values.view("uint64")
            plain = ((unsigned + unsigned.dtype.type(offset))[..., None] >> shifts) & (base - 1)
            return (plain.view("int64") - half).reshape(shape)
        digits = []
        rest = values
        for _ in range(count):
            digit = ((rest + half) & (base - 1)) - half
            digits.append(digit)
            rest = (rest - digit) >> bits_per_digit
        return self.backend.stack(digits, axis=-1).reshape(shape)

    def _digit_plan(self) -> tuple[int, int | None, Array]:
        """``decompose``'s constants: the digit count, the offset H (None: use the recurrence)
        and the shift ``b i`` of every digit i on the backend (uint64 where H is added)."""
        p = self.params
        count, half = p.digits, p.base // 2
        offset = sum(half * p.base**i for i in range(count)) if p.gadget_bits > 1 else None
        # v + H must lie in [0, 2**64) for every |v| < 2**62 to be exact in uint64
        if offset is not None and not LIMIT - 1 <= offset < (1 << 64) - (LIMIT - 1):
            offset = None
        positions = np.arange(count, dtype=np.int64) * p.gadget_bits
        shifts = self.backend.asarray(positions, dtype="int64" if offset is None else "uint64")
        return count, offset, shifts

    def _apply_switch(self, source: Array, key: KeySwitchKey, source_bound: int) -> Array:
        """``M c*`` modulo 2**64 for sources with ``|source| <= source_bound`` (see ``_switch``)."""
        return self._switch(source, key, source_bound)[0]

    def _switch(
        self, source: Array, key: KeySwitchKey, source_bound: int
    ) -> tuple[Array, Array, Array]:
        """``M c*`` modulo 2**64, and the L1 and L2 norms of each item's digits ``c*``.

        The gadget digits represent only values below 2**62, so a larger ``source_bound`` is
        refused here; the *result* must be proved below 2**62 by the caller (``_switch_bound``),
        which makes the modulo-2**64 product exact. The switch adds ``E c*`` to the noise: at
        most ``e_bound |c*|_1`` (worst case), and sub-Gaussian with parameter
        ``e_bound |c*|_2`` (the entries of E are independent and uniform on [-e_bound, e_bound]).
        Both norms are float64 arrays of the batch shape, rounded up.

        The compiled kernel, where it applies, holds no digits. On the NumPy paths a batch
        whose float64 digits would take more than ``small.DIGIT_SLICE_BYTES`` goes through in
        slices of items (each item's results depend on its own digits only), so a large inner
        product does not hold all its digits at once.
        """
        if source.shape[-1] != key.source_columns:
            raise InputError(
                f"key-switching key expects {key.source_columns} source entries, got {source.shape[-1]}"
            )
        if source_bound >= LIMIT:
            raise OverflowRiskError(
                f"a key-switch source could reach 2**{source_bound.bit_length() - 1}, beyond the "
                "2**62 its gadget digits represent; refused rather than wrapped. Use smaller "
                "values or rescale first."
            )
        found = self._switch_native(source, key)  # holds no digits: never in slices
        if found is not None:
            return found
        columns = int(source.shape[-1])
        items = math.prod(source.shape[:-1])
        step = max(1, small.DIGIT_SLICE_BYTES // max(1, columns * self.params.digits * 8))
        if items <= step:
            return self._switch_piece(source, key)
        flat = source.reshape(items, columns)
        parts = [self._switch_piece(flat[i : i + step], key) for i in range(0, items, step)]
        backend = self.backend
        batch_shape = source.shape[:-1]
        out, l1, l2 = (backend.concatenate([part[n] for part in parts], axis=0) for n in range(3))
        return (
            out.reshape(*batch_shape, key.matrix_t.shape[1]),
            l1.reshape(batch_shape),
            l2.reshape(batch_shape),
        )

    def _switch_piece(self, source: Array, key: KeySwitchKey) -> tuple[Array, Array, Array]:
        """``_switch`` of one slice on the NumPy paths (where the compiled kernels do not run):
        bit digits read off the bytes where b = 1 on NumPy, the general gadget digits otherwise."""
        found = small.switch_bits(self, source, key)
        return found if found is not None else self._switch_digits(source, key)

    def _switch_native(self, source: Array, key: KeySwitchKey) -> tuple[Any, Any, Any] | None:
        """``_switch`` of one slice by the compiled kernel (``native.switch_digits``), or None
        where it does not apply (``_switch_plan``, or the kernels are off)."""
        if not native.available() or source.ndim < 1:
            return None
        plan = self._switch_plan(key, int(source.shape[-1]))
        return None if plan is None else native.switch_digits(source, plan)

    def _switch_plan(self, key: KeySwitchKey, columns: int) -> native.SwitchPlan | None:
        """How ``key`` switches ``columns`` values in the kernels, or None where they do not
        apply: a base whose digits come from the recurrence, a key of another shape, or digit
        norms that float64 might not hold exactly (the NumPy paths' norms are exact integers
        there, so both give the same floats)."""
        p = self.params
        # the answer kept with the key by width, for this parameter set and key matrix (a
        # small batch's switch is a few microseconds: the lookups below would be a fifth of it)
        kept: dict[int, tuple[Any, Any, native.SwitchPlan | None]] | None = key.__dict__.get(
            "_plan_for"
        )
        entry = None if kept is None else kept.get(columns)
        if entry is not None and entry[0] is p and entry[1] is key.matrix_t:
            return entry[2]
        found = self._make_switch_plan(key, columns)
        key.__dict__.setdefault("_plan_for", {})[columns] = (p, key.matrix_t, found)
        return found

    def _make_switch_plan(self, key: KeySwitchKey, columns: int) -> native.SwitchPlan | None:
        """``_switch_plan``, made (``_switch_plan`` keeps it with the key, and the nibble table
        is kept with the key too)."""
        p = self.params
        count, offset, _ = self._constant("digits", self._digit_plan)
        if (
            (p.gadget_bits > 1 and offset is None)
            or columns * count != key.matrix_t.shape[0]
            or columns * count * p.digit_bound * p.digit_bound >= _EXACT_FLOAT
        ):
            return None
        return native.SwitchPlan(
            key.matrix_t,
            count,
            p.gadget_bits,
            offset or 0,
            float_margin(columns * count),
            SAFETY,
            self._nibbles(key, columns, count),
        )

    def _nibbles(self, key: KeySwitchKey, columns: int, count: int) -> Any:
        """The key's nibble table (``native.nibble_table``, kept with the key) where the
        kernels take one: bit digits on the host, into two key columns or a table of at most
        ``native.NIBBLE_TABLE_BYTES``; else None."""
        width = int(key.matrix_t.shape[1])
        if (
            self.params.gadget_bits != 1
            or type(key.matrix_t) is not np.ndarray
            or (width != 2 and columns * 16 * 16 * width * 8 > native.NIBBLE_TABLE_BYTES)
        ):
            return None
        return kept_with(
            key,
            "_nibbles",
            "table",
            key.matrix_t,
            native.nibble_table,
            key.matrix_t,
            columns,
            count,
        )

    def _switch_digits(self, source: Array, key: KeySwitchKey) -> tuple[Array, Array, Array]:
        """``_switch`` through the gadget digits, for every base (checks and slices done by
        ``_switch``)."""
        packed = self._packed_digits(source)
        digits = self.decompose(source) if packed is None else packed.astype("int64")
        batch_shape = digits.shape[:-1]
        flat = digits.reshape(-1, digits.shape[-1])
        out = self.backend.matmul_small_left(flat, key.matrix_t, self.params.digit_bound)
        count = int(digits.shape[-1])
        margin = float_margin(count)
        as_float = (digits if packed is None else packed).astype("float64")
        if packed is None:
            # |digit| <= 2**31: the int64 sum is exact; squares are rounded (covered by the margin)
            l1 = abs(digits).sum(axis=-1).astype("float64") * margin
            squares = (as_float * as_float).sum(axis=-1)
        else:
            # bytes or words: |digit| <= digit_bound, so while count * digit_bound < 2**53
            # every float64 partial sum of the magnitudes is an exact integer, whatever the
            # order (a GEMV with a vector of ones included): the int64 sum's value
            largest = self.params.digit_bound
            if count * largest < _EXACT_FLOAT:
                ones = self._constant(f"ones:{count}", lambda: _ones(count))
                l1 = (abs(as_float) @ ones) * margin
            else:
                l1 = abs(digits).sum(axis=-1).astype("float64") * margin
            if count * largest * largest < _EXACT_FLOAT and _vecdot is not None:
                # every square and partial sum is an exact integer too (b <= 16 in practice),
                # in any order and with fused multiply-adds: the dot product is the sum of the
                # squares bit for bit
                squares = _vecdot(as_float, as_float)
            else:
                squares = (as_float * as_float).sum(axis=-1)
        l2 = (squares * margin) ** 0.5 * SAFETY
        return out.reshape(*batch_shape, key.matrix_t.shape[1]), l1, l2

    def _packed_digits(self, source: Array) -> Array | None:
        """``decompose(source)`` read off the bytes of ``source + H``, in the narrowest signed
        integer type, where the digits are whole bytes: None otherwise.

        With b = 8, 16 or 32 and ``l b = 64``, the plain base-2**b digits of ``v + H`` (see
        ``decompose``) are the b-bit words of its uint64 (least significant first on a
        little-endian host), and flipping a word's top bit subtracts B/2 modulo 2**b: read as a
        signed word that is the balanced digit itself. One addition and one XOR instead of a
        shift and a mask of every digit: the same digits, in the same order. NumPy arrays only.
        """
        plan = self._constant("packed-digits", self._packed_plan)
        if plan is None or type(source) is not np.ndarray:  # host arrays only, not a subclass
            return None
        unsigned_type, signed_type, flip, offset, count = plan
        words = np.ascontiguousarray(source, dtype=np.int64).view(np.uint64) + offset
        balanced = (words.view(unsigned_type) ^ flip).view(signed_type)
        return balanced.reshape(*source.shape[:-1], source.shape[-1] * count)

    def _packed_plan(self) -> tuple[Any, Any, Any, Any, int] | None:
        """``_packed_digits``'s word types, top bit, offset H (a uint64 scalar) and digit
        count, or None where it does not apply."""
        p = self.params
        count, offset, _ = self._digit_plan()
        if (
            sys.byteorder != "little"
            or offset is None
            or p.gadget_bits not in (8, 16, 32)
            or count * p.gadget_bits != 64
        ):
            return None
        unsigned_type = np.dtype(f"uint{p.gadget_bits}")
        signed_type = np.dtype(f"int{p.gadget_bits}")
        flip = unsigned_type.type(1 << (p.gadget_bits - 1))
        return unsigned_type, signed_type, flip, np.uint64(offset), count

    def _proved_switch_bound(self, key: KeySwitchKey, value_bound: Array, refusal: str) -> int:
        """``_switch_bound`` for the largest of a product's per-item value bounds (0 for an empty
        batch); raises ``OverflowRiskError(refusal)`` where the result could reach 2**62."""
        largest = float(value_bound.max()) if value_bound.size else 0.0
        bound = self._switch_bound(key, largest)
        if bound >= LIMIT:
            raise OverflowRiskError(refusal)
        return bound

    def _switch_bound(self, key: KeySwitchKey, source_value_bound: float) -> int:
        """A bound on |coefficients| after a switch: |S_src c| + noise + k t |A c*| and |A c*|.

        ``source_value_bound`` bounds |K c| (the message times w plus the noise before the
        switch); it is a float, so it is rounded up with the float safety margin.
        """
        if not math.isfinite(source_value_bound):
            return LIMIT
        p = self.params
        kept = key.__dict__.get("_switch_added")
        if kept is None or kept[0] is not p:
            # the part that depends on the key's shape only (exact integers), kept with the key
            # for this parameter set: read on every switch
            columns = key.source_columns
            a_c = p.a_bound * p.digit_bound * columns * p.digits
            added = p.keyswitch_noise(columns) + p.k * p.t_bound * a_c + a_c + 1
            kept = key.__dict__["_switch_added"] = (p, added)
        return math.ceil(source_value_bound * SAFETY) + kept[1]

    def switch_key(self, ciphertext: Ciphertext, key: KeySwitchKey) -> Ciphertext:
        """Move ciphertexts to another secret key without decrypting (noise + E c*)."""
        if key.kind != "switch":
            raise InputError(f"expected a key of kind 'switch', got {key.kind!r}")
        if ciphertext.key_id != key.from_key_id:
            raise KeyMismatchError(
                f"this switching key moves ciphertexts from key {key.from_key_id}, but the "
                f"ciphertext is under {ciphertext.key_id}."
            )
        if ciphertext.dim != key.out_dim:
            raise InputError(
                f"switching key is for vectors of length {key.out_dim}, not {ciphertext.dim}"
            )
        p = self.params
        value = (ciphertext.message_bound() * p.w).max() if ciphertext.size else 0.0
        bound = self._switch_bound(key, float(value) + ciphertext.max_noise)
        if bound >= LIMIT:
            raise OverflowRiskError("the switched ciphertext could exceed 62 bits")
        data, l1, l2 = self._switch(ciphertext.data, key, ciphertext.coeff_bound)
        noise = (ciphertext.noise + l1 * p.e_bound) * SAFETY
        det, sg = ciphertext.probable_parts()
        # E c* may share E with earlier switches in this noise: parameters add (no quadrature)
        probable = (det + 0.0, (sg + l2 * p.e_bound) * SAFETY)
        return ciphertext.derive(
            data, noise, coeff_bound=bound, key_id=key.to_key_id, probable=probable
        )

    # ======================================================================================
    # homomorphic operations
    # ======================================================================================
    def _rounding_noise(self) -> float:
        """Noise from rounding each coefficient of a ciphertext to an integer: (1 + k t)/2."""
        return self.params.key_row_norm / 2

    def rescale(self, ciphertext: Ciphertext, divisor: int | None = None) -> Ciphertext:
        """Divide the message by ``divisor`` (default: the parameter set's scale), exactly.

        ``round(c / d)`` gives ``S c' = w mu / d + e / d + r`` with ``|r| <= (1 + k t) / 2``.
        """
        d = self.params.scale if divisor is None else int(divisor)
        if d < 1 or ciphertext.scale_int % d:
            raise InputError(f"cannot rescale scale {ciphertext.scale_int} by {d}")
        if d >= LIMIT:
            raise InputError(
                f"cannot rescale by 2**{d.bit_length() - 1}: divisors must be below 2**62; "
                "rescale in several smaller steps."
            )
        data = native.mul_round_div(ciphertext.data, _ONE, d)
        if data is None:
            data = _round_div_int(ciphertext.data, d)  # |c| + d/2 < 2**63: no wrap
        rounding = self._rounding_noise()
        noise = ciphertext.noise / d + rounding
        det, sg = ciphertext.probable_parts()
        return ciphertext.derive(
            data,
            noise * SAFETY,
            scale=ciphertext.scale_int // d,
            coeff_bound=ciphertext.coeff_bound // d + 1,
            probable=((det / d + rounding) * SAFETY, sg / d * SAFETY),
        )

    def absorb_noise(
        self, ciphertext: Ciphertext, most: float = ABSORB_MOST
    ) -> tuple[Ciphertext, float] | None:
        """The same ciphertext re-read as an exact encryption of its current value, and how far
        that value can be from its message; None where it could be farther than ``most``.

        Any ciphertext encrypts ``v = S c / w`` with no noise at all; with the message ``mu``
        and ``S c = w mu + e``, ``v = mu + e / w``, so ``|v - mu|`` is at most the worst-case
        noise bound over ``w``: a fraction of one fixed-point unit (``1 / scale``) that the
        bound proves, with no failure probability. Training uses it on the weights after every
        step (backward error: the run is exactly SGD whose updates were each moved by at most
        that much; see docs/numerics.md), because the forward bound grows by ``1 + lr |H|`` per
        step with the absolute Hessian ``|H|`` while the weights' real error does not.

        ``most`` is in fixed-point units of the message (default :data:`ABSORB_MOST`,
        2**-16 of a unit); the distance returned is in the value's own units (divided by the
        scale), 0.0 for a noiseless ciphertext. The data are unchanged; a coefficient bound
        above :data:`RENEW_COEFFICIENTS_ABOVE` becomes the largest actual coefficient.
        """
        p = self.params
        units = ciphertext.max_noise / p.w * SAFETY  # SAFETY: above the float roundings
        if not math.isfinite(units) or units > most:
            return None
        absorbed = self._noiseless(ciphertext)
        absorbed._decryption_bound = (self.worst_case, 0.0)  # no noise: both bounds are 0
        absorbed._max_noise = 0.0
        # the coefficient bound is renewed too, to the largest actual coefficient (one pass),
        # once it leaves less than 8 bits of headroom (for long sums): the bounds of summed
        # updates add up, while the coefficients themselves partly cancel
        if ciphertext.coeff_bound > RENEW_COEFFICIENTS_ABOVE:
            absorbed.coeff_bound = self.backend.abs_max(ciphertext.data)
        return absorbed, units / ciphertext.scale_int * SAFETY

    @property
    def fine_scale(self) -> int:
        """Encoding scale for small plaintext constants (coefficients, learning rates): f**2 if exact."""
        return self._constant("fine-scale", self._fine_scale)

    def _fine_scale(self) -> int:
        """``fine_scale`` from the parameter set (made once per set: every polynomial term and
        learning rate asks for it)."""
        f = self.params.scale
        odd = (f * f) >> (((f * f) & -(f * f)).bit_length() - 1)
        return f * f if odd < (1 << 32) and f * f < (1 << 40) else f

    def _product_divisor(self, scale_a: int, scale_b: int) -> int:
        """Fixed-point products are rescaled by the parameter set's scale; integer products are not."""
        f = self.params.scale
        if scale_a > 1 and scale_b > 1 and (scale_a * scale_b) % f == 0:
            return f
        return 1

    def _checked_divisor(self, left: Ciphertext, right: Ciphertext, divisor: int | None) -> int:
        """The product's rescale divisor: the default, or one that divides the product's scale."""
        if divisor is None:
            return self._product_divisor(left.scale_int, right.scale_int)
        scale = left.scale_int * right.scale_int
        if not isinstance(divisor, int | np.integer) or divisor < 1 or scale % int(divisor):
            raise InputError(
                f"divisor must be a positive integer dividing the product's scale {scale}, got "
                f"{divisor!r}."
            )
        return int(divisor)

    def multiply_plain(
        self, ciphertext: Ciphertext, plain: Any, encode_scale: int | None = None
    ) -> Ciphertext:
        """Elementwise (over the batch) product by a plaintext, rescaled for fixed point.

        Integer plaintexts multiply exactly (noise x |p|). Real plaintexts are encoded at
        ``encode_scale`` (default: the scale f; f**2 gives small coefficients more precision) and the
        product is rescaled by the same factor: noise |p_enc| e / s + (1 + k t)/2.
        """
        array = np.asarray(plain)
        p = self.params
        if encode_scale is not None and (
            not isinstance(encode_scale, int | np.integer) or not 1 <= encode_scale < LIMIT
        ):
            raise InputError(
                f"encode_scale must be a positive integer below 2**62, got {encode_scale!r}"
            )
        integral = array.dtype.kind in "biu" or (ciphertext.scale_int == 1 and _all_integral(array))
        # integer plaintexts: exact product, scale unchanged; real plaintexts on an integer
        # ciphertext: encode at s, exact product, scale becomes s; otherwise rescale by s.
        rescale = not integral and ciphertext.scale_int > 1
        # the fine encode_scale only pays off when the product is rescaled afterwards
        scale = 1 if integral else (int(encode_scale or p.scale) if rescale else p.scale)
        encoded, pbound, abs_plain_b = self._plain_factor(ciphertext, array, scale)
        if not rescale:
            # proved before computing: |c p| <= coeff_bound * |p| < 2**62
            bound = ciphertext.checked_bound(ciphertext.coeff_bound * max(pbound, 1))
            data = ciphertext.data * encoded
            noise = ciphertext.noise * abs_plain_b * SAFETY
            probable = ciphertext.map_probable(lambda v: v * abs_plain_b * SAFETY)
            return ciphertext.derive(
                data,
                noise,
                scale=ciphertext.scale_int * scale,
                coeff_bound=bound,
                probable=probable,
            )
        product_bound = ciphertext.coeff_bound * pbound
        # |round(c p / s)| <= |c p| / s + 1/2: refuse before computing if it could pass 2**62
        bound = ciphertext.checked_bound(product_bound // scale + 1)
        # the compiled kernel's exact 128-bit products, or the NumPy paths (the same words)
        data = native.mul_round_div(ciphertext.data, encoded, scale)
        if data is None and product_bound < LIMIT:
            data = _round_div_int(ciphertext.data * encoded, scale)  # |c p| + s/2 < 2**63
        elif data is None:
            # |c| < 2**62 (invariant) and |p| < 2**53 (encode): mul_wide's precondition; the
            # shapes broadcast (checked by _plain_factor)
            data = wide.mul_round_div(ciphertext.data, encoded, scale, product_bound)
        rounding = self._rounding_noise()
        noise = (ciphertext.noise * abs_plain_b) / scale + rounding
        det, sg = ciphertext.probable_parts()
        probable = (
            ((det * abs_plain_b) / scale + rounding) * SAFETY,
            (sg * abs_plain_b) / scale * SAFETY,
        )
        return ciphertext.derive(data, noise * SAFETY, coeff_bound=bound, probable=probable)

    def _plain_factor(
        self, ciphertext: Ciphertext, array: npt.NDArray[Any], scale: int
    ) -> tuple[Array, int, Array]:
        """``multiply_plain``'s factor: the plaintext encoded at ``scale`` with a slot axis, its
        largest magnitude and its magnitudes as floats (batch shape).

        A scalar (a learning rate, a polynomial coefficient) is encoded once per scale and
        kept: training multiplies by the same few constants at every step. The kept arrays are
        read-only, as every operation treats its operands.
        """
        cache: dict[tuple[float, int], tuple[Array, int, Array]] | None = None
        if array.ndim == 0 and array.dtype.kind == "f":
            cache = self._constant(
                "plain-scalars", dict[tuple[float, int], tuple[Array, int, Array]]
            )
            key = (float(array), scale)
            found = cache.get(key)
            if found is not None:
                return found
        encoded, pbound = ciphertext.slot_plaintext(array, scale, per_item=True)
        broadcast_batch(ciphertext.shape, tuple(encoded.shape[:-1]), "multiply")
        abs_plain_b = abs(encoded[..., 0]).astype("float64")
        if cache is not None and len(cache) < SCALAR_CACHE_SIZE:
            for kept in (encoded, abs_plain_b):
                if isinstance(kept, np.ndarray):
                    kept.flags.writeable = False
            cache[key] = (encoded, pbound, abs_plain_b)
        return encoded, pbound, abs_plain_b

    def multiply(
        self, left: Ciphertext, right: Ciphertext, divisor: int | None = None
    ) -> Ciphertext:
        """Slotwise product of two ciphertext batches (broadcasting over the batch).

        noise' = (|mu1| e2 + |mu2| e1 + e1 e2 / w) / r + (sum |K_i|) / 2 + E c*,
        where r is the rescale divisor, K_i the tensor key row and E c* the switch noise.
        """
        product = self._multiply(left, right, divisor, None)
        assert product is not None  # only a sum can be declined
        return product

    def _multiply_sum(self, left: Ciphertext, right: Ciphertext, axis: int) -> Ciphertext:
        """``(left * right).sum(axis)`` (``matmul_cipher``'s contraction) with the products'
        tensor entries summed before a single key switch (the switch is linear): one switch
        per result instead of one per product, and less key noise. Where the sums of the
        switched entries could pass the 2**62 a switch source may have, the products are
        switched one by one and then summed; an axis of one entry is the product itself."""
        summed = self._multiply(left, right, None, axis)
        if summed is not None:
            return summed
        product = left * right
        if product.shape[axis] == 1:  # a sum of one entry is that entry: drop the axis (a view)
            shape = list(product.shape)
            del shape[axis]
            return product.reshape(shape)
        return product.sum(axis=axis)

    def _multiply(
        self, left: Ciphertext, right: Ciphertext, divisor: int | None, sum_axis: int | None
    ) -> Ciphertext | None:
        """``multiply``, or with ``sum_axis`` ``_multiply_sum``'s sum (None where it cannot)."""
        left.check_compatible(right, "multiply")
        p = self.params
        m, k = left.dim, p.k
        r = self._checked_divisor(left, right, divisor)
        evaluation = self.public_key(left.key_id).evaluation
        key = evaluation.keys.get(f"product:{m}") or evaluation.get(
            f"product:{m}",
            f"products of {m}-vectors need a product key; the key holder runs "
            f"scheme.add_product_key(keys, {m}) (keygen(products=[{m}]))",
        )
        batch = broadcast_batch(left.shape, right.shape, "combine")  # refuses what cannot
        if sum_axis is not None:
            if not -len(batch) <= sum_axis < len(batch) or batch[sum_axis] < 2:
                return None  # an axis out of range (the sum refuses it) or of one entry
            sum_axis %= len(batch)
        divisor_total = p.w * r
        # overflow: the factors are below 2**62 (ciphertext invariant), so every product fits in
        # 128 bits (mul_wide); each rounded tensor entry must be below 2**62 to be a key-switch
        # source, which is proved here from the coefficient bounds before anything runs.
        # The tracked coefficient bounds (|every coefficient| <= coeff_bound) usually settle
        # it at no cost; otherwise the actual magnitudes (exact, and often far below them) do.
        # ``magnitude`` bounds the sum of the magnitudes of each entry's (up to two) products
        magnitude = 2 * left.coeff_bound * right.coeff_bound
        tensor_bound = _round_div_bound(magnitude, divisor_total)
        parts: list[int] | None = None  # max |top| and |bottom| of each operand, when needed
        if tensor_bound >= LIMIT:
            parts = self._part_bounds(m, left.data, right.data)
            top_a, bot_a, top_b, bot_b = parts
            magnitude = max(top_a * top_b, top_a * bot_b + bot_a * top_b, bot_a * bot_b)
            tensor_bound = _round_div_bound(magnitude, divisor_total)
        if tensor_bound >= LIMIT:
            raise OverflowRiskError(
                "the product's tensor entries could exceed 62 bits (values too large for this "
                "parameter set); use smaller values, rescale first, or a parameter set with a "
                "smaller w or scale."
            )
        # what the switch reads: the entries with a bottom factor (or their sums along
        # ``sum_axis``); the tops' products are added as they are (see below)
        source_bound = tensor_bound
        if sum_axis is not None:
            # the sums of the switched entries must stay below the 2**62 of a switch source.
            # Each of those entries has a bottom factor, and bottoms are far smaller than tops
            # (about 2**10 against 2**52 in a training step with the default set), so the
            # actual magnitudes usually prove it where the coefficient bound (the tops' size)
            # does not; settled before any product is formed
            count = batch[sum_axis]
            if count * source_bound >= LIMIT:
                parts = parts or self._part_bounds(m, left.data, right.data)
                top_a, bot_a, top_b, bot_b = parts
                switched_magnitude = max(top_a * bot_b + bot_a * top_b, bot_a * bot_b)
                source_bound = _round_div_bound(switched_magnitude, divisor_total)
            source_bound *= count
            if source_bound >= LIMIT:
                return None
        shift = divisor_total.bit_length() - 1
        # one slotwise product on the host with a divisor 2**s goes through the compiled
        # kernel that forms each tensor entry and switches it at once (below); otherwise the
        # tensor is formed first
        fused = sum_axis is None and divisor_total == 1 << shift and native.available()
        tensor = (
            None if fused else self._product_tensor(left, right, batch, magnitude, divisor_total)
        )
        # Each bound below adds terms of both operands (mu_a e_b, mu_b e_a, ...), so NumPy
        # broadcasting gives them the batch shape without broadcasting each operand first.
        mu_a = left.message_bound()
        mu_b = right.message_bound()
        e_a = left.noise
        e_b = right.noise
        key_l1 = 1 + k * p.t_bound + (k * p.t_bound) ** 2
        # |K t| = |w mu_a mu_b / r + (noise before the switch)|: the rounding of the tensor
        # entries (key_l1 / 2) belongs to that noise, so it is part of the value bound too
        cross = e_a * e_b / p.w  # shared with the high-probability bound
        before_switch = (mu_a * e_b + mu_b * e_a + cross) / r + key_l1 / 2
        value_bound = mu_a * mu_b * p.w / r + before_switch
        summed_probable = None
        if sum_axis is not None:
            # S (sum_l c_l*) = sum_l S c_l*: the entries' sums, switched once, carry the sum of
            # the products' values and pre-switch noise (every entry rounded as before), plus
            # the key noise of one switch; the switched sums are exact int64 (below 2**62,
            # proved above); the tops' sums stay within the summed value bound (a top over w is
            # within its operand's message bound), which the result's 2**62 check covers
            count = batch[sum_axis]
            backend = self.backend
            margin = float_margin(count)

            def summed(values: Array) -> Array:
                return backend.broadcast_to(values, batch).sum(axis=sum_axis) * margin

            assert tensor is not None  # a sum is never fused
            tensor = backend.broadcast_to(tensor, (*batch, tensor.shape[-1])).sum(axis=sum_axis)
            before_switch, value_bound = summed(before_switch), summed(value_bound)
            det, sg = self._product_probable(left, right, mu_a, mu_b, 1.0, r, key_l1, 0.0, cross)
            summed_probable = (summed(det), summed(sg))
        # the first m entries (top_a[i] top_b[i]) have weight 1 in slot i: added as they are,
        # exactly, rather than switched (no digits, no key noise); the sum wraps modulo 2**64
        # like the switch itself and is exact because the result is proved below 2**62
        switched = self._product_switch_key(key, m)
        bound = self._proved_switch_bound(
            switched,
            value_bound,
            "the product could exceed 62 bits (values too large for this parameter set); "
            "use smaller values or a parameter set with a smaller w or scale.",
        )
        found = None
        if fused:
            found = self._product_switch_native(
                left,
                right,
                batch,
                self._constant(f"tensor:{m}", lambda: self._tensor_factors(m)),
                shift,
                self._constant(f"product-public:{m}", lambda: _slot_weights(m, m + p.k)),
                switched,
            )
        if found is not None:
            data, l1, l2 = found
        else:
            if tensor is None:
                tensor = self._product_tensor(left, right, batch, magnitude, divisor_total)
            data, l1, l2 = self._switch(tensor[..., m:], switched, source_bound)
            data[..., :m] += tensor[..., :m]
        noise = (before_switch + l1 * p.e_bound) * SAFETY
        if summed_probable is None:
            probable = self._product_probable(left, right, mu_a, mu_b, 1.0, r, key_l1, l2, cross)
        else:
            det, sg = summed_probable
            probable = (det, sg + l2 * p.e_bound * SAFETY)
        return left.derive(
            data,
            noise,
            scale=left.scale_int * right.scale_int // r,
            coeff_bound=bound,
            probable=probable,
        )

    def _product_tensor(
        self,
        left: Ciphertext,
        right: Ciphertext,
        batch: tuple[int, ...],
        magnitude: int,
        divisor_total: int,
    ) -> Array:
        """Every rounded tensor entry of a slotwise product over the broadcast ``batch``, with
        ``_multiply``'s proofs done (``magnitude`` bounds each entry's sum of product
        magnitudes).

        The compiled kernel's exact 128-bit sums where it applies; a few ciphertexts in Python
        integers, entry by entry; otherwise every entry at once, the factors of its (up to
        two) products stacked on one axis. With a divisor 2**s on the host and ``magnitude``
        small enough, the stacked quotients come from their low words and a float64 estimate
        (``wide.stacked_round_div_pow2``), not from 128-bit arithmetic, and the Python integers
        take fewer products. Every path gives the same words.
        """
        m = left.dim
        shift = divisor_total.bit_length() - 1
        factor_indices = self._constant(f"tensor:{m}", lambda: self._tensor_factors(m))
        if divisor_total == 1 << shift and native.available():
            found = native.tensor_round_div(left.data, right.data, batch, factor_indices, shift)
            if found is not None:
                return found
        estimate = (
            divisor_total == 1 << shift
            and type(left.data) is np.ndarray
            and type(right.data) is np.ndarray
            and left.data.dtype == right.data.dtype == np.int64
            and wide.estimate_applies(2, magnitude, shift)
        )
        terms = self._constant(f"tensor-terms:{m}", lambda: self._tensor_terms(m))
        tensor = wide.terms_round_div_small(
            left.data,
            right.data,
            batch,
            terms,
            divisor_total,
            wide.ESTIMATE_SMALL_PRODUCTS if estimate else None,
        )
        if tensor is not None:
            return tensor
        left_index, right_index, used = factor_indices
        factors = (left.data[..., left_index] * used, right.data[..., right_index])
        if estimate:
            return wide.stacked_round_div_pow2(*factors, shift)
        return wide.stacked_products_round_div(*factors, divisor_total)

    def _product_switch_native(
        self,
        left: Ciphertext,
        right: Ciphertext,
        batch: tuple[int, ...],
        factors: tuple[Array, Array, Array],
        shift: int,
        public_weights: Array,
        key: KeySwitchKey,
    ) -> tuple[Any, Any, Any] | None:
        """A product's tensor entries and their switch by one compiled kernel
        (``native.product_switch``), or None where it does not apply (as ``_switch_native``)."""
        columns = int(factors[0].shape[1]) - int(public_weights.shape[0])
        plan = self._switch_plan(key, columns) if columns == key.source_columns else None
        if plan is None:
            return None
        return native.product_switch(
            left.data, right.data, batch, factors, shift, public_weights, plan
        )

    def _dot_factors(self, m: int, identity: bool) -> tuple[Array, Array]:
        """Index arrays into both ciphertexts naming the factors of each rounded product an
        inner product uses: ``top1_i top2_i`` (H = I) or every ``top1_i top2_j``, then the
        entries of ``dot_switched_columns`` (row-major ``(a, b)`` of ``vec(c1 c2^T)``)."""
        n = m + self.params.k
        tops = (
            [(i, i) for i in range(m)] if identity else [(i, j) for i in range(m) for j in range(m)]
        )
        switched = [divmod(column, n) for column in dot_switched_columns(m, self.params.k)]
        pairs = tops + switched
        backend = self.backend
        return (
            backend.asarray([a for a, _ in pairs], dtype="int64"),
            backend.asarray([b for _, b in pairs], dtype="int64"),
        )

    def _product_switch_key(self, key: KeySwitchKey, m: int) -> KeySwitchKey:
        """The part of a product key the switch applies: the ``m k + k**2`` entries whose
        weights hold T (the key's rows after the first ``m`` entries' digits)."""
        k = self.params.k
        if key.source_columns != m + m * k + k * k:
            raise InputError(
                f"the product key has {key.source_columns} source entries, not the "
                f"{m + m * k + k * k} of {m}-vector products with k = {k}"
            )
        first = m * self.params.digits
        return key_part(key, "switched", lambda: slice(first, None), m * k + k * k)

    def _dot_switch_key(self, key: KeySwitchKey, m: int) -> KeySwitchKey:
        """The inner-product key for the entries ``dot_switched_columns`` (a key made here has
        only those; one made before inner products skipped the tops' block has all ``(m +
        k)**2``, and its rows for those entries are used)."""
        k = self.params.k
        switched = 2 * m * k + k * k
        if key.source_columns == switched:
            return key
        if key.source_columns != (m + k) ** 2:
            raise InputError(
                f"the inner-product key has {key.source_columns} source entries, not the "
                f"{switched} (or {(m + k) ** 2}) of {m}-vectors with k = {k}"
            )

        def rows() -> Array:
            digits = self.params.digits
            columns = np.asarray(dot_switched_columns(m, k), dtype=np.int64)
            return self.backend.asarray(
                (columns[:, None] * digits + np.arange(digits)).reshape(-1), dtype="int64"
            )

        return key_part(key, "switched", rows, switched)

    def _product_probable(
        self,
        left: Ciphertext,
        right: Ciphertext,
        mu_a: Array,
        mu_b: Array,
        h_abs: float,
        r: int,
        key_l1: float,
        l2: Array,
        cross: Array | None = None,
    ) -> tuple[Array, Array]:
        """The high-probability parts of a product's noise (``multiply`` and ``dot``).

        ``mu_a e_b + mu_b e_a`` scales each factor's parts by the other's message bound (a
        constant); ``e_a e_b / w`` is not sub-Gaussian and is bounded deterministically by the
        worst-case bounds; the tensor rounding (``key_l1 / 2``) is deterministic; the switch
        adds ``E c*`` (parameter ``e_bound |c*|_2``), linearly since E may already be in e_a.
        ``cross``: ``e_a e_b / w`` where the caller has it already (the same operations on the
        same arrays, so the same bits).
        """
        p = self.params
        # both results add terms of both operands (and l2 has the batch shape), so NumPy
        # broadcasting gives them the batch shape: no operand needs broadcasting first
        det_a, sg_a = left.probable_parts()
        det_b, sg_b = right.probable_parts()
        if cross is None:
            cross = left.noise * right.noise / p.w
        spread = mu_a * det_b + mu_b * det_a + cross
        scaled = mu_a * sg_b + mu_b * sg_a
        if h_abs != 1.0:  # 1.0 * v is v, bit for bit (NaN and -0.0 included): skipped
            spread = h_abs * spread
            scaled = h_abs * scaled
        det = (spread / r + key_l1 / 2) * SAFETY
        sg = (scaled / r + l2 * p.e_bound) * SAFETY
        return det, sg

    def _part_bounds(self, m: int, *arrays: Array) -> list[int]:
        """max |top| and max |bottom| (the first ``m`` and the other entries of the last axis)
        of each int64 array, as exact Python ints, with one transfer from the backend."""
        extremes = []
        for array in arrays:
            if array.size:
                rows = array.reshape(-1, array.shape[-1])
                extremes += [rows.max(axis=0), rows.min(axis=0)]
        backend = self.backend
        host = backend.to_numpy(backend.stack(extremes)).tolist() if extremes else []
        bounds = []
        for array in arrays:
            if not array.size:
                bounds += [0, 0]
                continue
            high, low = host[0], host[1]
            del host[:2]
            # compared as Python ints: |INT64_MIN| does not fit int64
            bounds.append(max((abs(v) for v in high[:m] + low[:m]), default=0))
            bounds.append(max((abs(v) for v in high[m:] + low[m:]), default=0))
        return bounds

    def _tensor_terms(self, m: int) -> tuple[tuple[tuple[int, int], ...], ...]:
        """The products each entry of a slotwise tensor sums, as (index into the left
        ciphertext, index into the right one) pairs.

        Entries: ``top_a[i] top_b[i]`` (m), ``top_a[i] bot_b[j] + bot_a[j] top_b[i]`` (m k, i
        major) and ``bot_a[i] bot_b[j]`` (k k, i major), the order of ``product_key_matrix``.
        """
        k = self.params.k
        tops, bottoms = range(m), [m + j for j in range(k)]
        return (
            *(((i, i),) for i in tops),
            *(((i, j), (j, i)) for i in tops for j in bottoms),
            *(((i, j),) for i in bottoms for j in bottoms),
        )

    def _tensor_factors(self, m: int) -> tuple[Array, Array, Array]:
        """``_tensor_terms`` as index arrays into both ciphertexts, for the array path.

        Row 0 of each index array names the first product's factors, row 1 the second's; ``used``
        is 0 where an entry has no second product (its factors then contribute 0).
        """
        terms = self._tensor_terms(m)
        padded = [term if len(term) == 2 else (term[0], (0, 0)) for term in terms]
        backend = self.backend
        return (
            backend.asarray([[t[0][0] for t in padded], [t[1][0] for t in padded]], dtype="int64"),
            backend.asarray([[t[0][1] for t in padded], [t[1][1] for t in padded]], dtype="int64"),
            backend.asarray([[1] * len(terms), [int(len(t) == 2) for t in terms]], dtype="int64"),
        )

    def dot(
        self,
        left: Ciphertext,
        right: Ciphertext,
        weight: npt.ArrayLike | None = None,
        divisor: int | None = None,
    ) -> Ciphertext:
        """x^T H y for each batch item: the entries of ``round(vec(c1 c2^T) / (w r))`` under the
        weights ``vec(S^T H S)``, on the scalar key (the tops' block, weights H, summed as it is;
        the entries with a bottom switched)."""
        left.check_compatible(right, "take an inner product")
        p = self.params
        m = left.dim
        h = small.identity(m) if weight is None else _integer_matrix(weight, "H")
        # matrix_digest(h) and sum |H|; for H = I kept by m (looking an m x m matrix up by
        # its bytes costs more than the whole inner product of one pair of 256-vectors)
        label, _, h_abs = (
            self._constant(f"identity-facts:{m}", lambda: small.matrix_facts(self, h))
            if weight is None
            else small.matrix_facts(self, h)
        )
        key = self.public_key(left.key_id).evaluation.get(
            f"dot:{m}:{label}",
            f"inner products of {m}-vectors with this H need a key; the key holder runs "
            f"scheme.add_dot_key(keys, {m}, H)",
        )
        r = self._checked_divisor(left, right, divisor)
        backend = self.backend
        batch = broadcast_batch(left.shape, right.shape, "combine")  # refuses what cannot
        # factors below 2**62 (invariant): products fit in 128 bits; the rounded entries are
        # key-switch sources and must be below 2**62, proved before anything runs (from the
        # tracked coefficient bounds when they suffice, else from the actual magnitudes)
        tensor_bound = _round_div_bound(left.coeff_bound * right.coeff_bound, p.w * r)
        if tensor_bound >= LIMIT:
            tensor_bound = _round_div_bound(
                backend.abs_max(left.data) * backend.abs_max(right.data), p.w * r
            )
        if tensor_bound >= LIMIT:
            raise OverflowRiskError(
                "the inner product's tensor entries could exceed 62 bits; use smaller values, "
                "rescale first, or a parameter set with a smaller w or scale."
            )
        # vec(c1 c2^T) splits in two: the block of the two tops, whose key weights are H
        # itself (public), summed here into ``public`` (its diagonal alone for H = I); and the
        # entries with a bottom, whose weights hold T (``dot_switched_columns``, in its order),
        # switched. One exact rounded product per entry, the factors gathered by index; each
        # entry is rounded as before, so the noise bounds below are unchanged, and the switch
        # is smaller (2 m k + k**2 entries instead of (m + k)**2) and adds less key noise.
        identity = weight is None
        left_index, right_index = self._constant(
            f"dot-factors:{m}:{identity}", lambda: self._dot_factors(m, identity)
        )
        divisor_total = p.w * r
        shift = divisor_total.bit_length() - 1
        # on the host with a divisor 2**s, one compiled kernel forms each entry and switches
        # it at once (below); otherwise the entries are formed first
        fused = divisor_total == 1 << shift and native.available() and type(left.data) is np.ndarray

        def entries() -> tuple[Array, Array]:
            """The tops' weighted sum (public) and the entries to switch."""
            products = wide.mul_round_div(
                left.data[..., left_index], right.data[..., right_index], divisor_total
            )
            # the public sums wrap modulo 2**64: exact once added to the switched result
            if identity:
                return products[..., :m].sum(axis=-1), products[..., m:]
            h_flat = backend.asarray(h.reshape(-1), dtype="int64")
            return (products[..., : m * m] * h_flat).sum(axis=-1), products[..., m * m :]

        formed = None if fused else entries()
        # terms of both operands in every bound: broadcasting gives them the batch shape
        mu_a = left.message_bound()
        mu_b = right.message_bound()
        e_a = left.noise
        e_b = right.noise
        key_l1 = h_abs * p.key_row_norm**2
        # noise before the switch, rounding of the tensor entries included (see multiply)
        cross = e_a * e_b / p.w  # shared with the high-probability bound
        before_switch = h_abs * (mu_a * e_b + mu_b * e_a + cross) / r + key_l1 / 2
        value_bound = h_abs * mu_a * mu_b * p.w / r + before_switch
        switched = self._dot_switch_key(key, m)
        bound = self._proved_switch_bound(
            switched, value_bound, "the inner product could exceed 62 bits for this parameter set"
        )
        del value_bound  # a batch-shaped float array: not held through the switch
        found = None
        if fused:
            found = self._product_switch_native(
                left,
                right,
                batch,
                self._constant(
                    f"dot-factors-single:{m}:{identity}",
                    lambda: _single_products(left_index, right_index),
                ),
                shift,
                self._constant(
                    f"dot-public:{m}:{label}",
                    lambda: _dot_weights(h, identity, int(switched.matrix_t.shape[1])),
                ),
                switched,
            )
        if found is not None:
            data, l1, l2 = found
            del found  # the tuple would keep l1 alive (below)
        else:
            public, tensor = formed if formed is not None else entries()  # the kernel declined
            data, l1, l2 = self._switch(tensor, switched, tensor_bound)
            # modulo 2**64 like the switch: exact, since the result is proved below 2**62 (its
            # value bound covers the public block and the switched entries together)
            data[..., 0] += public
        noise = (before_switch + l1 * p.e_bound) * SAFETY
        del before_switch, l1  # not held through the high-probability bound
        probable = self._product_probable(left, right, mu_a, mu_b, h_abs, r, key_l1, l2, cross)
        return left.derive(
            data,
            noise,
            scale=left.scale_int * right.scale_int // r,
            coeff_bound=bound,
            dim=1,
            probable=probable,
        )

    def linear_transform(self, ciphertext: Ciphertext, matrix_g: npt.ArrayLike) -> Ciphertext:
        """G x per batch item (G integer, out x m): switch from the key G S; noise |G| e + E c*."""
        g = _integer_matrix(matrix_g, "G")
        if g.shape[1] != ciphertext.dim:
            raise InputError(
                f"G has {g.shape[1]} columns but the vectors have length {ciphertext.dim}"
            )
        label, row_l1, _ = small.matrix_facts(self, g)  # matrix_digest(g), max row sum |G|
        key = self.public_key(ciphertext.key_id).evaluation.get(
            f"linear:{label}",
            "this linear transform needs a key; the key holder runs scheme.add_linear_key(keys, G)",
        )
        p = self.params
        mu = ciphertext.message_bound()
        value = float((mu * p.w * row_l1).max()) if ciphertext.size else 0.0
        bound = self._switch_bound(key, value + row_l1 * ciphertext.max_noise)
        if bound >= LIMIT:
            raise OverflowRiskError("the transformed ciphertext could exceed 62 bits")
        data, l1, l2 = self._switch(ciphertext.data, key, ciphertext.coeff_bound)
        noise = (ciphertext.noise * row_l1 + l1 * p.e_bound) * SAFETY
        det, sg = ciphertext.probable_parts()
        probable = (det * row_l1 * SAFETY, (sg * row_l1 + l2 * p.e_bound) * SAFETY)
        return ciphertext.derive(data, noise, coeff_bound=bound, dim=g.shape[0], probable=probable)

    def matmul_plain(
        self, ciphertext: Ciphertext, plain: Any, *, plain_on_left: bool
    ) -> Ciphertext:
        """Matrix product over the batch axes with a plaintext matrix (encrypted @ P or P @ encrypted).

        Integer P: exact integer combination. Real P: encoded at scale f, combined exactly, then
        rescaled by f. noise' = |P| @ e (/ f + (1 + k t)/2 when rescaled).

        Exactness: with ``L`` the largest row sum of |P| over the inner axis and ``C`` the
        coefficient bound, every result is below ``C L`` before rescaling. If that is below 2**62
        one int64 GEMM is exact; otherwise (rescaled results only) the product is formed in 128
        bits from limb GEMMs each proved below 2**63 (``wide.wide_matmul_round_div``). Results
        that could pass 2**62 after rescaling are refused before anything is computed.
        """
        if ciphertext.dim != 1:
            raise InputError("matrix products over the batch need scalar ciphertexts (dim 1)")
        array = np.asarray(plain)
        if array.ndim != 2:
            raise InputError(f"plaintext matrix must be 2-D, got shape {array.shape}")
        p = self.params
        integral = array.dtype.kind in "biu" or (ciphertext.scale_int == 1 and _all_integral(array))
        scale = 1 if integral else p.scale
        rescale = not integral and ciphertext.scale_int > 1
        encoded, pmax, row_l1, left_b, abs_left, abs_right = self._plain_matrix(
            array, scale, plain_on_left
        )
        backend = self.backend
        if plain_on_left:
            if ciphertext.ndim < 1 or ciphertext.shape[0] != encoded.shape[1]:
                raise InputError(
                    f"shapes {encoded.shape} and {ciphertext.shape} do not align for @"
                )
            data = backend.moveaxis(ciphertext.data, 0, -1)  # (..., n, K)
            noise = ciphertext.noise
        else:
            if ciphertext.ndim < 1 or ciphertext.shape[-1] != encoded.shape[0]:
                raise InputError(
                    f"shapes {ciphertext.shape} and {encoded.shape} do not align for @"
                )
            data = ciphertext.data  # (..., K, n)
            noise = ciphertext.noise
        inner = encoded.shape[1] if plain_on_left else encoded.shape[0]
        combined_bound = ciphertext.coeff_bound * row_l1
        # refuse before computing anything that could leave the exact range
        bound = ciphertext.checked_bound(
            _round_div_bound(combined_bound, scale) + 1 if rescale else combined_bound
        )

        def combine(flat: Array) -> Array:
            """left_b @ flat, rescaled when asked; 128-bit when the products could pass 2**62."""
            if combined_bound >= LIMIT:  # only reachable when rescaling (refused otherwise)
                return wide.wide_matmul_round_div(
                    backend, left_b, flat, scale, pmax, ciphertext.coeff_bound
                )
            out = backend.matmul_int_wrap(left_b, flat)  # every result < 2**62: exact
            return _round_div_int(out, scale) if rescale else out

        # the worst-case bound and both high-probability parts go through one float GEMM
        probable = ciphertext.probable_parts() if ciphertext.tracks_probable_noise else ()
        parts = [noise, *probable]
        if plain_on_left:
            # result[j, ...] = sum_K P[j, K] c[K, ...]
            flat = data.reshape(-1, inner).T  # (K, rest)
            noise_flat = backend.concatenate(
                [backend.broadcast_to(v, ciphertext.shape).reshape(inner, -1) for v in parts],
                axis=1,
            )
            out = combine(flat)
            products = backend.matmul_float(abs_left, noise_flat)  # (J, parts * rest)
            out_shape = (encoded.shape[0], *ciphertext.shape[1:])
            out_data = backend.moveaxis(
                out.T.reshape(
                    *ciphertext.data.shape[1:-1], ciphertext.data.shape[-1], encoded.shape[0]
                ),
                -1,
                0,
            )
            out_data = out_data.reshape(*out_shape, ciphertext.data.shape[-1])
            rest = products.shape[1] // len(parts)
            results = [
                products[:, i * rest : (i + 1) * rest].reshape(out_shape) for i in range(len(parts))
            ]
        else:
            # result[..., J] = sum_K c[..., K] P[K, J]
            moved = backend.moveaxis(data, -1, 0)  # (n, ..., K)
            flat = moved.reshape(-1, inner).T  # (K, rows)
            out = combine(flat)
            out_shape = (*ciphertext.shape[:-1], encoded.shape[1])
            out_data = backend.moveaxis(out.T.reshape(ciphertext.data.shape[-1], *out_shape), 0, -1)
            noise_flat = backend.concatenate(
                [backend.broadcast_to(v, ciphertext.shape).reshape(-1, inner) for v in parts],
                axis=0,
            )
            assert abs_right is not None  # made for P on the right
            products = backend.matmul_float(noise_flat, abs_right)  # (parts * rows, J)
            rows = products.shape[0] // len(parts)
            results = [
                products[i * rows : (i + 1) * rows].reshape(out_shape) for i in range(len(parts))
            ]
        margin = float_margin(inner)  # float GEMM sums of `inner` terms may round down
        if not rescale:
            new_scale = ciphertext.scale_int * scale
            results = [v * margin for v in results]
        else:
            # the rounding is deterministic: it joins the worst-case bound and noise_det
            rounding = self._rounding_noise()
            results = [
                (v * margin / scale + (rounding if i < 2 else 0.0)) * SAFETY
                for i, v in enumerate(results)
            ]
            new_scale = ciphertext.scale_int
        return ciphertext.derive(
            out_data + 0,
            results[0],
            scale=new_scale,
            coeff_bound=bound,
            probable=(results[1], results[2]) if len(results) == 3 else None,
        )

    def _plain_matrix(
        self, array: npt.NDArray[Any], scale: int, plain_on_left: bool
    ) -> PlainMatrix:
        """``matmul_plain``'s plaintext matrix P: encoded at ``scale``, its largest magnitude, the
        largest sum of its magnitudes over the inner axis (Python ints, exact), the left GEMM
        operand (P, or P^T when P is on the right) on the backend, its magnitudes as float64,
        and (P on the right only) the magnitudes of P as float64.

        A small matrix is kept per scheme (by side, scale, shape and bytes; at most
        ``PLAIN_MATRICES``), read-only: a training step multiplies by the same inputs (and their
        transpose) at every epoch, and encoding them again gives the same arrays. ``encode``
        refuses what it refuses before anything is kept.
        """
        cache: dict[tuple[Any, ...], PlainMatrix] | None = None
        if array.size <= PLAIN_MATRIX_VALUES:
            cache = self._constant("plain-matrices", dict[tuple[Any, ...], PlainMatrix])
            name = (plain_on_left, scale, array.shape, array.dtype.str, array.tobytes())
            found = cache.get(name)
            if found is not None:
                return found
        backend = self.backend
        encoded = self.encode(array, scale)
        abs_encoded = np.abs(encoded)
        pmax = int(abs_encoded.max()) if encoded.size else 0
        # the largest sum of |P| over the inner axis, as a Python int (exact)
        row_l1 = int(abs_encoded.sum(axis=1 if plain_on_left else 0).max()) if encoded.size else 0
        left_matrix = encoded if plain_on_left else encoded.T  # (J, K)
        left_b = backend.asarray(left_matrix, dtype="int64")
        abs_left = backend.asarray(np.abs(left_matrix).astype(np.float64))
        abs_right = None if plain_on_left else backend.asarray(np.abs(encoded).astype(np.float64))
        facts: PlainMatrix = (encoded, pmax, row_l1, left_b, abs_left, abs_right)
        if cache is not None and len(cache) < PLAIN_MATRICES:
            for kept in (encoded, left_b, abs_left, abs_right):
                if isinstance(kept, np.ndarray):
                    kept.flags.writeable = False
            cache[name] = facts
        return facts

    def matmul_cipher(self, left: Ciphertext, right: Ciphertext) -> Ciphertext:
        """Encrypted @ encrypted over the batch axes: elementwise products, then a sum."""
        if left.dim != 1 or right.dim != 1:
            raise InputError(
                "use .dot() for inner products of m-vectors; @ works on scalar ciphertexts"
            )
        if left.ndim == 1 and right.ndim == 1:
            return self._multiply_sum(left, right, 0)
        if right.ndim == 1:
            return self._multiply_sum(left, right[None, :] if left.ndim == 2 else right, -1)
        if left.ndim == 1:
            return self._multiply_sum(left[:, None], right, 0)
        if left.ndim != 2 or right.ndim != 2:
            raise InputError("@ of two encrypted tensors supports 1-D and 2-D operands")
        return self._multiply_sum(left[:, :, None], right[None, :, :], 1)

    def polyval_shift(self, ciphertext: Ciphertext, degree: int) -> int:
        """k >= 0 such that the powers of ``x / 2**k`` up to ``degree`` stay in the exact range.

        The powers of a fixed-point x are products at the scale f, so ``|x|**d f w`` must stay
        below 2**62 (|x| <= 5 for a cube with the default set). For larger |x| (a standardised
        feature of 12 times a weight), ``polyval`` forms the powers of ``y = x / 2**k`` and
        multiplies each by ``c_d 2**(d k)``: the same polynomial, rescaled earlier, with every
        intermediate in range. 0 (the plain power tree) whenever that already fits.
        """
        p = self.params
        if degree < 2 or ciphertext.scale_int != p.scale or not ciphertext.size:
            return 0
        # kept on the ciphertext (its arrays never change): a sigmoid's forward pass and its
        # derivative in the backward pass ask for the same x
        shifts = ciphertext.polyval_shifts
        if shifts is None:
            shifts = ciphertext.polyval_shifts = {}
        found = shifts.get(degree)
        if found is not None:
            return found
        largest = float(self.backend.to_numpy(ciphertext.message_bound()).max())
        x_bound = largest / ciphertext.scale_int
        # |y|**d below 2**59 / (w f): 8x headroom for the noise and the rounding of each product
        limit = 2.0 ** (INT_BITS - 3) / (p.w * p.scale)
        shift = 0
        while shift < 30 and max((x_bound / 2**shift) ** degree, 1.0) > limit:
            shift += 1
        shifts[degree] = shift
        return shift

    def polyval(self, ciphertext: Ciphertext, coefficients: Sequence[float]) -> Ciphertext:
        """sum_i c_i x**i with powers from a balanced product tree (depth ceil(log2(degree))).

        Where the powers of x could leave the exact range, the tree is built on x / 2**k
        (``polyval_shift``) and the coefficients scaled by 2**(d k) to match.
        """
        coeffs = [float(c) for c in coefficients]
        if not coeffs:
            raise InputError("polyval needs at least one coefficient")
        while len(coeffs) > 1 and coeffs[-1] == 0.0:
            coeffs.pop()
        shift = self.polyval_shift(ciphertext, len(coeffs) - 1)
        # With a slope bound (``_slope_bounded``), the tree runs on an exact copy of x: the
        # same data, read as the message ``S c / w`` itself with noise 0 (a valid reading, so
        # every bound of the operations holds for it); x's own noise is added at the end,
        # through the slope of the polynomial (``_with_slope_noise``).
        sloped = self._slope_bounded(ciphertext)
        source = self._noiseless(ciphertext) if sloped else ciphertext
        # The powers are kept on the ciphertext (``polyval_powers``): a sigmoid's derivative
        # in the backward pass needs the same powers of the same x as its forward pass. They
        # are the same bits either way: a product depends on its operands only. Whether they
        # are powers of the exact copy depends on the ciphertext only, so it never changes.
        memo = ciphertext.polyval_powers
        if memo is None:
            memo = ciphertext.polyval_powers = {}
        powers = memo.get(shift)
        if powers is None:
            base = source
            if shift:
                base = self.multiply_plain(source, 2.0**-shift, encode_scale=self.fine_scale)
            powers = memo[shift] = {1: base}
        for degree in range(2, len(coeffs)):
            if coeffs[degree] == 0.0 and all(c == 0.0 for c in coeffs[degree + 1 :]):
                break
            if degree in powers:
                continue
            half = 1 << (degree.bit_length() - 1)
            if half == degree:
                half //= 2
            lower = powers.get(half)
            upper = powers.get(degree - half)
            if lower is None or upper is None:
                raise AssertionError("power tree incomplete")  # pragma: no cover
            powers[degree] = self.multiply(lower, upper)
        result: Ciphertext | None = None
        for degree in range(1, len(coeffs)):
            if coeffs[degree] == 0.0:
                continue
            if degree == 1:  # x itself, not x / 2**k: no precision lost on the linear term
                term = self.multiply_plain(source, coeffs[1], encode_scale=self.fine_scale)
            else:
                term = self.multiply_plain(
                    powers[degree],
                    coeffs[degree] * 2.0 ** (degree * shift),
                    encode_scale=self.fine_scale,
                )
            result = term if result is None else result + term
        if result is None:
            result = self.multiply_plain(source, 0.0)
        if sloped:
            result = self._with_slope_noise(result, ciphertext, coeffs, shift)
        return result + coeffs[0] if coeffs[0] != 0.0 else result

    def _slope_bounded(self, ciphertext: Ciphertext) -> bool:
        """Whether ``polyval`` bounds x's noise through the polynomial's slope (fixed point at
        the scale f, whose products rescale by f: the polynomial it evaluates is known)."""
        f = self.params.scale
        return ciphertext.scale_int == f > 1 and self._product_divisor(f, f) == f

    def _noiseless(self, ciphertext: Ciphertext) -> Ciphertext:
        """The same data read as the message ``v = S c / w`` exactly: noise 0 (both bounds)."""
        zero = ciphertext.noise * 0.0
        return ciphertext.derive(
            ciphertext.data, zero, coeff_bound=ciphertext.coeff_bound, probable=(zero, zero)
        )

    def _slope_coefficients(self, coeffs: Sequence[float], shift: int) -> list[float]:
        """Coefficients (lowest first) of the slope ``g(u) = P'(u f)`` of the polynomial that
        ``polyval`` computes, in real units u, from the constants exactly as encoded.

        The tree multiplies the powers of ``b = x q / F`` (q = round(2**-k F), F the fine
        scale; b = x when k = 0) by ``round(c_d 2**(d k) F) / F`` and x by ``round(c_1 F) / F``;
        products rescale by f, so in integer units ``P(t) = a_1 t + sum_d a_d (q/F)**d t**d /
        f**(d - 1) + const`` and ``P'(t) = g(t / f)``.
        """
        fine = self.fine_scale
        ratio = float(self.encode(2.0**-shift, fine)) / fine if shift else 1.0
        slope = [0.0] * max(len(coeffs) - 1, 1)
        for degree in range(1, len(coeffs)):
            if coeffs[degree] == 0.0:
                continue
            if degree == 1:
                slope[0] = float(self.encode(coeffs[1], fine)) / fine
            else:
                encoded = float(self.encode(coeffs[degree] * 2.0 ** (degree * shift), fine))
                slope[degree - 1] = degree * encoded / fine * ratio**degree
        return slope

    def _magnitude_plan(
        self, slope: Sequence[float], curvature: Sequence[float]
    ) -> tuple[list[Array], Array]:
        """The Horner steps of ``_magnitude_on_interval`` for the slope and its derivative on
        two rows (|coefficient| pairs from the highest degree, the shorter list led by zeros)
        and the two rows' float margins, as backend arrays (made once per polynomial)."""
        length = max(len(slope), len(curvature))
        padded = [
            [0.0] * (length - len(values)) + [abs(value) for value in reversed(values)]
            for values in (slope, curvature)
        ]
        backend = self.backend
        steps = [
            backend.asarray([first, second], "float64")
            for first, second in zip(padded[0], padded[1], strict=True)
        ]
        margins = backend.asarray(
            [float_margin(len(slope)), float_margin(len(curvature))], "float64"
        )
        return steps, margins

    def _with_slope_noise(
        self, exact: Ciphertext, ciphertext: Ciphertext, coeffs: Sequence[float], shift: int
    ) -> Ciphertext:
        """``exact`` (the polynomial of the exact copy of x) with x's noise added by the slope.

        With ``v = S c / w`` and ``mu`` the message of x (``|v - mu| <= e / w``), the result
        ``S c' = w P(v) + e_0`` (``e_0``: the noise of ``exact``, from the operations alone)
        has noise ``e_0 + w (P(v) - P(mu))`` against the message ``P(mu)``. The mean value
        theorem bounds the second part by ``M e`` with ``M = max |P'|`` over ``|t| <= U``
        (``U``: x's message bound, which bounds |mu| and |v|): the worst-case bound. For the
        high-probability one, ``w (P(v) - P(mu)) = P'(mu) (d + X) + R``: P'(mu) is a constant,
        so ``P'(mu) X`` is sub-Gaussian with parameter ``M noise_sg``, and the Taylor remainder
        ``|R| <= max |P''| e**2 / (2 w)`` joins the deterministic part. Where the slope is
        small (a sigmoid past its turning point, or near 0), this is far below the sum of
        the terms' bounds that the operations alone would give.
        """
        f = self.params.scale
        # constants of the polynomial and the shift: found once per scheme (never written to),
        # kept by the coefficients themselves (a tuple of floats hashes faster than its repr)
        slopes = self._constant("slopes", dict[tuple[tuple[float, ...], int], _Slope])
        name = (tuple(coeffs), shift)
        found = slopes.get(name)
        if found is None:
            slope = self._slope_coefficients(coeffs, shift)
            curvature = [j * c for j, c in enumerate(slope)][1:] or [0.0]
            found = slopes[name] = (slope, *self._magnitude_plan(slope, curvature))
        slope, steps, margins = found
        reach = ciphertext.message_bound() * (SAFETY / f)  # U in real units
        zero = reach * 0.0
        magnitudes = _two_magnitudes(steps, margins, reach, zero)
        signs = self._constant("signs", lambda: self.backend.asarray([1.0, -1.0], "float64"))
        steepest = _largest_on_interval(slope, reach, signs, magnitudes[0], zero)
        bend = magnitudes[1] / f  # bounds |P''| in integer units
        noise = ciphertext.noise
        det, sg = ciphertext.probable_parts()
        exact_det, exact_sg = exact.probable_parts()
        remainder = bend * noise * noise * (0.5 / self.params.w)
        return exact.derive(
            exact.data,
            (exact.noise + steepest * noise) * SAFETY,
            coeff_bound=exact.coeff_bound,
            probable=(
                (exact_det + steepest * det + remainder) * SAFETY,
                (exact_sg + steepest * sg) * SAFETY,
            ),
        )


#: Integers below this are exact in float64, and so are their sums while they stay below it.
_EXACT_FLOAT = 1 << 53

#: The factor 1, for a rescale by the compiled kernel of products (read-only).
_ONE = np.ones(1, dtype=np.int64)
_ONE.flags.writeable = False
#: ``numpy.vecdot`` (NumPy 2), or None before it.
_vecdot = getattr(np, "vecdot", None)


def _ones(count: int) -> npt.NDArray[np.float64]:
    """A read-only float64 vector of ``count`` ones (sums as a GEMV)."""
    ones = np.ones(count, dtype=np.float64)
    ones.flags.writeable = False
    return ones


def _two_magnitudes(steps: Sequence[Array], margins: Array, reach: Array, zero: Array) -> Array:
    """``_magnitude_on_interval`` of two coefficient lists at once, as rows 0 and 1 (the plan
    of ``_magnitude_plan``; ``zero`` is ``reach * 0.0``).

    One Horner evaluation on both rows; the shorter list is padded with leading zeros, which
    keep the running value at +0 (or NaN, for an infinite or NaN U) exactly as the first step
    of the shorter list alone leaves it, so each row has the bits of its own list's bound.
    """
    columns = (2,) + (1,) * reach.ndim
    total = zero
    for step in steps:
        total = total * reach + step.reshape(columns)
    return total * margins.reshape(columns)


def _magnitude_on_interval(coefficients: Sequence[float], reach: Array) -> Array:
    """``sum_j |c_j| U**j`` elementwise: a bound on |polynomial(u)| for |u| <= U (``reach``)."""
    total = reach * 0.0
    for value in reversed(coefficients):
        total = total * reach + abs(value)
    return total * float_margin(len(coefficients))


def _largest_on_interval(
    coefficients: Sequence[float],
    reach: Array,
    signs: Array,
    coarse: Array | None = None,
    zero: Array | None = None,
) -> Array:
    """A bound on ``max |g(u)|`` over ``|u| <= U`` for the polynomial g, elementwise in U.

    The maximum of |g| on an interval is at an end or at a root of g': both ends and the real
    part of every root of g' (a complex one only adds a point of the interval, never removes
    the maximum) are evaluated, with a margin for the rounding of the evaluation and of the
    roots. Never above the coarse bound ``sum_j |c_j| U**j``, which holds regardless.
    ``signs``: the float64 array ``[1.0, -1.0]`` on reach's backend (the two ends);
    ``coarse`` and ``zero``: ``_magnitude_on_interval(coefficients, reach)`` and ``reach *
    0.0`` where the caller has them.
    """
    if coarse is None:
        coarse = _magnitude_on_interval(coefficients, reach)
    degree = len(coefficients) - 1
    while degree > 0 and coefficients[degree] == 0.0:
        degree -= 1
    if degree < 1:
        return coarse
    if zero is None:
        zero = reach * 0.0
    # both ends at once: row 0 holds reach * 1.0, row 1 reach * -1.0, and Horner's rule runs
    # on both rows together, each element through the same float operations as one end alone
    ends_at = reach * signs.reshape((2,) + (1,) * reach.ndim)
    value = zero
    for c in reversed(coefficients[: degree + 1]):
        value = value * ends_at + c
    magnitude = abs(value)
    ends = elementwise_max(elementwise_max(zero, magnitude[0]), magnitude[1])
    for point, height in _turning_points(tuple(coefficients[: degree + 1])):
        inside = (reach >= point * (1 - 1e-9)).astype("float64")  # a little wide: safe
        ends = elementwise_max(ends, inside * height)
    tight = ends * (1.0 + 1e-6) + coarse * 1e-12
    return elementwise_min(tight, coarse)


@functools.lru_cache(maxsize=256)
def _turning_points(coefficients: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """``(point, height)`` for the real part of every root of g' (g: these coefficients): the
    point's magnitude and the largest |g| near it, at both signs. Constants of
    ``_largest_on_interval``, found once per polynomial (``np.roots`` per call cost more than
    the rest of a sigmoid's noise bound)."""
    derivative = [j * c for j, c in enumerate(coefficients)][1:]
    points = []
    for root in np.roots(list(reversed(derivative))) if len(derivative) > 1 else []:
        point = abs(float(np.real(root)))
        near = [point * (1 - 1e-9), point, point * (1 + 1e-9)]
        height = max(
            abs(float(np.polynomial.polynomial.polyval(s * u, coefficients)))
            for u in near
            for s in (1.0, -1.0)
        )
        points.append((point, height))
    return tuple(points)


def _all_integral(array: npt.NDArray[Any]) -> bool:
    """True if every value of a float array is a finite integer."""
    if array.dtype.kind in "biu":
        return True
    values = np.asarray(array, dtype=np.float64)
    return bool(np.isfinite(values).all() and np.array_equal(values, np.rint(values)))


def _slot_weights(rows: int, columns: int, into_first: bool = False) -> npt.NDArray[np.int64]:
    """``native.product_switch``'s public weights: entry i into slot i (a slotwise product's
    tops), or every entry into slot 0 (``into_first``: an inner product's tops with H = I)."""
    weights = np.zeros((rows, columns), dtype=np.int64)
    if into_first:
        weights[:, 0] = 1
    else:
        weights[np.arange(rows), np.arange(rows)] = 1
    weights.flags.writeable = False
    return weights


def _dot_weights(h: npt.NDArray[np.int64], identity: bool, columns: int) -> npt.NDArray[np.int64]:
    """``native.product_switch``'s public weights for an inner product: each of the tops'
    products into slot 0, weighted by 1 (H = I: the diagonal alone) or by H's entries."""
    if identity:
        return _slot_weights(int(h.shape[0]), columns, into_first=True)
    weights = np.zeros((h.size, columns), dtype=np.int64)
    weights[:, 0] = np.asarray(h, dtype=np.int64).reshape(-1)
    weights.flags.writeable = False
    return weights


def _single_products(left_index: Array, right_index: Array) -> tuple[Array, Array, Array]:
    """``native.tensor_round_div``'s factor arrays for entries of one product each: the
    indices as the first product's, no second product (its ``used`` row is 0)."""
    left = np.asarray(left_index, dtype=np.int64)
    right = np.asarray(right_index, dtype=np.int64)
    zeros = np.zeros_like(left)
    return np.stack([left, zeros]), np.stack([right, zeros]), np.stack([zeros, zeros])


def _round_div_bound(magnitude: int, divisor: int) -> int:
    """A bound on |round(v / divisor)| for |v| <= magnitude (halves away from zero)."""
    return (magnitude + divisor // 2) // divisor


def _round_div_int(values: Array, divisor: int) -> Array:
    """round(values / divisor), halves away from zero, for |values| < 2**62."""
    if divisor == 1:
        return values
    half = divisor // 2
    magnitude = (abs(values) + half) // divisor
    negative = (values < 0).astype("int64")
    return magnitude * (1 - 2 * negative)


def _integer_matrix(matrix: Any, name: str) -> npt.NDArray[np.int64]:
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D matrix, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.rint(array)):
            raise InputError(f"{name} must hold integers (encode reals at a scale first)")
    elif array.dtype.kind not in "biu":
        raise InputError(f"{name} must be numeric")
    return array.astype(np.int64)
