"""The abstract homomorphic-encryption scheme interface.

Designed so that both the integer-vector scheme (exact integers, no modulus, key switching) and an
RLWE scheme such as CKKS (slots, levels, rescale, relinearisation) can implement it:

* :class:`ParameterSet`: a named, documented configuration with an *honest* security statement;
* :class:`HEScheme`: key generation, encryption with the public or the secret key, decryption, and
  a capability set (:class:`Capability`) so callers can fail early and clearly;
* :class:`EncryptedTensor`: a batch of encrypted values with operators, every member the model
  API (:mod:`hennframework.nn`) uses. The leading axes are the batch: every operation applies to
  the whole batch in one call. The model API is written against this protocol only.

Fixed point: real values are encoded as integers at a scale (``round(x * scale)``); products carry
the scale squared and are rescaled, so a tensor's :attr:`EncryptedTensor.scale` is visible and
checked on every operation.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import CapabilityError

__all__ = [
    "AFTER_GATHERED_ROWS",
    "GATHERED_ROWS",
    "Capability",
    "EncryptedTensor",
    "HEScheme",
    "KeySet",
    "MagnitudeTracked",
    "ParameterSet",
    "noise_budget_unit",
    "require",
]

#: How a model uses a parameter (:meth:`HEScheme.encrypt_parameters`): a ``(rows, columns)``
#: table of which the data selects and sums rows (an embedding), whose columns the next layer
#: then contracts with its weights.
GATHERED_ROWS = "gathered-rows"
#: The ``(columns, outputs)`` weights that contract the columns of the preceding
#: :data:`GATHERED_ROWS` table.
AFTER_GATHERED_ROWS = "after-gathered-rows"


class Capability(enum.StrEnum):
    """What a scheme can do. The model API checks these before training starts."""

    ENCRYPT_PUBLIC = "encrypt-public"  #: encrypt with the public key (anyone)
    ENCRYPT_SECRET = "encrypt-secret"  #: encrypt with the secret key (owner)
    ADD = "add"  #: ciphertext + ciphertext, -, negation
    MUL_PLAIN = "mul-plain"  #: ciphertext * plaintext (scalar or elementwise over the batch)
    MATMUL_PLAIN = (
        "matmul-plain"  #: plaintext matrix @ encrypted batch, encrypted batch @ plaintext
    )
    LINEAR_TRANSFORM = "linear-transform"  #: G x inside one ciphertext's slots (needs an eval key)
    MUL_CIPHER = "mul-cipher"  #: elementwise ciphertext * ciphertext (needs an eval key)
    INNER_PRODUCT = "inner-product"  #: x^T H y of two ciphertexts (needs an eval key)
    RESCALE = "rescale"  #: fixed-point rescale after a product
    POLYNOMIAL = "polynomial"  #: polynomial evaluation on ciphertexts
    KEY_SWITCH = "key-switch"  #: move ciphertexts to another secret key without decrypting
    NOISE_TRACKING = "noise-tracking"  #: a tracked bound on noise, checked at decryption
    #: a tracked bound on |values| (tensors are MagnitudeTracked); results that could pass the
    #: limit are refused (OverflowRiskError), never decrypted to a wrapped value
    MAGNITUDE_TRACKING = "magnitude-tracking"
    UNLIMITED_DEPTH = "unlimited-depth"  #: no level budget (no refresh ever needed)
    REFRESH = "refresh"  #: owner-assisted refresh (decrypt + re-encrypt) when levels run out


def require(scheme: HEScheme | type[HEScheme], needed: Sequence[Capability], what: str) -> None:
    """Raise :class:`CapabilityError` naming every missing capability, before any work starts."""
    missing = [cap.value for cap in needed if cap not in scheme.capabilities]
    if missing:
        raise CapabilityError(
            f"{what} needs {', '.join(missing)}, which the scheme {scheme.name!r} does not support. "
            "Choose a scheme that does (`henn schemes` lists each scheme's capabilities)."
        )


def noise_budget_unit(scheme: HEScheme | type[HEScheme]) -> str:
    """The unit of :attr:`EncryptedTensor.noise_budget` under ``scheme``: ``"bits"`` where the
    scheme tracks a bound on the noise, ``"levels"`` (rescales left) for leveled schemes such as
    CKKS.

    >>> from hennframework.schemes.integer_vector import IntegerVectorScheme
    >>> noise_budget_unit(IntegerVectorScheme)
    'bits'
    """
    return "bits" if Capability.NOISE_TRACKING in scheme.capabilities else "levels"


@dataclass(frozen=True)
class ParameterSet:
    """A named parameter set. ``security_bits`` is None when the set gives no security at all."""

    name: str
    scheme: str
    description: str
    security_bits: int | None
    security_note: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_secure(self) -> bool:
        return self.security_bits is not None and self.security_bits >= 128

    def security_label(self) -> str:
        if self.security_bits is None:
            return "INSECURE (no security)"
        return f"{self.security_bits}-bit classical"


@dataclass
class KeySet:
    """The result of key generation. Only ``public`` and ``evaluation`` may leave the owner."""

    params: ParameterSet
    secret: Any
    public: Any
    evaluation: Any
    key_id: str
    #: The scheme instance that made the keys (owner side), so ``model.encrypt(keys)`` needs nothing else.
    scheme: Any = None


@runtime_checkable
class EncryptedTensor(Protocol):
    """A batch of encrypted values with NumPy-like shape semantics and operators.

    ``shape`` is the batch shape (the logical tensor shape); the leading axes are the batch and
    every operation applies to the whole batch in one call. Operators broadcast like NumPy.
    Plaintext operands are NumPy arrays or Python numbers of *real* values; the tensor encodes
    them at the right scale itself. These are all the members the model API
    (:mod:`hennframework.nn`) and the file layer use, so a scheme whose tensors have them runs
    every model.
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def scale(self) -> float:
        """The fixed-point scale values are encoded at (``round(x * scale)``)."""
        ...

    @property
    def noise_budget(self) -> float:
        """Budget left before a refresh is needed, in the scheme's unit: bits for noise-tracking
        schemes, levels (rescales) for leveled schemes such as CKKS; ``inf`` where none is tracked."""
        ...

    @property
    def scheme(self) -> HEScheme:
        """The scheme instance that evaluates this tensor (refreshes, saving, decryption)."""
        ...

    @property
    def T(self) -> EncryptedTensor:
        """The transpose, as :meth:`transpose` with no axes (layers use ``weights.T``)."""
        ...

    def __add__(self, other: Any) -> EncryptedTensor: ...
    def __radd__(self, other: Any) -> EncryptedTensor: ...
    def __sub__(self, other: Any) -> EncryptedTensor: ...
    def __rsub__(self, other: Any) -> EncryptedTensor: ...
    def __neg__(self) -> EncryptedTensor: ...
    def __mul__(self, other: Any) -> EncryptedTensor:
        """Elementwise product with a tensor or a plaintext (rescaled for fixed point)."""
        ...

    def __rmul__(self, other: Any) -> EncryptedTensor: ...
    def __matmul__(self, other: Any) -> EncryptedTensor:
        """Matrix product over the batch axes with a plaintext matrix or another tensor."""
        ...

    def __rmatmul__(self, other: Any) -> EncryptedTensor:
        """``plaintext @ tensor``."""
        ...

    def __getitem__(self, index: Any) -> EncryptedTensor:
        """Indexing of the batch axes, including row gathers with an integer array."""
        ...

    def sum(self, axis: int | None = None) -> EncryptedTensor:
        """The sum over ``axis`` (every axis when None)."""
        ...

    def transpose(self, *axes: int) -> EncryptedTensor:
        """The batch axes permuted (reversed when none are given)."""
        ...

    def reshape(self, *shape: int) -> EncryptedTensor: ...
    def polyval(self, coefficients: Sequence[float]) -> EncryptedTensor:
        """``sum(c_i * x**i)`` elementwise, lowest degree first."""
        ...

    def multiply_constant(self, constant: float) -> EncryptedTensor:
        """``self * constant`` for a small real constant (a learning rate, a coefficient); a
        scheme may encode it with more precision than a plaintext factor gets."""
        ...

    def segment_sum(self, offsets: npt.ArrayLike) -> EncryptedTensor:
        """Sums of consecutive runs of rows: run ``i`` is ``self[offsets[i]:offsets[i+1]]``;
        ``offsets`` rises from 0 to ``len(self)``."""
        ...

    def scatter_add(
        self, rows: npt.NDArray[np.integer[Any]], values: EncryptedTensor
    ) -> EncryptedTensor:
        """A copy with ``values[i]`` added to row ``rows[i]`` (repeats accumulate)."""
        ...


@runtime_checkable
class MagnitudeTracked(Protocol):
    """What the tensors of a scheme that declares ``Capability.MAGNITUDE_TRACKING`` also have.

    Approximate schemes such as CKKS decrypt a value modulo a ciphertext modulus: past a limit it
    wraps to a wrong number without any sign. Such a scheme tracks a bound on every value through
    each operation and raises :class:`~hennframework.exceptions.OverflowRiskError` instead of
    making (or decrypting) a tensor whose bound reaches its limit.
    """

    @property
    def magnitude_bound(self) -> float:
        """A bound on ``|value|`` of every element, decryption error included."""
        ...

    @property
    def magnitude_limit(self) -> float:
        """The ``|value|`` this tensor holds where it is now (level, scale) without wrapping."""
        ...


class HEScheme(abc.ABC):
    """One homomorphic-encryption scheme. Subclasses register under ``hennframework.schemes``."""

    #: Registered name.
    name: ClassVar[str]
    #: What the scheme supports.
    capabilities: ClassVar[frozenset[Capability]]
    #: Name of the parameter set used when none is given.
    default_parameter_set: ClassVar[str]
    #: Whether the scheme computes on an array backend (``hennframework.get_scheme`` then passes
    #: it the configured one); False for a scheme with its own engine (CKKS on SEAL).
    uses_array_backend: ClassVar[bool] = True

    @classmethod
    @abc.abstractmethod
    def parameter_sets(cls) -> Mapping[str, ParameterSet]:
        """All named parameter sets of this scheme."""

    @classmethod
    def describe(cls) -> str:
        """One line for ``henn schemes``: capabilities and the security of each parameter set."""
        sets = ", ".join(f"{p.name} ({p.security_label()})" for p in cls.parameter_sets().values())
        return f"parameter sets: {sets}; capabilities: {', '.join(sorted(c.value for c in cls.capabilities))}"

    @classmethod
    def implementation(cls) -> str | None:
        """One line for ``henn info`` on how this installation computes the scheme (compiled
        kernels or not, say), or None where there is nothing to say."""
        return None

    @classmethod
    def get_parameter_set(cls, name: str | ParameterSet | None = None) -> ParameterSet:
        """Look up a parameter set by name (``None``: the default)."""
        if isinstance(name, ParameterSet):
            return name
        sets = cls.parameter_sets()
        key = name or cls.default_parameter_set
        if key not in sets:
            raise CapabilityError(
                f"The scheme {cls.name!r} has no parameter set {key!r}. "
                f"Available: {', '.join(sets)}."
            )
        return sets[key]

    @abc.abstractmethod
    def keygen(self, *, seed: int | bytes | None = None, **options: Any) -> KeySet:
        """Generate secret, public and evaluation keys. ``seed`` is for reproducibility only."""

    @abc.abstractmethod
    def encrypt_tensor(self, values: npt.ArrayLike, key: Any) -> Any:
        """Encrypt a real-valued array (fixed point) with a public or secret key."""

    @abc.abstractmethod
    def decrypt_tensor(self, tensor: EncryptedTensor, secret_key: Any) -> npt.NDArray[np.float64]:
        """Decrypt to real values; raises if noise could have corrupted the result."""

    def encrypt_parameters(
        self, values: Sequence[npt.ArrayLike], key: Any, uses: Sequence[str | None]
    ) -> list[Any]:
        """Encrypt a model's parameters, told how the model uses each one.

        ``uses[i]`` is None or one of :data:`GATHERED_ROWS` and :data:`AFTER_GATHERED_ROWS`.
        A scheme that packs many values into one ciphertext may place each parameter for its
        use (the CKKS plugin does); the default encrypts each with :meth:`encrypt_tensor`.
        """
        if len(uses) != len(values):
            raise ValueError("one use (or None) per parameter")
        return [self.encrypt_tensor(value, key) for value in values]

    def encrypt_like(self, values: npt.ArrayLike, like: Any, key: Any) -> Any:
        """Encrypt ``values`` packed as the tensor ``like`` is (a re-encryption that keeps the
        placement a model's operations rely on). The default is :meth:`encrypt_tensor`."""
        return self.encrypt_tensor(values, key)

    def refresh(self, tensor: Any, keys: KeySet) -> Any:
        """Owner-side refresh: a fresh encryption of the same values (decrypt + re-encrypt)."""
        return self.encrypt_tensor(self.decrypt_tensor(tensor, keys.secret), keys.public)

    def absorb_noise(self, tensor: Any) -> tuple[Any, float] | None:
        """``tensor`` re-read as an exact encryption of its current value, and the most that
        moved any value (in the values' own units); None (default) where the scheme cannot.

        The training loop calls it on the weights after every step
        (:func:`hennframework.nn.absorb_weight_noise`): a scheme whose noise bound is tracked
        forward and compounds over SGD steps can reset it, stating the backward error instead.
        The integer-vector scheme does (see docs/numerics.md); a leveled scheme such as CKKS,
        whose budget is levels, not a bound on an error, returns None.
        """
        return None

    def owner_refresher(self, keys: KeySet) -> Callable[[list[Any]], list[Any]] | None:
        """The scheme's own in-process refresh provider for the key holder, or None (default).

        None: :class:`hennframework.nn.OwnerRefresher` refreshes each tensor with
        :meth:`refresh`. A scheme that refreshes better knowing the earlier rounds (CKKS: only to
        the levels the previous step used, which makes the next step cheaper) returns a callable
        ``provider(tensors) -> fresh_tensors`` holding that state.
        """
        return None
