"""``CKKSScheme``: the CKKS plugin behind hennframework's :class:`~hennframework.scheme.HEScheme`.

    from hennframework_ckks import CKKSScheme
    scheme = CKKSScheme("n8192")
    keys = scheme.keygen()
    w = scheme.encrypt_tensor(np.array([[0.5, -1.0], [0.25, 2.0]]), keys.public)
    z = np.array([[1.0, 2.0]]) @ w                 # plaintext @ encrypted
    scheme.decrypt_tensor(z.polyval([0.5, 0.25]), keys.secret)

Registered as ``ckks`` under the ``hennframework.schemes`` entry points, so
``hennframework.get_scheme("ckks")`` and ``henn ... --scheme ckks`` find it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from hennframework.plugin import (
    AFTER_GATHERED_ROWS,
    GATHERED_ROWS,
    Capability,
    HEScheme,
    InputError,
    KeyMismatchError,
    KeySet,
    ParameterSet,
)

from hennframework_ckks.keys import CKKSPublicKey, CKKSSecretKey, generate_keys
from hennframework_ckks.layout import Layout
from hennframework_ckks.params import PARAMETER_SETS, CKKSParams, get_params
from hennframework_ckks.refresh import training_refresher
from hennframework_ckks.shared import SCHEME_NAME
from hennframework_ckks.tensor import (
    CKKSTensor,
    Deferred,
    decrypt_array,
    encrypt_array,
    refresh_tensors,
)

__all__ = ["CKKSScheme"]


class _SealCPU:
    """Stands in for an array backend: TenSEAL/SEAL computes on the CPU, single-threaded."""

    name = "seal-cpu"

    def describe(self) -> str:
        return "Microsoft SEAL via tenseal.sealapi (CPU)"


class CKKSScheme(HEScheme):
    """Approximate arithmetic on packed real vectors (CKKS) at 128-bit security, on SEAL."""

    name: ClassVar[str] = SCHEME_NAME
    uses_array_backend: ClassVar[bool] = False  # SEAL computes on the CPU
    default_parameter_set: ClassVar[str] = "n16384"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ENCRYPT_PUBLIC,
            Capability.ENCRYPT_SECRET,
            Capability.ADD,
            Capability.MUL_PLAIN,
            Capability.MATMUL_PLAIN,
            Capability.MUL_CIPHER,
            Capability.RESCALE,
            Capability.POLYNOMIAL,
            Capability.REFRESH,
            Capability.MAGNITUDE_TRACKING,
        }
    )

    #: The least noise budget (levels) the training loops keep in the weights: none. A level-0
    #: ciphertext decrypts as exactly as any other (magnitude tracking refuses values that would
    #: wrap there), so a step may use every level a fresh encryption has.
    min_noise_budget: ClassVar[float] = 0.0

    def __init__(
        self, params: str | CKKSParams | ParameterSet | None = None, backend: Any = None
    ) -> None:
        """``backend`` is accepted for API symmetry and ignored: SEAL runs on the CPU."""
        self.params: CKKSParams = get_params(params)
        self.requested_backend = backend
        self.backend = _SealCPU()

    def __repr__(self) -> str:
        return f"CKKSScheme(params={self.params.name!r})"

    @classmethod
    def parameter_sets(cls) -> Mapping[str, ParameterSet]:
        return {name: p.as_parameter_set() for name, p in PARAMETER_SETS.items()}

    @property
    def parameter_set(self) -> ParameterSet:
        return self.params.as_parameter_set()

    # ------------------------------------------------------------------------------------
    # keys
    # ------------------------------------------------------------------------------------
    def keygen(
        self,
        *,
        seed: int | bytes | None = None,
        rotations: str | Iterable[int] = "pow2",
        **options: Any,
    ) -> KeySet:
        """Secret, public, relinearisation and rotation keys.

        ``seed`` must be None: SEAL's generator cannot be seeded safely through TenSEAL (a
        seeded factory reuses one stream for every key part, see :mod:`hennframework_ckks.keys`).
        ``rotations``: ``"pow2"`` (default: left rotations by powers of two, enough for every
        operation), ``"pow2+neg"`` (also right rotations: some rotation chains get shorter;
        replicating a sum needs no level with ``"pow2"`` alone), ``"none"``, or a list of steps.
        """
        if seed is not None:
            raise InputError(
                "the CKKS plugin cannot make keys from a seed: SEAL (through TenSEAL) takes its "
                "randomness from the operating system, and seeding its generator would reuse "
                "randomness across key parts and break security. Call keygen() without seed; for "
                "reproducible tests, save the keys (CKKSSecretKey.to_bytes) and load them."
            )
        if options:
            raise InputError(
                f"unknown keygen option(s) {', '.join(sorted(options))} for the CKKS scheme; "
                "it takes rotations= only."
            )
        secret = generate_keys(self.params, rotations)
        return KeySet(
            self.params.as_parameter_set(),
            secret,
            secret.public,
            secret.public,
            secret.key_id,
            scheme=self,
        )

    # ------------------------------------------------------------------------------------
    # encryption
    # ------------------------------------------------------------------------------------
    def _public(self, key: Any) -> tuple[CKKSPublicKey, CKKSSecretKey | None]:
        if isinstance(key, KeySet):
            key = key.public
        if isinstance(key, CKKSSecretKey):
            return key.public, key
        if isinstance(key, CKKSPublicKey):
            if key.params.coeff_bits != self.params.coeff_bits or (
                key.params.poly_modulus_degree != self.params.poly_modulus_degree
            ):
                raise KeyMismatchError(
                    f"the key is for parameter set {key.params.name!r}, this scheme uses "
                    f"{self.params.name!r}; use CKKSScheme({key.params.name!r})."
                )
            return key, None
        raise InputError(
            f"expected a CKKS public key, secret key or key set, got {type(key).__name__}"
        )

    def encrypt_tensor(
        self, values: npt.ArrayLike, key: Any, *, layout: Layout | None = None
    ) -> CKKSTensor:
        """Encrypt a real array (public key: anyone; secret key: the owner, symmetric encryption).

        ``layout`` chooses the packing (default :meth:`Layout.default`: last axis in the lowest
        slot bits, then the next axis, splitting the first one that does not fit).
        """
        public, secret = self._public(key)
        return encrypt_array(public, values, layout, secret=secret)

    def encrypt_parameters(
        self, values: Sequence[npt.ArrayLike], key: Any, uses: Sequence[str | None]
    ) -> list[CKKSTensor]:
        """Encrypt a model's parameters, each packed for its use.

        An embedding table (:data:`~hennframework.plugin.GATHERED_ROWS`) is packed column-major
        (:meth:`Layout.gathered_rows`) and the weights after it
        (:data:`~hennframework.plugin.AFTER_GATHERED_ROWS`) in the table's column bits. Then
        ``(X W1) W2`` for the data's plaintext selection ``X`` can be computed as ``X (W1 W2)``:
        one product, a sum over the top slot bits and a plaintext map on one ciphertext instead of
        a map on all of ``W1``'s. Other parameters get :meth:`Layout.default`.
        """
        if len(uses) != len(values):
            raise ValueError("one use (or None) per parameter")
        public, _ = self._public(key)
        slot_bits = public.context.slot_bits
        table: Layout | None = None
        out = []
        for value, use in zip(values, uses, strict=True):
            shape = tuple(np.shape(value))
            layout = None
            if use == GATHERED_ROWS and len(shape) == 2:
                layout = table = Layout.gathered_rows(shape, slot_bits)
            elif use == AFTER_GATHERED_ROWS and table is not None:
                layout = table.after_gathered_rows(shape)
            out.append(self.encrypt_tensor(value, key, layout=layout))
        return out

    def encrypt_like(self, values: npt.ArrayLike, like: Any, key: Any) -> CKKSTensor:
        """Encrypt ``values`` in the packing of the CKKS tensor ``like`` (a re-encryption under
        another key, or by the owner, keeps what the model's operations rely on)."""
        item = like.materialize() if isinstance(like, Deferred) else like
        layout = None
        if isinstance(item, CKKSTensor) and item.shape == tuple(np.shape(values)):
            layout = item.layout.replace(pinned=0)
        return self.encrypt_tensor(values, key, layout=layout)

    def decrypt_tensor(self, tensor: Any, secret_key: Any) -> npt.NDArray[np.float64]:
        """Decrypt to float64 values (approximate: CKKS adds a small error to every result)."""
        secret = secret_key.secret if isinstance(secret_key, KeySet) else secret_key
        if not isinstance(secret, CKKSSecretKey):
            raise InputError(f"expected the CKKS secret key, got {type(secret).__name__}")
        item = tensor.materialize() if isinstance(tensor, Deferred) else tensor
        if not isinstance(item, CKKSTensor):
            raise InputError(f"expected a CKKS tensor, got {type(tensor).__name__}")
        if item.key_id != secret.key_id:
            raise KeyMismatchError(
                f"the tensor is under key set {item.key_id!r}, the secret key is {secret.key_id!r}"
            )
        values = decrypt_array(secret, item)
        if not np.isfinite(values).all():
            raise InputError("decryption produced non-finite values: the ciphertext is corrupted")
        return values

    def refresh(self, tensor: Any, keys: KeySet) -> CKKSTensor:
        """Owner side: a fresh top-level encryption of the same values in the same packing."""
        secret = keys.secret if isinstance(keys, KeySet) else keys
        return refresh_tensors(secret, [tensor])[0]

    def owner_refresher(self, keys: KeySet) -> Callable[[list[Any]], list[Any]]:
        """The in-process refresher :class:`hennframework.nn.OwnerRefresher` delegates to:
        :class:`~hennframework_ckks.refresh.OwnerRefresher` with ``level="auto"`` and
        ``margin=0``: exactly the levels the previous step used, not the top, so the next step's
        key switches are cheaper. A step refused for it (its values need the wider range of a
        higher level) is retried on top-level weights, and later rounds keep one level more
        (:func:`~hennframework_ckks.refresh.training_refresher`)."""
        return training_refresher(self, keys)

    # ------------------------------------------------------------------------------------
    # extras
    # ------------------------------------------------------------------------------------
    @staticmethod
    def fresh_noise_budget(tensor: Any) -> float:
        """The budget (levels) of a fresh encryption under the tensor's key: the most any
        refresh can give, so training loops never ask to refresh weights that already have it."""
        return float(tensor.context.top_level)

    @staticmethod
    def levels_left(tensor: Any) -> int:
        """Rescales a tensor can still go through before it needs a refresh."""
        return int(tensor.levels_left)
