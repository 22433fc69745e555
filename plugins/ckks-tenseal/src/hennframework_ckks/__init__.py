"""hennframework-ckks: a CKKS scheme plugin for hennframework at 128-bit security, on TenSEAL.

Public API:

* :class:`CKKSScheme` (registered as ``ckks``), parameter sets ``n4096``, ``n8192``, ``n16384``,
  ``n16384-9``;
* :class:`CKKSTensor` (the encrypted tensor: ``levels_left``, ``noise_budget``, operators);
* :class:`Layout` (slot packing);
* refresh providers: :class:`OwnerRefresher`, :class:`FileRefresher`, :class:`FileRefreshOwner`,
  the :class:`RefreshProvider` protocol and :func:`refresh_tensors`;
* keys: :class:`CKKSPublicKey`, :class:`CKKSSecretKey`; bytes: :func:`tensors_to_bytes`,
  :func:`tensors_from_bytes`;
* :class:`CKKSCodec`: saving keys, tensors and models in hennframework's ``.henn`` files
  (registered for ``ckks`` on import).
"""

from hennframework.plugin import register_codec

from hennframework_ckks.codec import CODEC, CKKSCodec
from hennframework_ckks.keys import CKKSPublicKey, CKKSSecretKey
from hennframework_ckks.layout import Layout
from hennframework_ckks.params import PARAMETER_SETS, CKKSParams
from hennframework_ckks.refresh import (
    FileRefresher,
    FileRefreshOwner,
    OwnerRefresher,
    RefreshProvider,
)
from hennframework_ckks.scheme import CKKSScheme
from hennframework_ckks.serialization import tensors_from_bytes, tensors_to_bytes
from hennframework_ckks.tensor import CKKSTensor, LazyLinear, refresh_tensors

# hennframework's .henn files (keys, models, ciphertexts) find the CKKS codec by scheme name.
register_codec(CODEC)

__all__ = [
    "PARAMETER_SETS",
    "CKKSCodec",
    "CKKSParams",
    "CKKSPublicKey",
    "CKKSScheme",
    "CKKSSecretKey",
    "CKKSTensor",
    "FileRefreshOwner",
    "FileRefresher",
    "Layout",
    "LazyLinear",
    "OwnerRefresher",
    "RefreshProvider",
    "refresh_tensors",
    "tensors_from_bytes",
    "tensors_to_bytes",
]

__version__ = "0.1.0"
